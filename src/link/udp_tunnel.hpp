// UdpTunnelLink: IPv4 packets carried in UDP datagrams (IP-in-UDP), so that
// several weft hosts on one machine form a network with no TUN device and no
// privileges.
//
// Each host owns one ordinary OS UDP socket (the "outer" endpoint, e.g.
// 127.0.0.1:9000) and a table of peers: weft address -> the peer's outer
// endpoint. send() reads the packet's IPv4 destination and sends the packet,
// unchanged, as the payload of one datagram to that peer; receive() takes
// one datagram and hands its payload up as the packet. No header is added:
// the datagram boundary is the packet boundary, as TUN's read/write is.
//
// The table maps a packet's final destination, not a next hop: the Link
// interface passes only the packet, so a tunnel host reaches exactly its
// peers, with no routing through them.
//
// Trust: any local process can send datagrams to our port, so receive()
// accepts only datagrams whose source is a configured peer's endpoint
// (others are dropped and counted). That is the whole of the check: the
// inner source address is not compared with the peer's weft address, and
// the payload is not authenticated.
//
// MTU. The link's MTU is the inner packet size. The default, 1472 = 1500 -
// 20 (outer IPv4 header, no options) - 8 (UDP header), makes every
// encapsulated packet fit a 1500-byte Ethernet path unfragmented, so the
// tunnel also works between machines; over loopback alone (MTU 65536) any
// size up to 65507 = 65535 - 20 - 8, the largest UDP payload over IPv4
// (RFC 768, RFC 791), works too. Should the real path be smaller than the
// outer datagram, the kernel fragments it rather than refusing it (path MTU
// discovery is off on the socket; RFC 4459 discusses the choices).
//
// The socket is non-blocking; poll_fd() returns it for the event loop.
// send() never blocks: a full socket buffer drops the packet and counts it,
// as a full TUN queue does, and TCP recovers.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/result.hpp"
#include "link/link.hpp"
#include "wire/types.hpp"

namespace weft {

// One neighbour on the tunnel: packets for weft address `addr` go to the
// OS UDP endpoint `udp`, and only datagrams from `udp` are accepted.
struct UdpPeer {
  Ipv4Addr addr;
  Endpoint udp;
};

struct UdpTunnelCounters {
  std::uint64_t tx_packets = 0;  // datagrams sent (a broadcast counts once per peer)
  std::uint64_t tx_bytes = 0;
  std::uint64_t tx_too_big = 0;       // larger than our MTU; refused before sendto()
  std::uint64_t tx_malformed = 0;     // shorter than an IPv4 header or not version 4
  std::uint64_t tx_no_peer = 0;       // no peer for the destination address
  std::uint64_t tx_dropped_busy = 0;  // sendto() said EAGAIN/ENOBUFS: socket buffer full
  std::uint64_t tx_errors = 0;        // any other sendto() error
  std::uint64_t rx_packets = 0;
  std::uint64_t rx_bytes = 0;
  std::uint64_t rx_unknown_source = 0;  // datagram from an endpoint that is not a peer
  std::uint64_t rx_malformed = 0;       // from a peer, but not at least a 20-byte IPv4 header
  std::uint64_t rx_too_big = 0;         // longer than the caller's buffer; dropped, not truncated
  std::uint64_t rx_errors = 0;          // recvfrom() errors other than EAGAIN/EINTR

  template <class F>
  void visit(F&& f) const {
    f("tx_packets", tx_packets);
    f("tx_bytes", tx_bytes);
    f("tx_too_big", tx_too_big);
    f("tx_malformed", tx_malformed);
    f("tx_no_peer", tx_no_peer);
    f("tx_dropped_busy", tx_dropped_busy);
    f("tx_errors", tx_errors);
    f("rx_packets", rx_packets);
    f("rx_bytes", rx_bytes);
    f("rx_unknown_source", rx_unknown_source);
    f("rx_malformed", rx_malformed);
    f("rx_too_big", rx_too_big);
    f("rx_errors", rx_errors);
  }
};

class UdpTunnelLink final : public Link {
 public:
  // 1500 - 20 - 8: an encapsulated packet fits a 1500-byte path (see above).
  static constexpr std::size_t kDefaultMtu = 1472;
  // 65535 - 20 - 8: the largest UDP payload over IPv4.
  static constexpr std::size_t kMaxMtu = 65507;
  // RFC 791 §3.2: every internet module must forward a 68-byte datagram
  // unfragmented; below that IPv4 cannot work.
  static constexpr std::size_t kMinMtu = 68;
  // Requested SO_RCVBUF/SO_SNDBUF. Bulk TCP puts a whole window in flight in
  // one burst; the usual default (net.core.rmem_default, 208 KiB, charged
  // with each datagram's kernel overhead) holds only about a hundred
  // full-sized datagrams and would drop the rest. Best effort: the kernel
  // caps it at net.core.rmem_max/wmem_max.
  static constexpr int kSocketBuffer = 4 << 20;

  // Binds a UDP socket to `local` (port 0: the kernel picks one; see
  // local_endpoint()) and adds `peers` as add_peer() does.
  // Errors: EINVAL (mtu outside kMinMtu-kMaxMtu, or a peer add_peer()
  // refuses), EEXIST (two peers with one weft address), and the errno of
  // socket()/bind() (EADDRINUSE, EADDRNOTAVAIL, EACCES).
  static Result<std::unique_ptr<UdpTunnelLink>> open(Endpoint local, std::vector<UdpPeer> peers,
                                                     std::size_t mtu = kDefaultMtu);

  ~UdpTunnelLink() override;
  UdpTunnelLink(const UdpTunnelLink&) = delete;
  UdpTunnelLink& operator=(const UdpTunnelLink&) = delete;

  // Adds a neighbour at any time (tests open two links on ephemeral ports,
  // then tell each about the other).
  // Errors: EINVAL (weft address 0.0.0.0, 255.255.255.255 or multicast;
  // UDP endpoint with address 0.0.0.0, broadcast or multicast, or port 0),
  // EEXIST (the weft address already has a peer).
  Status add_peer(const UdpPeer& peer);

  // Sends the packet to the peer that owns its IPv4 destination. A packet
  // for the limited broadcast 255.255.255.255 (RFC 919) goes to every peer:
  // the peers are the whole local network. A directed broadcast is not
  // recognised (the link knows no prefix) and counts as tx_no_peer.
  // The parts leave as one datagram (sendmsg with an iovec), not joined.
  using Link::send;
  bool send(PacketParts packet, Instant now) override;
  // One datagram from a peer, or 0 when none is ready. Datagrams from
  // strangers, runts and ones longer than `buf` are dropped, counted and
  // skipped (up to a bound per call, so a flood cannot hold the caller).
  // Datagrams are fetched kRxBatch at a time with one recvmmsg(); see
  // rx_drained_ for when 0 comes without a system call.
  std::size_t receive(std::span<std::uint8_t> buf, Instant now) override;
  // Now, while datagrams fetched by the last recvmmsg() wait to be handed
  // out (an event loop must not sleep on the descriptor then).
  std::optional<Instant> next_deadline() const override;
  int poll_fd() const override { return fd_; }
  std::size_t mtu() const override { return mtu_; }
  // "udp:127.0.0.1:9000", with the port actually bound.
  std::string name() const override { return "udp:" + local_.to_string(); }

  // The bound OS endpoint (the real port when opened with port 0).
  Endpoint local_endpoint() const { return local_; }
  Port local_port() const { return local_.port; }
  const UdpTunnelCounters& counters() const { return counters_; }

 private:
  UdpTunnelLink(int fd, Endpoint local, std::size_t mtu) : fd_(fd), local_(local), mtu_(mtu) {}
  bool send_to(PacketParts packet, std::size_t size, const sockaddr_in& to);

  int fd_;
  Endpoint local_;
  std::size_t mtu_;
  std::unordered_map<Ipv4Addr, sockaddr_in> by_addr_;  // weft address -> where to send
  std::unordered_set<Endpoint> sources_;               // whom to accept datagrams from
  UdpTunnelCounters counters_;

  // Receive batching. A system call per datagram, plus one more to learn
  // that the socket is empty, was most of a request/response exchange's
  // cost; one recvmmsg() now fetches up to kRxBatch. Slots hold the largest
  // UDP payload, so what is dropped as too big is decided by the caller's
  // buffer as before; only the bytes received are ever touched.
  static constexpr std::size_t kRxBatch = 16;
  static constexpr std::size_t kRxSlot = 65536;
  bool fetch();  // one recvmmsg(); false when nothing was fetched
  // kRxBatch slots, allocated (not zeroed: only received bytes are read)
  // at the first receive().
  std::unique_ptr<std::uint8_t[]> rx_store_;
  std::array<mmsghdr, kRxBatch> rx_msgs_{};
  std::array<iovec, kRxBatch> rx_iov_{};
  std::array<sockaddr_in, kRxBatch> rx_from_{};
  std::size_t rx_next_ = 0;   // the next fetched datagram to hand out
  std::size_t rx_count_ = 0;  // how many the last recvmmsg() fetched
  // The last recvmmsg() returned fewer than it asked for: the socket was
  // empty then, so once those are handed out, receive() returns 0 without
  // asking again (what arrives later makes the descriptor readable).
  bool rx_drained_ = false;
};

// "127.0.0.1:9000": an IPv4 address and a port 1-65535. On failure returns
// nullopt and, if `why` is given, one line saying what is wrong.
std::optional<Endpoint> parse_udp_endpoint(std::string_view s, std::string* why = nullptr);
// "192.0.2.20=127.0.0.1:9001": a weft address, '=', a UDP endpoint as above.
std::optional<UdpPeer> parse_udp_peer(std::string_view s, std::string* why = nullptr);

}  // namespace weft
