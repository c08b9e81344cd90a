#include "wire/checksum.hpp"

#include <bit>
#include <cstring>

namespace weft::wire {

namespace {

// One's-complement addition of 64-bit words: add, then add the carry back in
// (the "end-around carry", RFC 1071 §1). a + b + carry cannot overflow a
// second time: at most (2^64-1) + (2^64-1) - 2^64 + 1 = 2^64 - 1.
inline std::uint64_t add_carry(std::uint64_t a, std::uint64_t b) {
  a += b;
  return a + (a < b);
}

inline std::uint64_t load64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);  // unaligned-safe; one mov on x86
  return v;
}

// Folds a 64-bit ones-complement sum to 16 bits. 2^16 = 1 (mod 0xFFFF), so
// adding the halves preserves the sum modulo 0xFFFF, and a non-zero sum never
// folds to zero.
inline std::uint16_t fold64(std::uint64_t acc) {
  acc = (acc & 0xffffffffu) + (acc >> 32);  // <= 33 bits
  acc = (acc & 0xffffffffu) + (acc >> 32);  // <= 32 bits
  acc = (acc & 0xffffu) + (acc >> 16);      // <= 17 bits
  acc = (acc & 0xffffu) + (acc >> 16);      // <= 16 bits
  return static_cast<std::uint16_t>(acc);
}

}  // namespace

std::uint32_t checksum_add(std::span<const std::uint8_t> data, std::uint32_t sum) {
  // The data is summed as native-order 64-bit words, i.e. as native-order
  // 16-bit words with the carries between them kept. On a little-endian host
  // that is the sum of byte-swapped words, which is the byte-swapped sum
  // (RFC 1071 §2(B), byte order independence); it is swapped back once at the
  // end. Summing 64 bits at a time is RFC 1071 §2(C), parallel summation;
  // four independent accumulators let the adds also run in parallel.
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  std::uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (; n >= 32; p += 32, n -= 32) {
    a0 = add_carry(a0, load64(p));
    a1 = add_carry(a1, load64(p + 8));
    a2 = add_carry(a2, load64(p + 16));
    a3 = add_carry(a3, load64(p + 24));
  }
  for (; n >= 8; p += 8, n -= 8) a0 = add_carry(a0, load64(p));
  if (n > 0) {
    // The 1..7 trailing bytes, zero-padded in memory order: an odd last byte
    // then sits in the high half of its big-endian word, as RFC 1071 pads it.
    std::uint64_t tail = 0;
    std::memcpy(&tail, p, n);
    a0 = add_carry(a0, tail);
  }
  std::uint64_t acc = add_carry(add_carry(a0, a1), add_carry(a2, a3));
  std::uint16_t folded = fold64(acc);
  if constexpr (std::endian::native == std::endian::little)
    folded = static_cast<std::uint16_t>((folded << 8) | (folded >> 8));

  // Add into the caller's running sum, keeping it within 32 bits.
  std::uint64_t total = std::uint64_t{sum} + folded;
  return static_cast<std::uint32_t>((total & 0xffffffffu) + (total >> 32));
}

std::uint16_t checksum_fold(std::uint32_t sum) {
  sum = (sum & 0xffffu) + (sum >> 16);  // <= 0x1fffe
  sum = (sum & 0xffffu) + (sum >> 16);  // <= 0xffff
  return static_cast<std::uint16_t>(~sum);
}

std::uint16_t internet_checksum(std::span<const std::uint8_t> data) { return checksum_fold(checksum_add(data)); }

std::uint32_t pseudo_header_sum(Ipv4Addr src, Ipv4Addr dst, IpProto proto, std::uint16_t length) {
  // Six 16-bit words; the zero byte and the protocol form one word (zero high).
  return (src.value() >> 16) + (src.value() & 0xffffu) + (dst.value() >> 16) + (dst.value() & 0xffffu) +
         std::uint32_t{static_cast<std::uint8_t>(proto)} + length;
}

std::uint16_t checksum_update16(std::uint16_t old_checksum, std::uint16_t old_field, std::uint16_t new_field) {
  // ~HC + ~m + m', folded and complemented by checksum_fold.
  std::uint32_t sum = std::uint32_t{static_cast<std::uint16_t>(~old_checksum)} +
                      std::uint32_t{static_cast<std::uint16_t>(~old_field)} + new_field;
  return checksum_fold(sum);
}

}  // namespace weft::wire
