// Hand-built IPv4 packets for the link tests. The link layer must not depend
// on the wire parsers (written in parallel), so the tests craft bytes
// directly, with the header checksum of RFC 791 / RFC 1071.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "wire/types.hpp"

namespace weft::test {

// RFC 1071 Internet checksum over `b` (odd length padded with zero).
inline std::uint16_t inet_checksum(std::span<const std::uint8_t> b) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < b.size(); i += 2) sum += (std::uint32_t{b[i]} << 8) | b[i + 1];
  if (b.size() % 2) sum += std::uint32_t{b.back()} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

inline void put16(std::vector<std::uint8_t>& p, std::size_t at, std::uint16_t v) {
  p[at] = static_cast<std::uint8_t>(v >> 8);
  p[at + 1] = static_cast<std::uint8_t>(v);
}

inline std::uint16_t get16(std::span<const std::uint8_t> p, std::size_t at) {
  return static_cast<std::uint16_t>((p[at] << 8) | p[at + 1]);
}

inline Ipv4Addr get_addr(std::span<const std::uint8_t> p, std::size_t at) {
  return Ipv4Addr(p[at], p[at + 1], p[at + 2], p[at + 3]);
}

// A 20-byte IPv4 header (no options) followed by `l4`, checksum filled in.
inline std::vector<std::uint8_t> ipv4(Ipv4Addr src, Ipv4Addr dst, IpProto proto,
                                      std::span<const std::uint8_t> l4, std::uint16_t id = 1) {
  std::vector<std::uint8_t> p(20 + l4.size());
  p[0] = 0x45;  // version 4, IHL 5
  put16(p, 2, static_cast<std::uint16_t>(p.size()));
  put16(p, 4, id);
  p[6] = 0x40;  // DF
  p[8] = 64;    // TTL
  p[9] = static_cast<std::uint8_t>(proto);
  auto s = src.octets(), d = dst.octets();
  for (int i = 0; i < 4; ++i) {
    p[12 + i] = s[i];
    p[16 + i] = d[i];
  }
  put16(p, 10, inet_checksum(std::span(p).first(20)));
  std::copy(l4.begin(), l4.end(), p.begin() + 20);
  return p;
}

// IPv4 + UDP with checksum 0 ("no checksum", RFC 768), which the kernel
// accepts for IPv4.
inline std::vector<std::uint8_t> udp(Ipv4Addr src, Ipv4Addr dst, std::uint16_t sport, std::uint16_t dport,
                                     std::span<const std::uint8_t> payload, std::uint16_t id = 1) {
  std::vector<std::uint8_t> u(8 + payload.size());
  put16(u, 0, sport);
  put16(u, 2, dport);
  put16(u, 4, static_cast<std::uint16_t>(u.size()));
  std::copy(payload.begin(), payload.end(), u.begin() + 8);
  return ipv4(src, dst, IpProto::udp, u, id);
}

// A UDP packet of exactly `total` bytes whose payload starts with `seq`
// (big-endian 32 bits), so tests can tell packets apart.
inline std::vector<std::uint8_t> numbered(Ipv4Addr src, Ipv4Addr dst, std::uint32_t seq, std::size_t total = 100) {
  std::vector<std::uint8_t> payload(total < 28 + 4 ? 4 : total - 28);
  for (int i = 0; i < 4; ++i) payload[i] = static_cast<std::uint8_t>(seq >> (24 - 8 * i));
  return udp(src, dst, 40000, 9, payload, static_cast<std::uint16_t>(seq));
}

inline std::uint32_t seq_of(std::span<const std::uint8_t> p) {
  return (std::uint32_t{p[28]} << 24) | (std::uint32_t{p[29]} << 16) | (std::uint32_t{p[30]} << 8) | p[31];
}

}  // namespace weft::test
