#include "wire/udp.hpp"

#include <cassert>

#include "wire/checksum.hpp"

namespace weft::wire {

Parsed<UdpView> UdpView::parse(std::span<const std::uint8_t> segment, Ipv4Addr src, Ipv4Addr dst,
                               bool verify_checksum) {
  if (segment.size() < header_len) return ParseError::truncated;
  // RFC 768: "Length is the length in octets of this user datagram including
  // this header and the data. (This means the minimum value of the length is
  // eight.)"
  const std::uint16_t length = load_be16(&segment[4]);
  if (length < header_len || length > segment.size()) return ParseError::bad_length;
  const auto datagram = segment.first(length);
  if (verify_checksum && load_be16(&segment[6]) != 0) {
    // The pseudo header carries the UDP length, not the IP payload length.
    const std::uint32_t sum = checksum_add(datagram, pseudo_header_sum(src, dst, IpProto::udp, length));
    if (checksum_fold(sum) != 0) return ParseError::bad_checksum;
  }
  return UdpView{datagram};
}

UdpRepr UdpRepr::from(const UdpView& v) {
  return {v.src_port(), v.dst_port(), static_cast<std::uint16_t>(v.length() - UdpView::header_len)};
}

void UdpRepr::emit(std::span<std::uint8_t> segment, Ipv4Addr src, Ipv4Addr dst, bool compute_checksum) const {
  assert(payload_len <= 0xffff - header_len);
  assert(segment.size() >= header_len + payload_len);
  const auto length = static_cast<std::uint16_t>(header_len + payload_len);
  std::uint8_t* p = segment.data();
  store_be16(p + 0, src_port.value());
  store_be16(p + 2, dst_port.value());
  store_be16(p + 4, length);
  store_be16(p + 6, 0);
  if (!compute_checksum) return;  // 0: "no checksum" (RFC 768)
  const std::uint32_t sum = checksum_add(segment.first(length), pseudo_header_sum(src, dst, IpProto::udp, length));
  const std::uint16_t c = checksum_fold(sum);
  store_be16(p + 6, c == 0 ? 0xffff : c);
}

}  // namespace weft::wire
