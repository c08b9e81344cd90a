#include "udp/udp.hpp"

#include <algorithm>
#include <cstring>

#include "wire/udp.hpp"

namespace weft {

namespace {
// The demux hash needs its own key: a different secret from the port
// allocator's, so learning one says nothing about the other.
SipKey demux_key(const PortTableConfig& ports) {
  SipKey k = ports.secret;
  for (auto& b : k) b = static_cast<std::uint8_t>(b ^ 0x5c);
  return k;
}
}  // namespace

UdpLayer::UdpLayer(IpSender& ip, PortTableConfig ports, PacketPool& pool)
    : ip_(ip), pool_(pool), ports_(ports), connected_(demux_key(ports)) {}

// The slot's socket, if it is this id's: a stale id (an older generation
// of the slot) finds nothing.
UdpLayer::Socket* UdpLayer::get(SocketId s) {
  const SocketSlot slot = socket_slot(s);
  return slot < sockets_.size() && sockets_[slot].in_use && sockets_[slot].id == s ? &sockets_[slot] : nullptr;
}
const UdpLayer::Socket* UdpLayer::get(SocketId s) const {
  const SocketSlot slot = socket_slot(s);
  return slot < sockets_.size() && sockets_[slot].in_use && sockets_[slot].id == s ? &sockets_[slot] : nullptr;
}

SocketId UdpLayer::open() {
  const SocketId id = ids_.take(sockets_);
  Socket& s = sockets_[socket_slot(id)];
  s = Socket{};
  s.in_use = true;
  s.id = id;
  ++live_;
  return id;
}

Status UdpLayer::bind(SocketId id, Endpoint local) {
  Socket* s = get(id);
  if (!s) return std::errc::bad_file_descriptor;
  if (s->bound) return std::errc::invalid_argument;
  // Only the wildcard or an address of this host may be bound (Linux's
  // inet_bind: EADDRNOTAVAIL otherwise).
  if (!local.addr.is_any() && !ip_.is_local_address(local.addr)) return std::errc::address_not_available;
  auto port = ports_.bind(BindRequest{id, local.addr, local.port, s->reuse_addr});
  if (!port) return port.error();
  s->bound = Endpoint{local.addr, *port};
  return ok_status();
}

Status UdpLayer::autobind(SocketId id, Socket& s) {
  if (s.bound) return ok_status();
  auto port = ports_.bind(BindRequest{id, Ipv4Addr::any(), Port{0}, s.reuse_addr});
  if (!port) return port.error();
  s.bound = Endpoint{Ipv4Addr::any(), *port};
  return ok_status();
}

Status UdpLayer::connect(SocketId id, Endpoint remote) {
  Socket* s = get(id);
  if (!s) return std::errc::bad_file_descriptor;
  if (remote.port.is_zero() || remote.addr.is_any()) return std::errc::invalid_argument;
  if (s->connected) {
    connected_.erase(*s->connected);
    s->connected.reset();
  }
  Ipv4Addr local_addr = s->bound && !s->bound->addr.is_any() ? s->bound->addr : ip_.source_for(remote.addr);
  if (!s->bound) {
    // RFC 6056: the ephemeral port is chosen knowing the peer, so that the
    // same port can serve different peers and guessing it is hard.
    auto port = ports_.bind_ephemeral_for(id, local_addr, remote, [&](Port p) {
      return connected_.find(FourTuple{{local_addr, p}, remote}) == nullptr;
    });
    if (!port) return port.error();
    s->bound = Endpoint{Ipv4Addr::any(), *port};
  }
  FourTuple t{{local_addr, s->bound->port}, remote};
  if (connected_.find(t) != nullptr) return std::errc::address_in_use;
  connected_.insert(t, socket_slot(id));
  s->connected = t;
  s->pending_error.reset();
  return ok_status();
}

Result<std::size_t> UdpLayer::send_to(SocketId id, std::span<const std::uint8_t> data, std::optional<Endpoint> to,
                                      Instant now) {
  Socket* s = get(id);
  if (!s) return std::errc::bad_file_descriptor;
  if (s->pending_error) {
    auto e = *s->pending_error;
    s->pending_error.reset();
    return e;
  }
  if (!to) {
    if (!s->connected) return std::errc::destination_address_required;
    to = s->connected->remote;
  }
  if (to->port.is_zero() || to->addr.is_any()) return std::errc::invalid_argument;
  if (data.size() > kMaxPayload) return std::errc::message_size;
  const std::size_t ip_len = IpSender::kHeaderRoom + wire::UdpRepr::header_len + data.size();
  if (s->dont_fragment && ip_len > ip_.mtu_for(to->addr)) return std::errc::message_size;
  if (auto st = autobind(id, *s); !st) return st.error();

  Ipv4Addr src;
  if (s->connected && s->connected->remote == *to)
    src = s->connected->local.addr;
  else
    src = s->bound->addr.is_any() ? ip_.source_for(to->addr) : s->bound->addr;

  PacketBuf buf = ip_.take_buffer(wire::UdpRepr::header_len + data.size());
  auto segment = std::span<std::uint8_t>(buf).subspan(IpSender::kHeaderRoom);
  if (!data.empty()) std::memcpy(segment.data() + wire::UdpRepr::header_len, data.data(), data.size());
  wire::UdpRepr{s->bound->port, to->port, static_cast<std::uint16_t>(data.size())}.emit(segment, src, to->addr,
                                                                                        !ip_.checksum_offload());
  auto st = ip_.send_ip(std::move(buf), IpSendParams{src, to->addr, IpProto::udp, s->dont_fragment}, now);
  if (!st) {
    ++counters_.send_errors;
    return st.error();
  }
  ++counters_.out_datagrams;
  return data.size();
}

Result<UdpRecv> UdpLayer::recv_from(SocketId id, std::span<std::uint8_t> buf) {
  Socket* s = get(id);
  if (!s) return std::errc::bad_file_descriptor;
  if (s->queue.empty()) {
    if (s->pending_error) {
      auto e = *s->pending_error;
      s->pending_error.reset();
      return e;
    }
    return std::errc::resource_unavailable_try_again;
  }
  Queued q = s->queue.pop_front();
  s->queued_bytes -= q.data.size() + kDatagramOverhead;
  UdpRecv r;
  r.full_len = q.data.size();
  r.len = std::min(buf.size(), q.data.size());
  if (r.len) std::memcpy(buf.data(), q.data.data(), r.len);
  r.from = q.from;
  r.to = q.to;
  pool_.give(std::move(q.data));
  return r;
}

Status UdpLayer::close(SocketId id) {
  Socket* s = get(id);
  if (!s) return std::errc::bad_file_descriptor;
  if (s->connected) connected_.erase(*s->connected);
  ports_.release(id);
  while (!s->queue.empty()) pool_.give(s->queue.pop_front().data);
  *s = Socket{};
  ids_.give(id);  // the id is stale from now on
  --live_;
  return ok_status();
}

Status UdpLayer::set_reuse_addr(SocketId id, bool on) {
  Socket* s = get(id);
  if (!s) return std::errc::bad_file_descriptor;
  s->reuse_addr = on;
  return ok_status();
}
Status UdpLayer::set_dont_fragment(SocketId id, bool on) {
  Socket* s = get(id);
  if (!s) return std::errc::bad_file_descriptor;
  s->dont_fragment = on;
  return ok_status();
}
Status UdpLayer::set_recv_buffer(SocketId id, std::size_t bytes) {
  Socket* s = get(id);
  if (!s) return std::errc::bad_file_descriptor;
  // Linux doubles the value for bookkeeping overhead and enforces a floor.
  s->rcvbuf = std::max<std::size_t>(bytes * 2, 2304);
  return ok_status();
}
std::optional<UdpOptions> UdpLayer::options(SocketId id) const {
  const Socket* s = get(id);
  if (!s) return std::nullopt;
  return UdpOptions{s->reuse_addr, s->dont_fragment, s->rcvbuf};
}
std::optional<Endpoint> UdpLayer::local_endpoint(SocketId id) const {
  const Socket* s = get(id);
  if (!s || !s->bound) return std::nullopt;
  return s->connected ? s->connected->local : *s->bound;
}
bool UdpLayer::readable(SocketId id) const {
  const Socket* s = get(id);
  return s && (!s->queue.empty() || s->pending_error);
}

void UdpLayer::enqueue(SocketId id, Socket& s, Endpoint from, Ipv4Addr to, std::span<const std::uint8_t> payload) {
  const std::size_t charge = payload.size() + kDatagramOverhead;
  // A full queue drops the new datagram and counts it; it never grows.
  if (s.queued_bytes + charge > s.rcvbuf) {
    ++counters_.rcvbuf_errors;
    ++s.drops;
    return;
  }
  PacketBuf b = pool_.take(payload.size());
  if (!payload.empty()) std::memcpy(b.data(), payload.data(), payload.size());
  s.queued_bytes += charge;
  s.queue.push_back(Queued{from, to, std::move(b)});
  ++counters_.in_datagrams;
  notify(id);
}

bool UdpLayer::input(Ipv4Addr src, Ipv4Addr dst, std::span<const std::uint8_t> segment) {
  auto v = wire::UdpView::parse(segment, src, dst, !ip_.checksum_offload());
  if (!v) {
    ++counters_.in_errors;
    switch (v.error()) {
      case wire::ParseError::bad_checksum:
        ++counters_.bad_checksum;
        break;
      case wire::ParseError::bad_length:
        ++counters_.bad_length;
        break;
      default:
        ++counters_.truncated;
        break;
    }
    return true;
  }
  const Endpoint from{src, v->src_port()};
  const Endpoint local{dst, v->dst_port()};
  // 1. The socket connected to exactly this 4-tuple.
  if (const SocketSlot* slot = connected_.find(FourTuple{local, from})) {
    Socket& s = sockets_[*slot];
    enqueue(s.id, s, from, dst, v->payload());
    return true;
  }
  // 2./3. The socket bound to (dst, port), else (wildcard, port). A socket
  // that is connected elsewhere does not take strangers' datagrams.
  if (auto id = ports_.lookup(dst, local.port)) {
    Socket& s = sockets_[socket_slot(*id)];
    if (!s.connected) {
      enqueue(*id, s, from, dst, v->payload());
      return true;
    }
  }
  ++counters_.no_ports;
  return false;
}

void UdpLayer::icmp_error(Endpoint local, Endpoint remote, std::errc err) {
  // Like Linux without IP_RECVERR, only a connected socket hears of errors:
  // an unconnected one cannot tell which of its peers the error is about.
  if (const SocketSlot* slot = connected_.find(FourTuple{local, remote})) {
    Socket& s = sockets_[*slot];
    s.pending_error = err;
    notify(s.id);
  }
}

std::vector<UdpSocketInfo> UdpLayer::sockets() const {
  std::vector<UdpSocketInfo> out;
  for (const Socket& s : sockets_) {
    if (!s.in_use) continue;
    UdpSocketInfo i{s.id, s.bound.value_or(Endpoint{}), std::nullopt, s.queued_bytes, s.drops};
    if (s.connected) {
      i.local = s.connected->local;
      i.remote = s.connected->remote;
    }
    out.push_back(i);
  }
  return out;
}

}  // namespace weft
