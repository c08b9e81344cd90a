// SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012):
// a keyed 64-bit hash. Keyed with a secret the attacker does not know, its
// outputs cannot be predicted, so an attacker choosing addresses and ports
// can neither flood one hash bucket nor guess which ephemeral port a host
// will pick next. That is why the port table and the connection index use it.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>

namespace weft {

using SipKey = std::array<std::uint8_t, 16>;

// SipHash-2-4 of `data` under the 128-bit `key` (key bytes k[0..15], read as
// two little-endian 64-bit words, as in the paper's reference code).
std::uint64_t siphash24(const SipKey& key, std::span<const std::uint8_t> data);

// The SipHash state and its ARX round (the paper's Figure 2), shared by
// siphash24() and SipHash12.
struct SipState {
  std::uint64_t v0, v1, v2, v3;

  // Initialisation: the key, as two little-endian words, XORed with
  // "somepseudorandomlygeneratedbytes".
  explicit SipState(const SipKey& key) {
    std::uint64_t k0 = 0, k1 = 0;
    for (int i = 7; i >= 0; --i) {
      k0 = (k0 << 8) | key[static_cast<std::size_t>(i)];
      k1 = (k1 << 8) | key[static_cast<std::size_t>(i + 8)];
    }
    v0 = k0 ^ 0x736f6d6570736575ULL;
    v1 = k1 ^ 0x646f72616e646f6dULL;
    v2 = k0 ^ 0x6c7967656e657261ULL;
    v3 = k1 ^ 0x7465646279746573ULL;
  }

  void round() {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
  }

  // Compression: C rounds per message word.
  template <int C>
  void absorb(std::uint64_t m) {
    v3 ^= m;
    for (int i = 0; i < C; ++i) round();
    v0 ^= m;
  }

  // Finalisation: D rounds.
  template <int D>
  std::uint64_t finish() {
    v2 ^= 0xff;
    for (int i = 0; i < D; ++i) round();
    return v0 ^ v1 ^ v2 ^ v3;
  }
};

// SipHash-C-D of a 12-byte message, inline, for hash tables on a hot path:
// the message is the 8 bytes of m0 then the 4 bytes of m1, each
// little-endian, so SipHash12<2, 4>{key}(m0, m1) equals siphash24() of those
// 12 bytes (a unit test checks this). The key schedule is done once, in the
// constructor. C = 1, D = 3 is the variant Rust's std HashMap and the Linux
// kernel's hsiphash (64-bit) use for hash-table keys: the keyed PRF that
// defeats flooding, at 5 rounds for 12 bytes instead of 8.
template <int C, int D>
class SipHash12 {
 public:
  explicit SipHash12(const SipKey& key) : init_(key) {}

  std::uint64_t operator()(std::uint64_t m0, std::uint32_t m1) const noexcept {
    SipState s = init_;
    s.absorb<C>(m0);
    s.absorb<C>((std::uint64_t{12} << 56) | m1);  // the last 4 bytes and the length
    return s.finish<D>();
  }

 private:
  SipState init_;
};

}  // namespace weft
