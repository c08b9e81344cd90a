#include "link/udp_tunnel.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "wire/bytes.hpp"
#include "wire/ipv4.hpp"
#include "wire/sockaddr.hpp"

namespace weft {

namespace {

// Datagrams dropped within one receive() before it gives up and returns 0.
// The descriptor stays readable, so the event loop comes straight back; the
// bound only keeps a stranger's flood from holding one call forever.
constexpr int kMaxDropsPerReceive = 64;

std::errc errno_errc() { return static_cast<std::errc>(errno); }

// Best effort: a smaller buffer only costs drops under bulk load.
void set_buffer(int fd, int opt, int bytes) {
  (void)::setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}  // a hint: the kernel keeps its default if refused

bool usable_unicast(Ipv4Addr a) { return !a.is_any() && !a.is_broadcast() && !a.is_multicast(); }

}  // namespace

Result<std::unique_ptr<UdpTunnelLink>> UdpTunnelLink::open(Endpoint local, std::vector<UdpPeer> peers,
                                                           std::size_t mtu) {
  if (mtu < kMinMtu || mtu > kMaxMtu) return std::errc::invalid_argument;
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_errc();
  // From here the link owns fd: its destructor closes it on every error path.
  std::unique_ptr<UdpTunnelLink> link(new UdpTunnelLink(fd, local, mtu));
  set_buffer(fd, SO_RCVBUF, kSocketBuffer);
  set_buffer(fd, SO_SNDBUF, kSocketBuffer);
  // Never set DF on the outer datagram: the inner stack sizes its packets to
  // our MTU and cannot learn a smaller outer path MTU, so an outer datagram
  // the path cannot carry is better fragmented by the kernel than refused
  // with EMSGSIZE and lost (RFC 4459 weighs these choices for tunnels).
  int pmtu = IP_PMTUDISC_DONT;
  (void)::setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu,
                     sizeof pmtu);  // a hint: without it the kernel may fragment, which still delivers
  sockaddr_in sin = to_sockaddr(local);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin) < 0) return errno_errc();
  socklen_t len = sizeof sin;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) < 0) return errno_errc();
  link->local_ = from_sockaddr(sin);
  for (const UdpPeer& p : peers)
    if (auto st = link->add_peer(p); !st) return st.error();
  return link;
}

UdpTunnelLink::~UdpTunnelLink() {
  if (fd_ >= 0) ::close(fd_);
}

Status UdpTunnelLink::add_peer(const UdpPeer& peer) {
  if (!usable_unicast(peer.addr) || !usable_unicast(peer.udp.addr) || peer.udp.port.is_zero())
    return std::errc::invalid_argument;
  if (!by_addr_.emplace(peer.addr, to_sockaddr(peer.udp)).second) return std::errc::file_exists;
  sources_.insert(peer.udp);
  return ok_status();
}

bool UdpTunnelLink::send_to(PacketParts packet, std::size_t size, const sockaddr_in& to) {
  std::array<iovec, kMaxParts> iov;
  for (std::size_t i = 0; i < packet.size(); ++i)
    iov[i] = iovec{const_cast<std::uint8_t*>(packet[i].data()), packet[i].size()};  // sendmsg only reads
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr_in*>(&to);
  msg.msg_namelen = sizeof to;
  msg.msg_iov = iov.data();
  msg.msg_iovlen = packet.size();
  for (;;) {
    ssize_t n = ::sendmsg(fd_, &msg, 0);
    if (n >= 0) {
      // A UDP send is all-or-nothing: one call, one datagram.
      ++counters_.tx_packets;
      counters_.tx_bytes += size;
      return true;
    }
    if (errno == EINTR) continue;
    // ENOBUFS: the device queue is full (Linux returns it rather than
    // blocking even on blocking sockets); the same "try later" as EAGAIN.
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      ++counters_.tx_dropped_busy;
    } else {
      ++counters_.tx_errors;
    }
    return false;
  }
}

bool UdpTunnelLink::send(PacketParts packet, Instant /*now*/) {
  const std::size_t size = packet_size(packet);
  if (size > mtu_) {
    ++counters_.tx_too_big;
    return false;
  }
  if (packet.size() > kMaxParts) {
    ++counters_.tx_errors;
    return false;
  }
  // Only the version and the destination are needed, and our own stack
  // built the packet: a full Ipv4View::parse would verify the header
  // checksum on every packet for nothing (the receiving stack verifies it).
  std::array<std::uint8_t, wire::Ipv4View::min_header_len> head;
  if (copy_prefix(packet, head) < head.size() || wire::ip_version(head) != 4) {
    ++counters_.tx_malformed;
    return false;
  }
  const Ipv4Addr dst{wire::load_be32(&head[16])};
  if (dst.is_broadcast()) {
    if (by_addr_.empty()) {
      ++counters_.tx_no_peer;
      return false;
    }
    bool any = false;
    for (const auto& [addr, to] : by_addr_) any = send_to(packet, size, to) || any;
    return any;
  }
  auto it = by_addr_.find(dst);
  if (it == by_addr_.end()) {
    ++counters_.tx_no_peer;
    return false;
  }
  return send_to(packet, size, it->second);
}

bool UdpTunnelLink::fetch() {
  if (!rx_store_) {
    rx_store_ = std::make_unique_for_overwrite<std::uint8_t[]>(kRxBatch * kRxSlot);
    for (std::size_t i = 0; i < kRxBatch; ++i) {
      rx_iov_[i] = iovec{rx_store_.get() + i * kRxSlot, kRxSlot};
      rx_msgs_[i].msg_hdr.msg_iov = &rx_iov_[i];
      rx_msgs_[i].msg_hdr.msg_iovlen = 1;
      rx_msgs_[i].msg_hdr.msg_name = &rx_from_[i];
    }
  }
  for (auto& m : rx_msgs_) m.msg_hdr.msg_namelen = sizeof(sockaddr_in);  // value-result
  for (;;) {
    // MSG_TRUNC makes each msg_len the datagram's real length even when it
    // did not fit, so an oversize datagram is told apart from one that
    // exactly fills its slot and is dropped, never handed up truncated.
    int n = ::recvmmsg(fd_, rx_msgs_.data(), kRxBatch, MSG_TRUNC | MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) ++counters_.rx_errors;
      rx_next_ = rx_count_ = 0;
      return false;
    }
    rx_next_ = 0;
    rx_count_ = static_cast<std::size_t>(n);
    rx_drained_ = rx_count_ < kRxBatch;
    return n > 0;
  }
}

std::size_t UdpTunnelLink::receive(std::span<std::uint8_t> buf, Instant /*now*/) {
  for (int drops = 0; drops < kMaxDropsPerReceive; ++drops) {
    if (rx_next_ == rx_count_) {
      if (rx_drained_) {
        rx_drained_ = false;
        return 0;
      }
      if (!fetch()) return 0;
    }
    const std::size_t i = rx_next_++;
    const mmsghdr& m = rx_msgs_[i];
    const sockaddr_in& from = rx_from_[i];
    if (m.msg_hdr.msg_namelen < sizeof from || from.sin_family != AF_INET || !sources_.contains(from_sockaddr(from))) {
      ++counters_.rx_unknown_source;
      continue;
    }
    const std::size_t len = m.msg_len;
    if (len > buf.size() || len > kRxSlot) {
      ++counters_.rx_too_big;
      continue;
    }
    std::span<const std::uint8_t> d(rx_store_.get() + i * kRxSlot, len);
    if (len < wire::Ipv4View::min_header_len || wire::ip_version(d) != 4) {
      ++counters_.rx_malformed;
      continue;
    }
    std::memcpy(buf.data(), d.data(), len);
    ++counters_.rx_packets;
    counters_.rx_bytes += len;
    return len;
  }
  return 0;
}

std::optional<Instant> UdpTunnelLink::next_deadline() const {
  if (rx_next_ < rx_count_) return Instant{};
  return std::nullopt;
}

std::optional<Endpoint> parse_udp_endpoint(std::string_view s, std::string* why) {
  auto fail = [&](std::string msg) -> std::optional<Endpoint> {
    if (why) *why = std::move(msg);
    return std::nullopt;
  };
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos) return fail(fmt::format("'{}' is not ADDRESS:PORT, like 127.0.0.1:9000", s));
  if (!Ipv4Addr::parse(s.substr(0, colon))) return fail(fmt::format("'{}' is not an IPv4 address", s.substr(0, colon)));
  auto e = Endpoint::parse(s);
  if (!e || e->port.is_zero()) return fail(fmt::format("'{}' is not a port 1-65535", s.substr(colon + 1)));
  return e;
}

std::optional<UdpPeer> parse_udp_peer(std::string_view s, std::string* why) {
  auto fail = [&](std::string msg) -> std::optional<UdpPeer> {
    if (why) *why = std::move(msg);
    return std::nullopt;
  };
  auto eq = s.find('=');
  if (eq == std::string_view::npos)
    return fail(fmt::format("'{}' is not WEFT_ADDRESS=ADDRESS:PORT, like 192.0.2.20=127.0.0.1:9001", s));
  auto addr = Ipv4Addr::parse(s.substr(0, eq));
  if (!addr) return fail(fmt::format("'{}' is not an IPv4 address", s.substr(0, eq)));
  std::string inner;
  auto udp = parse_udp_endpoint(s.substr(eq + 1), &inner);
  if (!udp) return fail(inner);
  return UdpPeer{*addr, *udp};
}

}  // namespace weft
