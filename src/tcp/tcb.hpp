// The transmission control block (RFC 9293 §3.3.1): everything one TCP
// connection (or listener) remembers. Variable names follow the RFC.
//
// The bulky parts (the two ByteRings, the out-of-order tracker, the SACK
// scoreboard, congestion control) live in Tcb::Data behind a pointer and are
// freed on entering TIME-WAIT, so a connection waiting out 2*MSL costs only
// this small block.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

#include "base/time.hpp"
#include "tcp/byte_ring.hpp"
#include "tcp/congestion.hpp"
#include "tcp/constants.hpp"
#include "tcp/reassembly.hpp"
#include "tcp/rto.hpp"
#include "tcp/sack.hpp"
#include "tcp/state.hpp"
#include "transport/socket_id.hpp"
#include "wire/types.hpp"

namespace weft::tcp {

// Per-socket options (setsockopt).
struct SocketOptions {
  std::size_t rcvbuf = 0;  // 0: the layer's default; as set (the layer applies its minimum)
  std::size_t sndbuf = 0;
  bool nodelay = false;
  bool keepalive = false;
  Duration keep_idle{0}, keep_interval{0};  // 0: the layer's default
  unsigned keep_count = 0;
  std::optional<Duration> linger;  // SO_LINGER; linger 0 = close sends RST
  bool reuse_addr = false;
  Duration user_timeout{0};         // TCP_USER_TIMEOUT; 0 = use the retry count
  unsigned syn_retries = 0;         // TCP_SYNCNT; 0 = the layer's default
  std::optional<bool> ecn;          // request ECN on an active open; unset: TcpConfig::ecn
  bool cork = false;                // TCP_CORK: hold partial segments
  std::uint32_t notsent_lowat = 0;  // TCP_NOTSENT_LOWAT; 0 = no mark
  bool inq = false;                 // TCP_INQ: recvmsg reports the bytes left
  std::uint32_t user_mss = 0;       // TCP_MAXSEG as set; 0 = from the MTU
};

enum class Recovery : std::uint8_t { none, newreno, sack };

struct Tcb {
  struct Data {
    Data(std::size_t sndbuf, std::size_t rcvbuf) : snd(sndbuf), rcv(rcvbuf) {}
    ByteRing snd;                        // front byte has sequence number snd_buf_seq
    ByteRing rcv;                        // front readable byte; rcv_nxt is past the readable end
    OutOfOrder ooo;                      // received ranges above rcv_nxt
    SackScoreboard sb;                   // sender's view of the peer's SACKed ranges
    std::vector<std::uint8_t> syn_text;  // text that came on the SYN, until ESTABLISHED (RFC 9293 §3.10.7.2)
  };

  SocketId id = 0;
  TcpState state = TcpState::closed;
  SocketOptions opt;

  // --- addressing
  std::optional<Endpoint> bound;  // as bound (address may be the wildcard)
  bool port_bound = false;        // holds a PortTable binding
  FourTuple tuple{};              // valid once connected
  bool in_index = false;          // entered in the ConnectionIndex

  // --- listener (state LISTEN)
  std::size_t backlog = 0;
  std::vector<SocketId> syn_queue;     // children in SYN-RECEIVED
  std::vector<SocketId> accept_queue;  // children established, not accepted
  // --- child of a listener, until accepted
  std::optional<SocketId> parent;

  // --- send sequence space (RFC 9293 §3.3.1)
  SeqNum iss{}, snd_una{}, snd_nxt{}, snd_max{};  // snd_max: highest sequence sent + 1
  std::uint32_t snd_wnd = 0;                      // scaled
  SeqNum snd_wl1{}, snd_wl2{};
  std::uint32_t max_snd_wnd = 0;
  std::uint8_t snd_wscale = 0;
  SeqNum snd_buf_seq{};     // sequence number of the send ring's first byte
  bool fin_queued = false;  // user has closed the sending side
  // --- receive sequence space
  SeqNum irs{}, rcv_nxt{};
  SeqNum rcv_adv{};  // right edge of the window last advertised
  std::uint8_t rcv_wscale = 0;
  // The receive buffer's size: what is offered to the peer (rcv_space()).
  // The ring's capacity may exceed it: the advertised right edge never
  // moves left (RFC 7323 §2.4), so when scaling rounds the free space down
  // the field is rounded up instead, and the ring is let grow to take what
  // the peer may then send (RFC 7323 appendix F; Linux's tcp_select_window
  // rounds up and lets its buffer grow the same).
  std::size_t rcv_buf = 0;
  // RCV.NXT + free space when a window was last offered (window updates
  // after reads are measured from it; see maybe_window_update).
  SeqNum rcv_free_edge{};
  bool fin_received = false;  // the peer's FIN was processed: end of stream

  // --- negotiated options
  std::uint32_t mss = kDefaultMss;       // effective send MSS: data bytes per segment (RFC 9293 §3.7.1)
  std::uint32_t mss_base = kDefaultMss;  // the same before the timestamp option's 12 bytes
  std::uint32_t rcv_mss = kDefaultMss;   // what we announced / expect
  bool sack_ok = false;
  bool ts_ok = false;
  bool wscale_ok = false;
  // ECN (RFC 3168 §6.1): negotiated; CE seen and ECE to echo until the
  // peer's CWR; CWR to send on the next new data segment; no further
  // reduction for an ECE until SND.UNA passes ecn_recover (once a window).
  bool ecn_ok = false;
  bool ece_pending = false;
  bool cwr_pending = false;
  SeqNum ecn_recover{};
  TsVal ts_recent{};  // TS.Recent (RFC 7323 §4.3)
  std::uint32_t ts_offset = 0;
  SeqNum last_ack_sent{};

  // --- timers (absolute deadlines; the earliest is in the layer's heap)
  std::optional<Instant> rtx_at;  // retransmission (also SYN, SYN-ACK)
  std::optional<Instant> delack_at;
  std::optional<Instant> persist_at;
  std::optional<Instant> keepalive_at;
  std::optional<Instant> timewait_at;
  std::optional<Instant> cork_at;  // held partial segment goes out (TCP_CORK / MSG_MORE ceiling)
  unsigned persist_backoff = 0;
  unsigned keep_probes = 0;
  Instant last_rcv{};       // when a segment last arrived
  Instant last_progress{};  // when snd_una last advanced (or sending began)

  // --- RTT and loss recovery
  RtoEstimator rto;
  std::unique_ptr<CongestionControl> cc;
  std::optional<SeqNum> rtt_seq;  // Karn timing when no timestamps
  Instant rtt_start{};
  Recovery recovery = Recovery::none;
  SeqNum recover{};   // RFC 6582 "recover"; RFC 6675 RecoveryPoint + 1 (from the ISS)
  SeqNum high_rxt{};  // RFC 6675 HighRxt (inclusive)
  std::optional<SeqNum> rescue_rxt;
  unsigned dupacks = 0;
  std::uint32_t limited_sent = 0;  // bytes Limited Transmit sent on this run of duplicate ACKs (RFC 3042)
  unsigned rtx_count = 0;          // RTOs since the last forward progress (RFC 9293 §3.8.3 R2)
  Instant syn_sent_at{};
  bool syn_timed_out = false;
  bool connect_failed = false;  // an active open ended in CLOSED (refused, timed out): connect() may start anew

  // --- receiver ACK policy
  bool ack_now = false;
  std::uint32_t unacked_bytes = 0;       // in-order bytes received since the last ACK
  unsigned quick_acks = 0;               // in-order data segments still to ACK at once (Linux's quick-ACK)
  std::optional<Instant> last_data_rcv;  // when data last arrived (none yet: nullopt)
  bool interactive = false;              // the host answers data with data at once (Linux's pingpong)

  // --- RFC 5961 challenge ACK rate limit
  Instant challenge_window{};
  unsigned challenges_in_window = 0;

  // --- user side
  bool rd_shut = false;
  bool user_closed = false;  // close() was called: orphan, freed when done
  // Ended and out of every table (TcpLayer::retire): no lookup finds it,
  // and it is freed when the outermost TcpLayer entry point returns, so a
  // Tcb& held across connection_done() stays valid until then.
  bool retired = false;
  bool reset = false;                      // connection was reset (ECONNRESET)
  std::optional<std::errc> pending_error;  // SO_ERROR
  std::optional<std::errc> soft_error;     // last ICMP soft error or send error; cleared by an ACK of new data

  // --- statistics (struct tcp_info)
  std::uint64_t retransmits = 0, bytes_in = 0, bytes_out = 0;
  std::uint64_t bytes_acked = 0;  // data bytes the peer acknowledged (tcpi_bytes_acked)

  std::unique_ptr<Data> data;

  explicit Tcb(RtoConfig rc) : rto(rc) {}

  // Bytes in the send ring (queued and not yet acknowledged).
  std::size_t snd_queued() const { return data ? data->snd.size() : 0; }
  // Sequence number one past the last queued data byte: where the FIN goes.
  SeqNum data_end() const { return snd_buf_seq + static_cast<std::uint32_t>(snd_queued()); }
  // Queued bytes never sent (Linux's write_seq - snd_nxt; SND.MAX, not
  // SND.NXT, so that a timeout pulling SND.NXT back does not count again).
  std::size_t snd_unsent() const {
    const SeqNum end = data_end();
    return seq_len_or_zero(snd_max, end);
  }
  // Whether the FIN (queued) has been acknowledged.
  bool fin_acked() const { return fin_queued && snd_una == data_end() + 1; }
  // Queued bytes from SND.NXT on: what may go next.
  std::uint32_t snd_avail() const { return seq_len_or_zero(snd_nxt, data_end()); }
  // Sequence space sent and not acknowledged, SND.MAX - SND.UNA (RFC 5681
  // §2 FlightSize; SND.MAX so that a timeout pulling SND.NXT back does not
  // shrink it).
  std::uint32_t flight_size() const { return seq_len(snd_una, snd_max); }
  // What the send window and cwnd leave to send from SND.NXT (RFC 5681
  // §3.1: at most min(cwnd, rwnd) outstanding). Before congestion control
  // exists, one MSS.
  std::uint32_t usable_window() const {
    const std::uint32_t wnd = std::min<std::uint32_t>(snd_wnd, cc ? cc->cwnd() : mss);
    const std::uint32_t sent = seq_len(snd_una, snd_nxt);
    return wnd > sent ? wnd - sent : 0;
  }
  // What the peer's window leaves from SND.NXT, cwnd aside: SND.UNA +
  // SND.WND - SND.NXT, 0 once SND.NXT is past the window's right edge.
  std::uint32_t snd_wnd_left() const { return seq_len_or_zero(snd_nxt, snd_una + snd_wnd); }

  // RCV.WND: the window last advertised, from RCV.NXT to its right edge (0
  // once RCV.NXT has reached it).
  std::uint32_t rcv_wnd() const { return seq_len_or_zero(rcv_nxt, rcv_adv); }
  // The acceptance test of RFC 9293 §3.10.7.4 (first, check sequence
  // number): a segment of `len` (its data, SYN and FIN) at `seq` is
  // acceptable when it starts or ends in RCV.WND; an empty one only at
  // RCV.NXT when the window is zero.
  bool acceptable(SeqNum seq, std::uint32_t len) const {
    const std::uint32_t wnd = rcv_wnd();
    if (len == 0) return wnd == 0 ? seq == rcv_nxt : SeqNum::in_window(seq, rcv_nxt, wnd);
    if (wnd == 0) return false;
    return SeqNum::in_window(seq, rcv_nxt, wnd) || SeqNum::in_window(seq + (len - 1), rcv_nxt, wnd);
  }
};

}  // namespace weft::tcp
