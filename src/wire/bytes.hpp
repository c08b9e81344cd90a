// Network byte order, written once.
//
// Every multi-byte field on the wire is big-endian (RFC 791 Appendix B,
// "Data Transmission Order"). These helpers assemble and split fields with
// byte shifts, so they are correct on any host, need no alignment and compile
// to a single load/bswap on x86. Callers guarantee the bytes exist: views
// prove it once at parse(), emitters require a buffer of header_len() bytes.
#pragma once

#include <cstdint>

namespace weft::wire {

constexpr std::uint16_t load_be16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((std::uint16_t{p[0]} << 8) | p[1]);
}

constexpr std::uint32_t load_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

constexpr void store_be16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}

constexpr void store_be32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

}  // namespace weft::wire
