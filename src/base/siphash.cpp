#include "base/siphash.hpp"

#include <cstddef>

namespace weft {
namespace {

std::uint64_t load_le64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::uint64_t siphash24(const SipKey& key, std::span<const std::uint8_t> data) {
  SipState s(key);

  const std::size_t n = data.size();
  const std::size_t whole = n - n % 8;
  for (std::size_t i = 0; i < whole; i += 8) s.absorb<2>(load_le64(data.data() + i));

  // The last word: the 0..7 remaining bytes, little-endian, with the message
  // length mod 256 in the top byte.
  std::uint64_t last = static_cast<std::uint64_t>(n & 0xff) << 56;
  for (std::size_t i = whole; i < n; ++i) last |= std::uint64_t{data[i]} << (8 * (i - whole));
  s.absorb<2>(last);

  return s.finish<4>();
}

}  // namespace weft
