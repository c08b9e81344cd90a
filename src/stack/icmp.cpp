// ICMP (RFC 792) for a host: echo, and destination unreachable sent and
// received, under the rules of RFC 1122 §3.2.2.
#include <algorithm>
#include <cstring>

#include "stack/stack.hpp"
#include "wire/bytes.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"

namespace weft {

namespace {
using wire::load_be16;
using wire::load_be32;
bool is_icmp_error_type(std::uint8_t t) { return t == 3 || t == 4 || t == 5 || t == 11 || t == 12; }
}  // namespace

void Stack::icmp_input(Ipv4Addr src, Ipv4Addr dst, std::uint8_t ttl, std::span<const std::uint8_t> message,
                       Instant now) {
  auto v = wire::IcmpView::parse(message);
  if (!v) {
    ++icmp_.in_errors;
    return;
  }
  ++icmp_.in_msgs;
  switch (v->type()) {
    case wire::icmp_type::echo_request: {
      ++icmp_.in_echo_requests;
      // Like Linux's icmp_echo_ignore_broadcasts=1: answering broadcasts
      // turns a host into a smurf amplifier.
      if (dst != address() && !dst.is_loopback()) return;
      auto payload = v->payload();
      PacketBuf b = take_buffer(wire::IcmpRepr::header_len + payload.size());
      auto msg = std::span<std::uint8_t>(b).subspan(kHeaderRoom);
      if (!payload.empty()) std::memcpy(msg.data() + wire::IcmpRepr::header_len, payload.data(), payload.size());
      wire::IcmpRepr::echo_reply(v->echo_ident(), v->echo_seq(), payload.size()).emit(msg);
      if (send_ip(std::move(b), IpSendParams{dst, src, IpProto::icmp}, now)) ++icmp_.out_echo_replies;
      return;
    }
    case wire::icmp_type::echo_reply:
      ++icmp_.in_echo_replies;
      if (on_echo_reply_) on_echo_reply_(EchoReply{src, v->echo_ident(), v->echo_seq(), v->payload(), ttl, now});
      return;
    case wire::icmp_type::dest_unreachable: {
      ++icmp_.in_dest_unreachable;
      // The quote: the offending datagram's IP header and at least 8 bytes
      // of its payload (RFC 792). Its total length may exceed the quote, so
      // read the few fields we need directly, bounds-checked here.
      auto q = v->payload();
      if (q.size() < 20 || (q[0] >> 4) != 4) return;
      const std::size_t ihl = std::size_t{q[0] & 0x0fu} * 4;
      if (ihl < 20 || q.size() < ihl + 8) return;
      const Ipv4Addr qsrc{load_be32(&q[12])}, qdst{load_be32(&q[16])};
      const std::uint8_t qproto = q[9];
      const Endpoint qlocal{qsrc, Port{load_be16(&q[ihl])}}, qremote{qdst, Port{load_be16(&q[ihl + 2])}};
      if (qproto == static_cast<std::uint8_t>(IpProto::tcp) && is_local_address(qsrc)) {
        // RFC 1122 §4.2.3.9: port and protocol unreachable are hard errors
        // (they abort a connection attempt); the others are soft.
        const bool hard =
            v->code() == wire::icmp_code::port_unreachable || v->code() == wire::icmp_code::protocol_unreachable;
        const std::errc err = hard ? std::errc::connection_refused
                                   : (v->code() == 0 ? std::errc::network_unreachable : std::errc::host_unreachable);
        tcp_.icmp_error(qlocal, qremote, SeqNum{load_be32(&q[ihl + 4])}, err, hard, now);
        return;
      }
      // As Linux's icmp_err_convert: only port and protocol unreachable are
      // hard errors that a connected UDP socket reports.
      std::errc err;
      if (v->code() == wire::icmp_code::port_unreachable)
        err = std::errc::connection_refused;
      else if (v->code() == wire::icmp_code::protocol_unreachable)
        err = std::errc::no_protocol_option;
      else
        return;
      if (qproto == static_cast<std::uint8_t>(IpProto::udp) && is_local_address(qsrc))
        udp_.icmp_error(qlocal, qremote, err);
      return;
    }
    default:
      ++icmp_.in_other;
      return;
  }
}

bool Stack::take_icmp_token(Instant now) {
  const double elapsed = std::chrono::duration<double>(now - icmp_tokens_at_).count();
  icmp_tokens_at_ = now;
  if (elapsed > 0) icmp_tokens_ = std::min(cfg_.icmp_error_burst, icmp_tokens_ + elapsed * cfg_.icmp_errors_per_sec);
  if (icmp_tokens_ < 1) return false;
  icmp_tokens_ -= 1;
  return true;
}

void Stack::send_dest_unreachable(std::uint8_t code, Ipv4Addr original_src, Ipv4Addr original_dst,
                                  std::uint8_t protocol, std::span<const std::uint8_t> ip_header,
                                  std::span<const std::uint8_t> payload, Instant now) {
  // RFC 1122 §3.2.2: never about a datagram sent to a broadcast or
  // multicast address, from a non-unicast source, or that is itself an
  // ICMP error (errors about errors can loop forever).
  if (original_dst.is_broadcast() || original_dst.is_multicast() || original_dst == cfg_.address.directed_broadcast())
    return;
  if (original_src.is_any() || original_src.is_broadcast() || original_src.is_multicast()) return;
  if (protocol == static_cast<std::uint8_t>(IpProto::icmp) && (payload.empty() || is_icmp_error_type(payload[0])))
    return;
  if (!take_icmp_token(now)) {
    ++icmp_.rate_limited;
    return;
  }
  // A reassembled datagram has no header of its own left: describe it.
  std::array<std::uint8_t, 20> synth{};
  if (ip_header.empty()) {
    wire::Ipv4Repr h;
    h.src = original_src;
    h.dst = original_dst;
    h.protocol = protocol;
    h.payload_len = static_cast<std::uint16_t>(std::min<std::size_t>(payload.size(), 65515));
    h.emit(synth);
    ip_header = synth;
  }
  // RFC 1812 §4.3.2.3: quote as much as fits in 576 bytes.
  constexpr std::size_t kMaxIcmpError = 576;
  const std::size_t room = kMaxIcmpError - kHeaderRoom - wire::IcmpRepr::header_len;
  const std::size_t hdr = std::min(ip_header.size(), room);
  const std::size_t body = std::min(payload.size(), room - hdr);
  PacketBuf b = take_buffer(wire::IcmpRepr::header_len + hdr + body);
  auto msg = std::span<std::uint8_t>(b).subspan(kHeaderRoom);
  std::memcpy(msg.data() + wire::IcmpRepr::header_len, ip_header.data(), hdr);
  if (body) std::memcpy(msg.data() + wire::IcmpRepr::header_len + hdr, payload.data(), body);
  wire::IcmpRepr::dest_unreachable(code, hdr + body).emit(msg);
  const Ipv4Addr from = is_local_address(original_dst) ? original_dst : source_for(original_src);
  if (send_ip(std::move(b), IpSendParams{from, original_src, IpProto::icmp}, now)) ++icmp_.out_dest_unreachable;
}

Status Stack::send_echo_request(Ipv4Addr dst, std::uint16_t ident, std::uint16_t seq,
                                std::span<const std::uint8_t> payload, Instant now) {
  if (payload.size() > 65507) return std::errc::message_size;
  PacketBuf b = take_buffer(wire::IcmpRepr::header_len + payload.size());
  auto msg = std::span<std::uint8_t>(b).subspan(kHeaderRoom);
  if (!payload.empty()) std::memcpy(msg.data() + wire::IcmpRepr::header_len, payload.data(), payload.size());
  wire::IcmpRepr::echo_request(ident, seq, payload.size()).emit(msg);
  auto st = send_ip(std::move(b), IpSendParams{source_for(dst), dst, IpProto::icmp}, now);
  if (st) ++icmp_.out_echo_requests;
  return st;
}

}  // namespace weft
