// Hand-built IPv4 packets for the link tests. Links carry malformed packets
// too, so the tests craft bytes directly rather than through the wire
// emitters; fields and the header checksum (RFC 791 / RFC 1071) come from
// wire/bytes.hpp and wire/checksum.hpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "wire/bytes.hpp"
#include "wire/checksum.hpp"
#include "wire/types.hpp"

namespace weft::test {

// A 20-byte IPv4 header (no options) followed by `l4`, checksum filled in.
inline std::vector<std::uint8_t> ipv4(Ipv4Addr src, Ipv4Addr dst, IpProto proto, std::span<const std::uint8_t> l4,
                                      std::uint16_t id = 1) {
  std::vector<std::uint8_t> p(20 + l4.size());
  p[0] = 0x45;  // version 4, IHL 5
  wire::store_be16(&p[2], static_cast<std::uint16_t>(p.size()));
  wire::store_be16(&p[4], id);
  p[6] = 0x40;  // DF
  p[8] = 64;    // TTL
  p[9] = static_cast<std::uint8_t>(proto);
  wire::store_be32(&p[12], src.value());
  wire::store_be32(&p[16], dst.value());
  wire::store_be16(&p[10], wire::internet_checksum(std::span(p).first(20)));
  std::copy(l4.begin(), l4.end(), p.begin() + 20);
  return p;
}

// IPv4 + UDP with checksum 0 ("no checksum", RFC 768), which the kernel
// accepts for IPv4.
inline std::vector<std::uint8_t> udp(Ipv4Addr src, Ipv4Addr dst, std::uint16_t sport, std::uint16_t dport,
                                     std::span<const std::uint8_t> payload, std::uint16_t id = 1) {
  std::vector<std::uint8_t> u(8 + payload.size());
  wire::store_be16(&u[0], sport);
  wire::store_be16(&u[2], dport);
  wire::store_be16(&u[4], static_cast<std::uint16_t>(u.size()));
  std::copy(payload.begin(), payload.end(), u.begin() + 8);
  return ipv4(src, dst, IpProto::udp, u, id);
}

// A UDP packet of exactly `total` bytes whose payload starts with `seq`
// (big-endian 32 bits), so tests can tell packets apart.
inline std::vector<std::uint8_t> numbered(Ipv4Addr src, Ipv4Addr dst, std::uint32_t seq, std::size_t total = 100) {
  std::vector<std::uint8_t> payload(total < 28 + 4 ? 4 : total - 28);
  wire::store_be32(payload.data(), seq);
  return udp(src, dst, 40000, 9, payload, static_cast<std::uint16_t>(seq));
}

inline std::uint32_t seq_of(std::span<const std::uint8_t> p) { return wire::load_be32(&p[28]); }

}  // namespace weft::test
