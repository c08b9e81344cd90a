// TCP (RFC 9293): connection-oriented byte streams over IP.
//
// TcpLayer is the whole transport: the socket table, demultiplexing (the
// ConnectionIndex on the 4-tuple, then the listener through the PortTable),
// the state machine (input*.cpp), the sender (output.cpp), the timers
// (timers.cpp, one TimerHeap keyed by socket) and listeners with their SYN
// and accept queues (listener.cpp).
//
// Embedded and non-blocking like UdpLayer: every call returns at once;
// EAGAIN means "not yet", and on_event(id) says that a socket's readiness
// may have changed (poll it with events()). on_event is called from inside
// the layer: it must not call back into the TcpLayer synchronously (queue
// the id and serve it afterwards, as Host does).
//
// Pure code: no I/O and no clock reads (`now` is passed in); randomness only
// from secrets given at construction (ISNs, timestamp offsets).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "base/siphash.hpp"
#include "base/time.hpp"
#include "base/timer_heap.hpp"
#include "ip/ip_sender.hpp"
#include "tcp/tcb.hpp"
#include "transport/demux.hpp"
#include "transport/ports.hpp"
#include "transport/socket_id.hpp"
#include "wire/tcp.hpp"
#include "wire/types.hpp"

namespace weft {

struct TcpConfig {
  std::size_t rcvbuf = 256 * 1024;  // default receive buffer per connection
  std::size_t sndbuf = 256 * 1024;  // default send buffer per connection
  Duration msl = 30s;               // TIME-WAIT lasts 2*MSL
  Duration delayed_ack = 40ms;      // at most 200 ms (RFC 1122 §4.2.3.2)
  tcp::RtoConfig rto{};
  unsigned retries2 = 15;       // Linux tcp_retries2: RTOs before giving up
  unsigned syn_retries = 6;     // Linux tcp_syn_retries
  unsigned synack_retries = 5;  // Linux tcp_synack_retries
  Duration keep_idle = 7200s, keep_interval = 75s;
  unsigned keep_count = 9;
  Duration persist_max = 60s;  // cap of the persist timer backoff
  bool sack = true;            // offer SACK-permitted (RFC 2018)
  bool timestamps = true;      // offer timestamps (RFC 7323)
  bool window_scaling = true;  // offer window scaling (RFC 7323)
  // Request ECN (RFC 3168) on active opens. A peer's request is always
  // accepted: Linux's default (net.ipv4.tcp_ecn = 2) accepts and does not
  // request. A socket may choose otherwise (set_ecn).
  bool ecn = false;
  unsigned challenge_acks_per_sec = 10;  // RFC 5961 §7, per socket
  std::size_t max_backlog = 4096;
  // For tests only: when set, every connection's ISS is this value instead
  // of RFC 6528's keyed hash, so that a test can put a connection's sequence
  // numbers where it needs them (either half of the space, across the wrap).
  // Never set it outside tests: a predictable ISS lets an off-path attacker
  // guess sequence numbers (RFC 6528 §1).
  std::optional<std::uint32_t> iss_for_tests;
};

struct TcpCounters {
  std::uint64_t active_opens = 0;   // connect() sent a SYN
  std::uint64_t passive_opens = 0;  // a listener created a connection from a SYN
  std::uint64_t attempt_fails = 0;  // SYN-SENT/SYN-RECEIVED -> CLOSED (RST, timeout)
  std::uint64_t estab_resets = 0;   // ESTABLISHED/CLOSE-WAIT -> CLOSED by RST
  std::uint64_t curr_estab = 0;     // (gauge) in ESTABLISHED or CLOSE-WAIT
  std::uint64_t in_segs = 0;
  std::uint64_t out_segs = 0;
  std::uint64_t retrans_segs = 0;
  std::uint64_t in_errs = 0;  // malformed segments
  std::uint64_t bad_checksum = 0;
  std::uint64_t out_rsts = 0;
  std::uint64_t no_socket = 0;       // matched no connection or listener
  std::uint64_t challenge_acks = 0;  // RFC 5961
  std::uint64_t challenge_limited = 0;
  std::uint64_t paws_rejected = 0;  // RFC 7323 §5
  std::uint64_t ooo_dropped = 0;    // out-of-order segment without room
  std::uint64_t listen_overflows = 0;
  std::uint64_t timeouts = 0;  // connections aborted by timeout
  std::uint64_t fast_retransmits = 0;
  std::uint64_t rto_expired = 0;
  std::uint64_t sack_recoveries = 0;
  std::uint64_t newreno_recoveries = 0;
  std::uint64_t dsacks_sent = 0;
  std::uint64_t ecn_negotiated = 0;  // connections with ECN (RFC 3168 §6.1.1)
  std::uint64_t ce_received = 0;     // segments marked CE by the network
  std::uint64_t ecn_reductions = 0;  // windows reduced for an ECE (§6.1.2)
  std::uint64_t delayed_acks = 0;
  std::uint64_t persist_probes = 0;
  std::uint64_t keepalive_probes = 0;
  std::uint64_t timewait_reused = 0;
  template <class F>
  void visit(F&& f) const {
    f("active_opens", active_opens);
    f("passive_opens", passive_opens);
    f("attempt_fails", attempt_fails);
    f("estab_resets", estab_resets);
    f("curr_estab", curr_estab);
    f("in_segs", in_segs);
    f("out_segs", out_segs);
    f("retrans_segs", retrans_segs);
    f("in_errs", in_errs);
    f("bad_checksum", bad_checksum);
    f("out_rsts", out_rsts);
    f("no_socket", no_socket);
    f("challenge_acks", challenge_acks);
    f("challenge_limited", challenge_limited);
    f("paws_rejected", paws_rejected);
    f("ooo_dropped", ooo_dropped);
    f("listen_overflows", listen_overflows);
    f("timeouts", timeouts);
    f("fast_retransmits", fast_retransmits);
    f("rto_expired", rto_expired);
    f("sack_recoveries", sack_recoveries);
    f("newreno_recoveries", newreno_recoveries);
    f("dsacks_sent", dsacks_sent);
    f("ecn_negotiated", ecn_negotiated);
    f("ce_received", ce_received);
    f("ecn_reductions", ecn_reductions);
    f("delayed_acks", delayed_acks);
    f("persist_probes", persist_probes);
    f("keepalive_probes", keepalive_probes);
    f("timewait_reused", timewait_reused);
  }
};

// What netstat / ss -i show of one socket (struct tcp_info).
struct TcpInfo {
  SocketId id = 0;
  tcp::TcpState state = tcp::TcpState::closed;
  Endpoint local{};
  std::optional<Endpoint> remote;
  std::size_t recv_queue = 0;  // bytes received, not read (LISTEN: connections in the accept queue)
  std::size_t send_queue = 0;  // bytes queued, not acknowledged (LISTEN: the backlog)
  std::size_t unsent = 0;      // of send_queue, bytes never sent (tcpi_notsent_bytes)
  std::size_t in_flight = 0;   // sequence space sent, not acknowledged
  Duration srtt{0}, rttvar{0}, rto{0};
  std::uint32_t cwnd = 0, ssthresh = 0, snd_wnd = 0, rcv_wnd = 0, mss = 0;
  std::uint32_t rcv_mss = 0;      // the MSS announced (what the peer's segments may carry)
  std::uint32_t user_mss = 0;     // TCP_MAXSEG as set (0: none)
  unsigned rto_backoffs = 0;      // RTO doublings now in force (tcpi_backoff)
  unsigned consecutive_rtos = 0;  // timeouts since the last progress (tcpi_retransmits)
  unsigned probes = 0;            // unanswered zero-window or keepalive probes (tcpi_probes)
  bool in_recovery = false;       // fast recovery (NewReno or SACK) in progress
  std::uint64_t retransmits = 0, bytes_in = 0, bytes_out = 0, bytes_acked = 0;
  bool sack = false, timestamps = false;
  bool ecn = false;  // negotiated (RFC 3168)
  std::uint8_t snd_wscale = 0, rcv_wscale = 0;
};

// events() bits, like poll(2).
namespace tcp_event {
inline constexpr std::uint32_t readable = 1;  // data, end of stream, a pending connection, or an error
inline constexpr std::uint32_t writable = 2;  // connected and the send buffer has room
inline constexpr std::uint32_t error = 4;     // take_error() has something
inline constexpr std::uint32_t hup = 8;       // both directions done, or reset
}  // namespace tcp_event

enum class Shutdown : std::uint8_t { read, write, both };

struct Accepted {
  SocketId id;
  Endpoint peer;
};

struct TcpRecv {
  std::size_t len = 0;  // bytes read (or consumed)
  // The end of the peer's stream is reached: its FIN (or shutdown(SHUT_RD))
  // and every byte before it are read; every later call says so too. len is
  // then 0. A value, not an error (docs/errors.md), and not to be inferred
  // from len == 0, which an empty buffer also gives.
  bool eof = false;
};

class TcpLayer {
 public:
  // secret keys the ISN (RFC 6528), timestamp offsets and the demux hash.
  TcpLayer(IpSender& ip, PortTableConfig ports, TcpConfig cfg, SipKey secret);
  ~TcpLayer();
  TcpLayer(const TcpLayer&) = delete;
  TcpLayer& operator=(const TcpLayer&) = delete;

  // -- socket API -----------------------------------------------------------
  // Ids carry their slot's generation (socket_id.hpp): once a socket is
  // freed its id names nothing, even after a new socket takes the slot, and
  // every call given it answers as for no socket (EBADF).
  // The closed-socket rule: once the user has called close() or abort(),
  // the id is no longer the user's, as a descriptor is gone after close(2)
  // on Linux. Every call below given it answers as for no socket: EBADF,
  // or for the calls without an error, nullopt, 0 or false. This holds
  // while the connection still finishes as an orphan (FIN-WAIT, CLOSING,
  // LAST-ACK, TIME-WAIT): the stack goes on with it, the user cannot touch
  // it. Only introspection, info() and for_each_socket(), still shows an
  // orphan until it is freed, as netstat does. A socket the stack ended
  // (reset, timed out, refused) stays the user's, in CLOSED, until closed.
  // A new socket in CLOSED.
  SocketId open();
  // Errors: EBADF (no such socket), EINVAL (already bound or not CLOSED),
  // EADDRNOTAVAIL (not an address of this host), EADDRINUSE (port taken).
  Status bind(SocketId s, Endpoint local);
  // Passive open; binds an ephemeral port first when unbound. backlog caps
  // both the SYN queue and the accept queue (at least 1, at most
  // max_backlog).
  // Errors: EBADF, EINVAL (not CLOSED, or already connected), EADDRINUSE
  // (no ephemeral port, or another socket already listens on the port).
  Status listen(SocketId s, std::size_t backlog);
  // Takes an established connection from a listener's accept queue.
  // Errors: EBADF, EINVAL (not listening), EAGAIN (none waiting).
  Result<Accepted> accept(SocketId s);
  // Connections waiting in a listener's accept queue; 0 for a socket that
  // is not listening (or no socket).
  std::size_t pending_accepts(SocketId s) const;
  // Active open: sends a SYN and returns at once. Completion shows as
  // writable; failure as an error (take_error(): ECONNREFUSED, ETIMEDOUT,
  // ECONNRESET). Binds an ephemeral port (RFC 6056) when unbound.
  // Errors: EBADF, EINVAL (port 0 or wildcard peer, listening), EISCONN
  // (already connected), EALREADY (connecting), ENETUNREACH,
  // EADDRNOTAVAIL (no ephemeral port free), EADDRINUSE (the 4-tuple is taken).
  // After a failed attempt (refused, timed out) the socket is CLOSED and
  // connect() starts a new handshake, as on Linux; if the failure's error
  // has not been read (take_error, recv, send), this call returns it
  // instead and the next one starts over.
  Status connect(SocketId s, Endpoint remote, Instant now);
  // Queues up to the free send buffer space; returns the bytes taken (> 0
  // for non-empty data).
  // Errors: EBADF, ENOTCONN (never connected, or listening), EAGAIN (send
  // buffer full, or the handshake is still in progress), EPIPE (after
  // shutdown(write), or once the connection has ended or been reset), and
  // the pending error once (ECONNRESET, ECONNREFUSED, ETIMEDOUT).
  // more (MSG_MORE): more data follows at once, so this call's partial
  // segment is held as TCP_CORK holds it (Linux's tcp_push with MSG_MORE);
  // the next send without it, an uncork, or kCorkTimeout sends it.
  // With TCP_NOTSENT_LOWAT set, takes only up to the mark: EAGAIN while
  // the unsent bytes are at or above it.
  Result<std::size_t> send(SocketId s, std::span<const std::uint8_t> data, Instant now, bool more = false);
  // How many bytes send() would take now, all of them: the send buffer's
  // free room (below TCP_NOTSENT_LOWAT's mark, when set) while the
  // connection may send, else 0 (send() then tells why). Lets a caller
  // read exactly that much from its own source, once.
  std::size_t send_room(SocketId s) const;
  // Reads (or with peek, copies) received bytes in order. eof: the peer
  // closed cleanly and everything before its FIN has been read (end of
  // stream, TcpRecv::eof).
  // Errors: EBADF, ENOTCONN (not connected), EAGAIN (nothing yet),
  // ECONNRESET (the connection was reset: distinct from end of stream),
  // ETIMEDOUT, ECONNREFUSED (the pending error, reported once).
  Result<TcpRecv> recv(SocketId s, std::span<std::uint8_t> buf, Instant now, bool peek = false);
  // recv() without its copy: drops up to n received bytes in order, with
  // the same window update and ACK decisions recv() makes after copying
  // them. Returns how many were dropped (fewer than n when fewer are
  // readable; 0 for n == 0). End of stream (eof) and errors: as recv().
  Result<TcpRecv> consume(SocketId s, std::size_t n, Instant now);
  // recv() in place (smoltcp's socket.recv(|buf| ...)): calls
  // f(std::span<const std::uint8_t> first, std::span<const std::uint8_t> second)
  // with the readable bytes in the receive ring itself, in order (second is
  // non-empty only where they wrap in the ring); f returns how many it took
  // from the front, and those are consumed as by consume(). f is called
  // only when bytes are readable; at end of stream it is not, and eof is set.
  // f may send on any socket, s included (send(), write_with()), but must
  // not read, shut down, close or abort s: the spans are the ring's own.
  // Errors: as recv() (f is not called).
  template <class F>
  Result<TcpRecv> read_with(SocketId s, F&& f, Instant now) {
    Result<tcp::ReadSpans> spans = recv_spans(s);
    if (!spans) return spans.error();
    if (spans->empty()) return TcpRecv{0, true};  // recv_spans() gives none only at end of stream
    const std::size_t taken = std::forward<F>(f)(spans->first, spans->second);
    return consume(s, taken, now);
  }
  // send() in place (smoltcp's socket.send(|buf| ...)): calls
  // f(std::span<std::uint8_t> first, std::span<std::uint8_t> second) with
  // room in the send ring itself for up to min(max, send_room(s)) bytes
  // (second non-empty only where the room wraps); f fills a prefix and
  // returns its length, and those bytes are queued exactly as send() queues
  // its data, `more` included (Nagle, TCP_CORK and MSG_MORE as send() has
  // them). Returns the bytes queued. max bounds the storage the ring grows
  // to for the call, so pass what f can at most fill. f must not send on,
  // shut down, close or abort s. f is not called when max is 0 (returns 0).
  // Errors: as send(), EAGAIN when the send buffer has no room (f is not
  // called).
  template <class F>
  Result<std::size_t> write_with(SocketId s, F&& f, Instant now, bool more = false,
                                 std::size_t max = static_cast<std::size_t>(-1)) {
    Result<tcp::WriteSpans> spans = send_spans(s, max);
    if (!spans) return spans.error();
    if (spans->empty()) return std::size_t{0};
    const std::size_t filled = std::forward<F>(f)(spans->first, spans->second);
    return send_filled(s, std::min(filled, spans->size()), now, more);
  }
  // read: further data is discarded (and answered with RST, as Linux does
  // when a closed reader gets data); write: FIN after the queued data;
  // both: both.
  // Errors: EBADF, ENOTCONN (not connected).
  Status shutdown(SocketId s, Shutdown how, Instant now);
  // Graceful close: FIN after the queued data; the connection finishes in
  // the background and the id is freed when it does. RST instead when
  // unread data would be discarded or linger is set to 0. A listener resets
  // its unaccepted connections. The id must not be used afterwards.
  // Errors: EBADF.
  Status close(SocketId s, Instant now);
  // Sends RST (when synchronized) and frees the socket at once.
  // Errors: EBADF.
  Status abort(SocketId s, Instant now);
  // SO_ERROR: the pending error, cleared by reading it. nullopt: none.
  std::optional<std::errc> take_error(SocketId s);

  // -- options (errors: EBADF; EINVAL for a zero size or count) ------------
  // Buffers smaller than kMinBuffer are used as kMinBuffer (options() still
  // reports the size set).
  static constexpr std::size_t kMinBuffer = 2048;
  Status set_rcvbuf(SocketId s, std::size_t bytes);  // before connect/listen to take full effect
  // Takes effect at once, larger or smaller: send() and writability count
  // room against the new size at once; bytes already queued beyond it stay
  // and drain as they are acknowledged (Linux's sk_sndbuf against
  // sk_wmem_queued), and the storage shrinks once they fit.
  Status set_sndbuf(SocketId s, std::size_t bytes);
  Status set_nodelay(SocketId s, bool on, Instant now);
  // idle/interval/count: zero keeps the layer default. Linux's ranges
  // (include/net/tcp.h): idle and interval at most kMaxKeepIdle (32,767 s),
  // count at most kMaxKeepCount (127); EINVAL outside them.
  static constexpr Duration kMaxKeepIdle = std::chrono::seconds(32767);
  static constexpr unsigned kMaxKeepCount = 127;
  static constexpr unsigned kMaxSynRetries = 127;
  Status set_keepalive(SocketId s, bool on, Duration idle, Duration interval, unsigned count, Instant now);
  Status set_linger(SocketId s, std::optional<Duration> linger);  // EINVAL: negative
  Status set_reuse_addr(SocketId s, bool on);
  Status set_user_timeout(SocketId s, Duration d);  // 0 = off (retry count applies); EINVAL: negative
  Status set_syn_retries(SocketId s, unsigned n);   // EINVAL: 0 or above kMaxSynRetries
  // Whether an active open requests ECN (RFC 3168), overriding
  // TcpConfig::ecn. EISCONN once the SYN has gone.
  Status set_ecn(SocketId s, bool on);
  // TCP_CORK (tcp(7)): while on, only full-sized segments leave; a partial
  // one waits for more data, the uncork, a FIN, or kCorkTimeout after it
  // was first held. Turning it off sends what is held (Nagle permitting,
  // as Linux's tcp_push_pending_frames). set_nodelay(true) flushes what is
  // held once even while corked (tcp(7) TCP_NODELAY).
  static constexpr Duration kCorkTimeout = std::chrono::milliseconds(200);
  Status set_cork(SocketId s, bool on, Instant now);
  // TCP_NOTSENT_LOWAT: writable (and send() takes bytes) only while the
  // bytes queued and never sent are below `bytes`; 0 = no mark. Linux's
  // send may overshoot the mark by one skb; this one stops at it.
  Status set_notsent_lowat(SocketId s, std::uint32_t bytes);
  // TCP_INQ: whether the caller wants the bytes left after each read
  // (Linux's TCP_CM_INQ control message; the layer only keeps the flag,
  // readable() gives the count).
  Status set_inq(SocketId s, bool on);
  // TCP_MAXSEG: caps the MSS this socket announces and sends with, for
  // connections opened after it is set (connect, or a listener's children),
  // as Linux's user_mss does; 0 removes the cap. EINVAL outside 0 and
  // kMinUserMss..kMaxUserMss (Linux's TCP_MIN_MSS, MAX_TCP_WINDOW).
  static constexpr std::uint32_t kMinUserMss = 88, kMaxUserMss = 32767;
  Status set_maxseg(SocketId s, std::uint32_t mss);
  // The options as set (nullopt: no such socket).
  std::optional<tcp::SocketOptions> options(SocketId s) const;
  // Bytes a read would return now (SIOCINQ / FIONREAD); 0 for a listener.
  std::size_t readable(SocketId s) const;

  // -- readiness and introspection -------------------------------------------
  std::uint32_t events(SocketId s) const;  // tcp_event bits; 0 for a bad id
  void set_on_event(std::function<void(SocketId)> f) { on_event_ = std::move(f); }
  std::optional<TcpInfo> info(SocketId s) const;
  // f(const TcpInfo&) for each socket, including orphans finishing their close.
  void for_each_socket(const std::function<void(const TcpInfo&)>& f) const;
  std::size_t socket_count() const { return live_; }
  std::optional<Endpoint> local_endpoint(SocketId s) const;
  std::optional<Endpoint> remote_endpoint(SocketId s) const;

  // -- from the IP layer ------------------------------------------------------
  // One TCP segment addressed to this host (never answers ICMP: a segment
  // no one takes is answered with RST here).
  // `ecn`: the IP header's ECN field (wire::ecn), CE when the network
  // marked the segment.
  void input(Ipv4Addr src, Ipv4Addr dst, std::span<const std::uint8_t> segment, Instant now, std::uint8_t ecn = 0);
  // An ICMP destination unreachable quoting a segment we sent. hard: port or
  // protocol unreachable (ECONNREFUSED for a SYN-SENT connection); other
  // errors are soft and reported only if the connection then times out.
  void icmp_error(Endpoint local, Endpoint remote, SeqNum quoted_seq, std::errc err, bool hard, Instant now);

  // Runs the timers due by now.
  void poll(Instant now);
  std::optional<Instant> next_deadline() const { return timers_.next(); }

  const TcpConfig& config() const { return cfg_; }
  const TcpCounters& counters() const { return counters_; }

 private:
  using Tcb = tcp::Tcb;
  using TcpState = tcp::TcpState;
  friend struct TcpTestAccess;

  // --- table (tcp.cpp)
  // Deferred reclamation. A TCB that ends inside a call (connection_done()
  // on an orphan or a listener's child, close(), abort(), a listener's
  // children going with it) is retired at once: out of the connection
  // index, the port table, the timer heap and its listener's queues, so
  // nothing finds it again and its 4-tuple and port are free. Its memory
  // is kept until the outermost entry point (input, icmp_error, poll and
  // the user calls) returns: every Tcb& the call holds, down the whole
  // stack, stays valid for the whole call, and code after a call that may
  // end the connection checks Tcb::retired instead of looking it up again.
  class Entry {
   public:
    explicit Entry(TcpLayer& l) : l_(l) { ++l_.depth_; }
    ~Entry() {
      if (--l_.depth_ == 0 && !l_.graveyard_.empty()) l_.reclaim();
    }
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;

   private:
    TcpLayer& l_;
  };
  // The live (not retired) TCB of s, else nullptr: for the layer's own
  // use and introspection.
  Tcb* get(SocketId s);
  const Tcb* get(SocketId s) const;
  // The same for a user call: nullptr for a socket the user closed too
  // (the closed-socket rule, above). Every user call looks up with it.
  Tcb* user(SocketId s);
  const Tcb* user(SocketId s) const;
  Tcb& create();
  // Takes t (and a listener's unaccepted children) out of every table and
  // queues it for reclaim(). Only inside an Entry.
  void retire(Tcb& t);
  // Frees the retired TCBs and gives their ids back (Entry's destructor).
  void reclaim();
  void notify(const Tcb& t) {
    if (on_event_ && !t.user_closed) on_event_(t.id);
  }
  void set_state(Tcb& t, TcpState s, Instant now);
  void init_connection(Tcb& t, Instant now);
  // The send side of a new connection from its ISS, for both opens.
  void init_send_seq(Tcb& t, SeqNum iss);
  SeqNum make_isn(const FourTuple& tuple, Instant now) const;
  std::uint32_t ts_now(const Tcb& t, Instant now) const;
  // Closes the connection with err (nullopt: quietly); retires orphans and
  // a listener's children (t stays valid until the entry point returns).
  void connection_done(Tcb& t, std::optional<std::errc> err, Instant now);
  void enter_time_wait(Tcb& t, Instant now);

  // --- the byte API (io.cpp): recv() and read_with()
  // are a copy or a look, then consume(); send() and write_with() a copy or
  // a fill, then queued().
  // What recv() returns when it has no bytes to give (an error, EAGAIN or
  // end of stream); nullopt while bytes are readable. peek leaves a pending
  // error pending.
  std::optional<Result<TcpRecv>> recv_without_data(Tcb* t, bool peek);
  // Drops n (<= readable) received bytes and makes what follows from the
  // room opened: the window update, freeing a TIME-WAIT's buffers. Returns n.
  std::size_t consumed(Tcb& t, std::size_t n, Instant now);
  // The connection send() may queue on, or why not (all of send()'s errors
  // but EAGAIN for a full buffer).
  Result<Tcb*> sendable(SocketId s);
  // After n bytes were added to the send ring: output as send() does.
  std::size_t queued(Tcb& t, std::size_t n, Instant now, bool more);
  // read_with()'s and write_with()'s non-template halves.
  Result<tcp::ReadSpans> recv_spans(SocketId s);
  Result<tcp::WriteSpans> send_spans(SocketId s, std::size_t max);
  Result<std::size_t> send_filled(SocketId s, std::size_t n, Instant now, bool more);

  // --- input (input.cpp: demux and the per-state steps; input_syn.cpp,
  // input_ack.cpp and input_text.cpp: SYN-SENT, ACK processing, text and FIN)
  void input_segment(Tcb& t, const wire::TcpView& seg, Instant now);
  void input_syn_sent(Tcb& t, const wire::TcpView& seg, Instant now);
  bool process_ack(Tcb& t, const wire::TcpView& seg, Instant now);
  // The seventh step for in-window text at seq (trimmed to RCV.NXT and
  // the window). dsack_noted: a D-SACK was already noted for this segment
  // (its part below RCV.NXT), so no other part of it is reported.
  void process_text(Tcb& t, SeqNum seq, std::span<const std::uint8_t> payload, bool dsack_noted, Instant now);
  void process_fin(Tcb& t, Instant now);
  void update_window(Tcb& t, const wire::TcpView& seg);
  void take_rtt_sample(Tcb& t, const wire::TcpView& seg, SeqNum ack, Instant now);
  void on_dupack(Tcb& t, Instant now);
  void on_ece(Tcb& t, SeqNum ack);
  void limited_transmit(Tcb& t, Instant now);
  void send_challenge_ack(Tcb& t, Instant now);
  void apply_syn_options(Tcb& t, const wire::TcpOptions& o);
  // Keeps a SYN's text until the connection is ESTABLISHED (RFC 9293 §3.10.7.2).
  void hold_syn_text(Tcb& t, const wire::TcpView& seg);

  // --- listener (listener.cpp)
  void input_listen(Tcb& l, Ipv4Addr src, Ipv4Addr dst, const wire::TcpView& seg, Instant now);
  void child_established(Tcb& child, Instant now);
  void detach_child(Tcb& child);

  // --- output (output.cpp)
  // How output() treats a partial segment: normal (TCP_CORK and Nagle as
  // set), more (held as if corked: a send with MSG_MORE), push (sent now,
  // cork and Nagle aside: the cork timeout, TCP_NODELAY's flush).
  enum class Push : std::uint8_t { normal, more, push };
  void output(Tcb& t, Instant now, Push mode = Push::normal);
  // Send-buffer size in force and the room below it (and below the
  // TCP_NOTSENT_LOWAT mark).
  std::size_t snd_limit(const Tcb& t) const;
  std::size_t snd_room(const Tcb& t) const;
  void output_sack_recovery(Tcb& t, Instant now);
  // Sends up to max_len bytes from seq (plus FIN when it is reached); returns
  // the sequence space consumed.
  std::uint32_t transmit(Tcb& t, SeqNum seq, std::uint32_t max_len, Instant now);
  void send_syn(Tcb& t, Instant now);
  void send_ack(Tcb& t, Instant now);
  void send_probe(Tcb& t, Instant now);  // seq snd_una - 1: elicits an ACK
  void send_rst_for(Tcb& t, Instant now);
  // One segment of the connection: data_len bytes from the send ring at
  // seq, the ACK and window, and the options the connection uses.
  void send_segment(Tcb& t, SeqNum seq, wire::TcpFlags flags, std::size_t data_len, Instant now);
  // A RST answering a segment that matched no connection (RFC 9293 §3.10.7.1).
  void send_reset_reply(Ipv4Addr src, Ipv4Addr dst, const wire::TcpView& seg, Instant now);
  void send_raw(const FourTuple& tuple, const wire::TcpRepr& r, std::span<const std::uint8_t> payload, Instant now);
  std::uint16_t window_to_advertise(Tcb& t);
  // Free space in the receive buffer (Tcb::rcv_buf, not the ring's grown
  // capacity): what may be offered to the peer.
  static std::size_t rcv_space(const Tcb& t) {
    const std::size_t used = t.data->rcv.size();
    return t.rcv_buf > used ? t.rcv_buf - used : 0;
  }
  void maybe_window_update(Tcb& t, Instant now);

  // --- timers (timers.cpp)
  void rearm(Tcb& t);
  void on_timer(SocketId id, Instant now);
  void on_rtx_timeout(Tcb& t, Instant now);
  void on_persist(Tcb& t, Instant now);
  void on_keepalive(Tcb& t, Instant now);
  void arm_rtx(Tcb& t, Instant now);
  void arm_keepalive(Tcb& t, Instant now);
  Duration keep_idle(const Tcb& t) const;
  bool timed_out(const Tcb& t, Instant now) const;
  // Ends a connection that gave up on its peer: the soft error, else ETIMEDOUT (timers.cpp).
  void time_out(Tcb& t, Instant now);

  IpSender& ip_;
  TcpConfig cfg_;
  std::uint8_t in_ecn_ = 0;  // the ECN field of the segment being processed (input())
  SipKey secret_;
  PortTable ports_;
  ConnectionIndex<SocketSlot> conns_;  // live connections only, so the slot is enough
  TimerHeap<SocketId> timers_;
  std::vector<std::unique_ptr<Tcb>> sockets_;  // by slot (socket_slot(id))
  SocketIds ids_;
  std::size_t live_ = 0;
  int depth_ = 0;                             // Entry nesting
  std::vector<SocketId> graveyard_;           // retired, freed by reclaim() in retirement order
  std::function<void(SocketId)> on_reclaim_;  // tests only (TcpTestAccess): called as each TCB is freed
  TcpCounters counters_;
  std::function<void(SocketId)> on_event_;
};

}  // namespace weft
