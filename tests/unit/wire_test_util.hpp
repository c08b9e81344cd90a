// Helpers shared by the wire tests: hex byte vectors and a reference
// checksum written the slow, obvious way.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace weft::wire::test {

// "45 00 00 73" -> {0x45, 0x00, 0x00, 0x73}; whitespace between bytes ignored.
inline std::vector<std::uint8_t> hex(std::string_view s) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<std::uint8_t> out;
  int hi = -1;
  for (char c : s) {
    int n = nibble(c);
    if (n < 0) continue;
    if (hi < 0) {
      hi = n;
    } else {
      out.push_back(static_cast<std::uint8_t>(hi << 4 | n));
      hi = -1;
    }
  }
  return out;
}

// RFC 1071's definition, one big-endian 16-bit word at a time into a 64-bit
// sum, folded to 16 bits (not complemented).
inline std::uint16_t naive_sum16(std::span<const std::uint8_t> data, std::uint32_t initial = 0) {
  std::uint64_t sum = initial;
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += (std::uint64_t{data[i]} << 8) | data[i + 1];
  if (i < data.size()) sum += std::uint64_t{data[i]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

// An unfolded sum folded to 16 bits, without the final complement.
inline std::uint16_t fold16(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

}  // namespace weft::wire::test
