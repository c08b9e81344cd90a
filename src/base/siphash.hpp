// SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012):
// a keyed 64-bit hash. Keyed with a secret the attacker does not know, its
// outputs cannot be predicted, so an attacker choosing addresses and ports
// can neither flood one hash bucket nor guess which ephemeral port a host
// will pick next. That is why the port table and the connection index use it.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace weft {

using SipKey = std::array<std::uint8_t, 16>;

// SipHash-2-4 of `data` under the 128-bit `key` (key bytes k[0..15], read as
// two little-endian 64-bit words, as in the paper's reference code).
std::uint64_t siphash24(const SipKey& key, std::span<const std::uint8_t> data);

}  // namespace weft
