#include "stack/stack.hpp"

#include <algorithm>
#include <cstring>

#include "ip/fragment.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"

namespace weft {

namespace {
PortTableConfig port_config(const StackConfig& cfg, Rng& rng) {
  PortTableConfig p;
  p.ephemeral_lo = cfg.ephemeral_lo;
  p.ephemeral_hi = cfg.ephemeral_hi;
  for (auto& b : p.secret) b = static_cast<std::uint8_t>(rng.next());
  return p;
}
SipKey draw_key(Rng& rng) {
  SipKey k;
  for (auto& b : k) b = static_cast<std::uint8_t>(rng.next());
  return k;
}
}  // namespace

Stack::Stack(StackConfig cfg)
    : cfg_(cfg),
      rng_(cfg.seed),
      reasm_(cfg.reassembly),
      udp_(*this, port_config(cfg_, rng_), pool_),
      next_ident_(static_cast<std::uint16_t>(rng_.next())),
      icmp_tokens_(cfg.icmp_error_burst),
      tcp_(*this, port_config(cfg_, rng_), cfg.tcp, draw_key(rng_)) {}

// ---------------------------------------------------------------- input

void Stack::receive(std::span<const std::uint8_t> packet, Instant now) {
  ++ip_.in_receives;
  input(packet, now, false);
}

void Stack::input(std::span<const std::uint8_t> packet, Instant now, bool from_loopback) {
  if (wire::ip_version(packet) != 4) {
    // IPv6 and anything else arriving on a link: not ours to handle.
    ++ip_.in_unsupported;
    return;
  }
  auto v = wire::Ipv4View::parse(packet);
  if (!v) {
    switch (v.error()) {
      case wire::ParseError::bad_header_len:
        ++ip_.in_bad_header_len;
        break;
      case wire::ParseError::bad_total_len:
        ++ip_.in_bad_total_len;
        break;
      case wire::ParseError::bad_checksum:
        ++ip_.in_bad_checksum;
        break;
      case wire::ParseError::bad_version:
        ++ip_.in_unsupported;
        break;
      default:
        ++ip_.in_truncated;
        break;
    }
    return;
  }
  const Ipv4Addr src = v->src(), dst = v->dst();
  // RFC 1122 §3.2.1.3: 127/8 never appears on a wire, and a packet claiming
  // our own source from outside is spoofed.
  if (!from_loopback && (src.is_loopback() || dst.is_loopback() || src == address())) {
    ++ip_.in_martian;
    return;
  }
  const bool for_us = dst == address() || dst.is_broadcast() || dst == cfg_.address.directed_broadcast() ||
                      (from_loopback && dst.is_loopback());
  if (!for_us) {
    ++ip_.in_not_for_us;  // a host does not forward (RFC 1122 §3.3.1)
    return;
  }
  if (v->is_fragment()) {
    ++ip_.in_fragments;
    auto whole = reasm_.add(ip::FragmentInfo{ip::FragmentKey{src, dst, v->protocol(), v->ident()}, v->frag_offset(),
                                             v->more_fragments(), v->payload()},
                            now);
    if (!whole) return;
    ++ip_.reassembled;
    // ECN of a reassembled datagram: that of the fragment completing it
    // (RFC 3168 §5.3 would take CE if any fragment had it; TCP segments
    // carry DF, so only other protocols are ever reassembled here).
    deliver(src, dst, v->protocol(), v->ttl(), {}, *whole, now, v->ecn());
    return;
  }
  deliver(src, dst, v->protocol(), v->ttl(), v->header(), v->payload(), now, v->ecn());
}

void Stack::deliver(Ipv4Addr src, Ipv4Addr dst, std::uint8_t protocol, std::uint8_t ttl,
                    std::span<const std::uint8_t> ip_header, std::span<const std::uint8_t> payload, Instant now,
                    std::uint8_t ecn) {
  switch (protocol) {
    case static_cast<std::uint8_t>(IpProto::icmp):
      ++ip_.in_delivered;
      icmp_input(src, dst, ttl, payload, now);
      return;
    case static_cast<std::uint8_t>(IpProto::udp):
      ++ip_.in_delivered;
      if (!udp_.input(src, dst, payload))
        send_dest_unreachable(wire::icmp_code::port_unreachable, src, dst, protocol, ip_header, payload, now);
      return;
    case static_cast<std::uint8_t>(IpProto::tcp):
      ++ip_.in_delivered;
      // TCP answers what matches no socket with RST (RFC 9293 §3.10.7.1), not ICMP.
      tcp_.input(src, dst, payload, now, ecn);
      return;
    default:
      // RFC 1122 §3.2.2.1: a host SHOULD answer protocol unreachable.
      ++ip_.in_unknown_protocol;
      send_dest_unreachable(wire::icmp_code::protocol_unreachable, src, dst, protocol, ip_header, payload, now);
      return;
  }
}

// --------------------------------------------------------------- output

PacketBuf Stack::take_buffer(std::size_t transport_len) { return pool_.take(kHeaderRoom + transport_len); }

bool Stack::has_route(Ipv4Addr dst) const {
  return is_local_address(dst) || dst.is_broadcast() || cfg_.address.contains(dst) || cfg_.gateway.has_value();
}

Status Stack::send_ip(PacketBuf&& buf, const IpSendParams& p, Instant) {
  ++ip_.out_requests;
  const std::size_t total = buf.size();
  if (total > 65535) {
    ++ip_.out_too_big;
    pool_.give(std::move(buf));
    return std::errc::message_size;
  }
  const bool local = is_local_address(p.dst);
  if (!has_route(p.dst)) {
    ++ip_.out_no_route;
    pool_.give(std::move(buf));
    return std::errc::network_unreachable;
  }
  if (!local && total > cfg_.mtu && p.dont_fragment) {
    ++ip_.out_too_big;
    pool_.give(std::move(buf));
    return std::errc::message_size;
  }
  wire::Ipv4Repr h;
  h.src = p.src;
  h.dst = p.dst;
  h.protocol = static_cast<std::uint8_t>(p.protocol);
  h.payload_len = static_cast<std::uint16_t>(total - kHeaderRoom);
  // RFC 6864 §4.1: the ident must be unique per (src, dst, protocol) for as
  // long as fragments may live, so one counter for all is enough.
  h.ident = next_ident_++;
  h.dont_fragment = p.dont_fragment;
  h.ttl = p.ttl;
  h.dscp_ecn = p.ecn & 3;
  h.emit(std::span<std::uint8_t>(buf).first(kHeaderRoom));
  if (local) {
    // Never reaches the link: the loopback path has no MTU to respect
    // (Linux's lo has 65536), so no fragmenting either.
    ++ip_.loopback;
    loop_in_.push_back(std::move(buf));
    return ok_status();
  }
  if (total <= cfg_.mtu) {
    ++ip_.out_transmits;
    link_out_.push_back(std::move(buf));
    return ok_status();
  }
  transmit_fragments(std::move(buf), h, cfg_.mtu);
  return ok_status();
}

void Stack::transmit_fragments(PacketBuf&& buf, wire::Ipv4Repr h, std::size_t mtu) {
  const std::span<const std::uint8_t> whole(buf);
  ip::fragment_payload(whole.subspan(kHeaderRoom), mtu, kHeaderRoom,
                       [&](std::size_t offset, bool more, std::span<const std::uint8_t> chunk) {
                         PacketBuf f = pool_.take(kHeaderRoom + chunk.size());
                         std::memcpy(f.data() + kHeaderRoom, chunk.data(), chunk.size());
                         h.payload_len = static_cast<std::uint16_t>(chunk.size());
                         h.frag_offset = static_cast<std::uint16_t>(offset);
                         h.more_fragments = more;
                         h.emit(std::span<std::uint8_t>(f).first(kHeaderRoom));
                         ++ip_.out_fragments;
                         ++ip_.out_transmits;
                         link_out_.push_back(std::move(f));
                       });
  pool_.give(std::move(buf));
}

Ipv4Addr Stack::source_for(Ipv4Addr dst) const { return dst.is_loopback() ? Ipv4Addr(127, 0, 0, 1) : address(); }

bool Stack::is_local_address(Ipv4Addr a) const { return a == address() || a.is_loopback(); }

std::size_t Stack::mtu_for(Ipv4Addr dst) const { return is_local_address(dst) ? 65535 : cfg_.mtu; }

// ----------------------------------------------------------------- time

void Stack::poll(Instant now) {
  reasm_.expire(now);
  tcp_.poll(now);
  // Only what is queued now: replies generated while delivering wait for the
  // next poll, so a host talking to itself cannot starve the loop.
  for (std::size_t n = loop_in_.size(); n > 0; --n) {
    PacketBuf b = loop_in_.pop_front();
    input(b, now, true);
    pool_.give(std::move(b));
  }
}

std::optional<Instant> Stack::next_deadline() const {
  if (!loop_in_.empty()) return Instant{};  // at once
  auto d = reasm_.next_deadline();
  if (auto t = tcp_.next_deadline(); t && (!d || *t < *d)) d = t;
  return d;
}

CounterList Stack::all_counters() const {
  CounterList out;
  collect_counters(ip_, "ip.", out);
  collect_counters(reasm_.counters(), "ip.frag.", out);
  collect_counters(icmp_, "icmp.", out);
  collect_counters(udp_.counters(), "udp.", out);
  collect_counters(tcp_.counters(), "tcp.", out);
  // Gauges from the TCP layer's public view: every socket it holds
  // (listeners, connections, orphans finishing a close) and, of those,
  // the ones waiting out TIME-WAIT.
  std::uint64_t time_wait = 0;
  tcp_.for_each_socket([&](const TcpInfo& i) { time_wait += i.state == tcp::TcpState::time_wait; });
  out.emplace_back("tcp.sockets", tcp_.socket_count());
  out.emplace_back("tcp.time_wait", time_wait);
  return out;
}

}  // namespace weft
