#include "wire/ipv4.hpp"

#include <cassert>

#include "wire/checksum.hpp"

namespace weft::wire {

std::uint8_t ip_version(std::span<const std::uint8_t> bytes) {
  return bytes.empty() ? 0 : static_cast<std::uint8_t>(bytes[0] >> 4);
}

Parsed<Ipv4View> Ipv4View::parse(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < min_header_len) return ParseError::truncated;
  if ((bytes[0] >> 4) != 4) return ParseError::bad_version;
  // RFC 791 §3.1: IHL counts 32-bit words; "the minimum value for a correct
  // header is 5".
  const std::size_t ihl = std::size_t{bytes[0] & 0x0fu} * 4;
  if (ihl < min_header_len || ihl > bytes.size()) return ParseError::bad_header_len;
  // Total length covers header and data. It may be shorter than what the
  // link delivered (padding) but never longer (a cut datagram).
  const std::size_t total = load_be16(&bytes[2]);
  if (total < ihl || total > bytes.size()) return ParseError::bad_total_len;
  // RFC 791 §3.1 "Header Checksum": computed over the header only; summing a
  // header that includes a correct checksum gives -0, i.e. folds to 0.
  if (internet_checksum(bytes.first(ihl)) != 0) return ParseError::bad_checksum;
  return Ipv4View{bytes.first(total)};
}

Ipv4Repr Ipv4Repr::from(const Ipv4View& v) {
  return Ipv4Repr{.src = v.src(),
                  .dst = v.dst(),
                  .protocol = v.protocol(),
                  .payload_len = static_cast<std::uint16_t>(v.total_len() - v.header_len()),
                  .ident = v.ident(),
                  .dont_fragment = v.dont_fragment(),
                  .more_fragments = v.more_fragments(),
                  .frag_offset = v.frag_offset(),
                  .ttl = v.ttl(),
                  .dscp_ecn = v.dscp_ecn()};
}

void Ipv4Repr::emit(std::span<std::uint8_t> buf) const {
  assert(buf.size() >= header_len);
  assert(payload_len <= 0xffff - header_len);
  assert(frag_offset % 8 == 0);
  std::uint8_t* p = buf.data();
  p[0] = 0x45;  // version 4, IHL 5: weft sends no options
  p[1] = dscp_ecn;
  store_be16(p + 2, static_cast<std::uint16_t>(header_len + payload_len));
  store_be16(p + 4, ident);
  const std::uint16_t flags_frag = static_cast<std::uint16_t>(
      (dont_fragment ? 0x4000u : 0u) | (more_fragments ? 0x2000u : 0u) | ((frag_offset >> 3) & 0x1fffu));
  store_be16(p + 6, flags_frag);
  p[8] = ttl;
  p[9] = protocol;
  store_be16(p + 10, 0);  // the checksum is computed with its own field zero
  store_be32(p + 12, src.value());
  store_be32(p + 16, dst.value());
  store_be16(p + 10, internet_checksum(buf.first(header_len)));
}

}  // namespace weft::wire
