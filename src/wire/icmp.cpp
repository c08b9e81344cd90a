#include "wire/icmp.hpp"

#include <cassert>

#include "wire/checksum.hpp"

namespace weft::wire {

Parsed<IcmpView> IcmpView::parse(std::span<const std::uint8_t> icmp_bytes) {
  if (icmp_bytes.size() < header_len) return ParseError::truncated;
  // The checksum covers the message starting with the type (RFC 792); an
  // odd-length message is padded with a zero byte for the sum.
  if (internet_checksum(icmp_bytes) != 0) return ParseError::bad_checksum;
  return IcmpView{icmp_bytes};
}

IcmpRepr IcmpRepr::from(const IcmpView& v) { return {v.type(), v.code(), v.rest_of_header(), v.payload().size()}; }

IcmpRepr IcmpRepr::echo_reply(std::uint16_t ident, std::uint16_t seq, std::size_t payload_len) {
  return {icmp_type::echo_reply, 0, (std::uint32_t{ident} << 16) | seq, payload_len};
}

IcmpRepr IcmpRepr::echo_request(std::uint16_t ident, std::uint16_t seq, std::size_t payload_len) {
  return {icmp_type::echo_request, 0, (std::uint32_t{ident} << 16) | seq, payload_len};
}

IcmpRepr IcmpRepr::dest_unreachable(std::uint8_t code, std::size_t quote_len, std::uint16_t mtu) {
  // For every other code the field is "unused" and must be zero (RFC 792 p.4).
  return {icmp_type::dest_unreachable, code, code == icmp_code::fragmentation_needed ? mtu : 0u, quote_len};
}

void IcmpRepr::emit(std::span<std::uint8_t> message) const {
  assert(message.size() >= header_len + payload_len);
  std::uint8_t* p = message.data();
  p[0] = type;
  p[1] = code;
  store_be16(p + 2, 0);  // summed as zero (RFC 792, "Checksum")
  store_be32(p + 4, rest);
  store_be16(p + 2, internet_checksum(message.first(header_len + payload_len)));
}

}  // namespace weft::wire
