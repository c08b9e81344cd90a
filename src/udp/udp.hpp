// UDP (RFC 768): connectionless sockets and demultiplexing by destination.
//
// Connectionless, as the textbook transport layer has it: one socket per
// (address, port) takes datagrams from any source, in any order. Demux
// order (as Linux does):
// the socket connected to the datagram's full 4-tuple, else the socket bound
// to (destination address, port), else the one bound to (wildcard, port).
// Nothing matching → the caller answers ICMP port unreachable.
//
// Embedded, non-blocking API: every call returns at once; EAGAIN says
// "nothing yet", and on_readable tells when a socket has data or an error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "base/packet.hpp"
#include "base/result.hpp"
#include "base/time.hpp"
#include "ip/ip_sender.hpp"
#include "transport/demux.hpp"
#include "transport/ports.hpp"
#include "transport/socket_id.hpp"
#include "wire/types.hpp"

namespace weft {

struct UdpCounters {
  std::uint64_t in_datagrams = 0;  // delivered to a socket
  std::uint64_t no_ports = 0;      // no socket for the destination port
  std::uint64_t in_errors = 0;     // malformed (see the reasons below)
  std::uint64_t bad_checksum = 0;
  std::uint64_t bad_length = 0;
  std::uint64_t truncated = 0;
  std::uint64_t rcvbuf_errors = 0;  // dropped because the socket's queue was full
  std::uint64_t out_datagrams = 0;
  std::uint64_t send_errors = 0;
  template <class F>
  void visit(F&& f) const {
    f("in_datagrams", in_datagrams);
    f("no_ports", no_ports);
    f("in_errors", in_errors);
    f("bad_checksum", bad_checksum);
    f("bad_length", bad_length);
    f("truncated", truncated);
    f("rcvbuf_errors", rcvbuf_errors);
    f("out_datagrams", out_datagrams);
    f("send_errors", send_errors);
  }
};

struct UdpRecv {
  std::size_t len = 0;       // bytes copied into the caller's buffer
  std::size_t full_len = 0;  // the datagram's length (> len: truncated, MSG_TRUNC)
  Endpoint from;
  Ipv4Addr to;  // the destination address it was sent to
};

// A UDP socket's options as set (the setters below); src/udp/sockopt.hpp
// maps them to setsockopt(2)/getsockopt(2).
struct UdpOptions {
  bool reuse_addr = false;
  bool dont_fragment = false;
  std::size_t rcvbuf = 0;  // bytes, as stored (set_recv_buffer doubles what it is given)
};

// What netstat shows of one UDP socket.
struct UdpSocketInfo {
  SocketId id;
  Endpoint local;
  std::optional<Endpoint> remote;
  std::size_t recv_queue_bytes;
  std::uint64_t drops;
};

class UdpLayer {
 public:
  // Linux's default net.core.rmem_default.
  static constexpr std::size_t kDefaultRcvBuf = 212992;
  // Per-datagram overhead charged against the receive buffer, so that many
  // tiny datagrams are bounded too (as Linux charges skb truesize).
  static constexpr std::size_t kDatagramOverhead = 256;
  // Largest UDP payload over IPv4: 65535 - 20 - 8.
  static constexpr std::size_t kMaxPayload = 65507;

  UdpLayer(IpSender& ip, PortTableConfig ports, PacketPool& pool);

  // -- socket API ---------------------------------------------------------
  // After close() the id names nothing, even once a new socket takes its
  // slot (ids carry the slot's generation, socket_id.hpp): EBADF.
  SocketId open();
  // Errors: EBADF (no such socket), EINVAL (already bound),
  // EADDRNOTAVAIL (address not this host's), EADDRINUSE (port taken).
  Status bind(SocketId s, Endpoint local);
  // Fixes the peer: sends go there by default and only its datagrams are
  // received. Binds an ephemeral port first when unbound.
  // Errors: EBADF, EINVAL (port 0 or wildcard peer), ENETUNREACH,
  // EADDRNOTAVAIL/EADDRINUSE (no ephemeral port).
  Status connect(SocketId s, Endpoint remote);
  // Sends one datagram to `to` (or to the connected peer when nullopt).
  // Errors: EBADF, EDESTADDRREQ (no destination), EINVAL (port 0),
  // EMSGSIZE (over 65507 bytes, or larger than the MTU with don't-fragment),
  // ENETUNREACH, ECONNREFUSED (an earlier datagram was refused: reported once).
  Result<std::size_t> send_to(SocketId s, std::span<const std::uint8_t> data, std::optional<Endpoint> to, Instant now);
  // Takes the oldest datagram. A datagram longer than `buf` is truncated and
  // the rest discarded (full_len tells).
  // Errors: EBADF, EAGAIN (queue empty), ECONNREFUSED (reported once).
  Result<UdpRecv> recv_from(SocketId s, std::span<std::uint8_t> buf);
  // Errors: EBADF.
  Status close(SocketId s);

  Status set_reuse_addr(SocketId s, bool on);
  Status set_dont_fragment(SocketId s, bool on);
  Status set_recv_buffer(SocketId s, std::size_t bytes);
  // The options above; nullopt for an id that names no socket.
  std::optional<UdpOptions> options(SocketId s) const;
  std::optional<Endpoint> local_endpoint(SocketId s) const;
  bool readable(SocketId s) const;  // data queued or an error pending

  // Called when a socket becomes readable (data or error).
  void set_on_readable(std::function<void(SocketId)> f) { on_readable_ = std::move(f); }

  // -- from the IP layer ----------------------------------------------------
  // One UDP segment addressed to this host. Returns false when no socket
  // takes it (the caller then answers ICMP port unreachable). Malformed
  // segments are counted and reported as taken (no ICMP for garbage).
  bool input(Ipv4Addr src, Ipv4Addr dst, std::span<const std::uint8_t> segment);
  // An ICMP error quoting a datagram we sent from `local` to `remote`.
  void icmp_error(Endpoint local, Endpoint remote, std::errc err);

  const UdpCounters& counters() const { return counters_; }
  std::vector<UdpSocketInfo> sockets() const;
  std::size_t socket_count() const { return live_; }

 private:
  struct Queued {
    Endpoint from;
    Ipv4Addr to;
    PacketBuf data;
  };
  struct Socket {
    bool in_use = false;
    SocketId id = 0;                     // with the slot's generation
    std::optional<Endpoint> bound;       // as given to the port table
    std::optional<FourTuple> connected;  // with the concrete local address
    bool reuse_addr = false;
    bool dont_fragment = false;
    std::size_t rcvbuf = kDefaultRcvBuf;
    std::size_t queued_bytes = 0;
    Ring<Queued> queue;
    std::optional<std::errc> pending_error;
    std::uint64_t drops = 0;
  };

  Socket* get(SocketId s);
  const Socket* get(SocketId s) const;
  Status autobind(SocketId id, Socket& s);
  void enqueue(SocketId id, Socket& s, Endpoint from, Ipv4Addr to, std::span<const std::uint8_t> payload);
  void notify(SocketId id) {
    if (on_readable_) on_readable_(id);
  }

  IpSender& ip_;
  PacketPool& pool_;
  PortTable ports_;
  ConnectionIndex<SocketSlot> connected_;  // connected sockets' slots
  std::vector<Socket> sockets_;            // by slot (socket_slot(id))
  SocketIds ids_;
  std::size_t live_ = 0;
  UdpCounters counters_;
  std::function<void(SocketId)> on_readable_;
};

}  // namespace weft
