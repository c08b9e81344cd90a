#include "base/siphash.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

using namespace weft;

namespace {

// SipHash-2-4 with key 00 01 .. 0f over messages 00 01 .. (n-1), n = 0..63:
// the reference vectors of the SipHash paper (Appendix A gives n = 15) and
// of its reference implementation's vectors.h, as 64-bit values. Checked
// independently against OpenSSL 3.0's SIPHASH MAC (`openssl mac -macopt
// hexkey:000102...0f -macopt size:8 SIPHASH`, whose output is these values'
// little-endian bytes).
constexpr std::array<std::uint64_t, 64> kVectors{
    0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL, 0x85676696d7fb7e2dULL, 0xcf2794e0277187b7ULL,
    0x18765564cd99a68dULL, 0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL, 0x93f5f5799a932462ULL, 0x9e0082df0ba9e4b0ULL,
    0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL, 0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL,
    0xa129ca6149be45e5ULL, 0x3f2acc7f57c29bdbULL, 0x699ae9f52cbe4794ULL, 0x4bc1b3f0968dd39cULL, 0xbb6dc91da77961bdULL,
    0xbed65cf21aa2ee98ULL, 0xd0f2cbb02e3b67c7ULL, 0x93536795e3a33e88ULL, 0xa80c038ccd5ccec8ULL, 0xb8ad50c6f649af94ULL,
    0xbce192de8a85b8eaULL, 0x17d835b85bbb15f3ULL, 0x2f2e6163076bcfadULL, 0xde4daaaca71dc9a5ULL, 0xa6a2506687956571ULL,
    0xad87a3535c49ef28ULL, 0x32d892fad841c342ULL, 0x7127512f72f27cceULL, 0xa7f32346f95978e3ULL, 0x12e0b01abb051238ULL,
    0x15e034d40fa197aeULL, 0x314dffbe0815a3b4ULL, 0x027990f029623981ULL, 0xcadcd4e59ef40c4dULL, 0x9abfd8766a33735cULL,
    0x0e3ea96b5304a7d0ULL, 0xad0c42d6fc585992ULL, 0x187306c89bc215a9ULL, 0xd4a60abcf3792b95ULL, 0xf935451de4f21df2ULL,
    0xa9538f0419755787ULL, 0xdb9acddff56ca510ULL, 0xd06c98cd5c0975ebULL, 0xe612a3cb9ecba951ULL, 0xc766e62cfcadaf96ULL,
    0xee64435a9752fe72ULL, 0xa192d576b245165aULL, 0x0a8787bf8ecb74b2ULL, 0x81b3e73d20b49b6fULL, 0x7fa8220ba3b2eceaULL,
    0x245731c13ca42499ULL, 0xb78dbfaf3a8d83bdULL, 0xea1ad565322a1a0bULL, 0x60e61c23a3795013ULL, 0x6606d7e446282b93ULL,
    0x6ca4ecb15c5f91e1ULL, 0x9f626da15c9625f3ULL, 0xe51b38608ef25f57ULL, 0x958a324ceb064572ULL,
};

SipKey reference_key() {
  SipKey k;
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i);
  return k;
}

}  // namespace

TEST(SipHash24, MatchesThePapersVectorsQuotedInTheBrief) {
  const SipKey key = reference_key();
  const std::uint8_t msg[15] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
  EXPECT_EQ(siphash24(key, std::span<const std::uint8_t>(msg, 0)), 0x726fdb47dd0e0e31ULL);
  EXPECT_EQ(siphash24(key, std::span<const std::uint8_t>(msg, 1)), 0x74f839c593dc67fdULL);
  EXPECT_EQ(siphash24(key, std::span<const std::uint8_t>(msg, 15)), 0xa129ca6149be45e5ULL);
}

// Lengths 0..63 exercise every tail length (0..7 bytes) with 0..7 whole words.
TEST(SipHash24, MatchesAllSixtyFourReferenceVectors) {
  const SipKey key = reference_key();
  std::vector<std::uint8_t> msg;
  for (std::size_t n = 0; n < kVectors.size(); ++n) {
    EXPECT_EQ(siphash24(key, msg), kVectors[n]) << "length " << n;
    msg.push_back(static_cast<std::uint8_t>(n));
  }
}

TEST(SipHash24, DependsOnEveryKeyByteAndOnLength) {
  const SipKey key = reference_key();
  const std::uint8_t msg[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  const std::uint64_t base = siphash24(key, msg);
  for (std::size_t i = 0; i < key.size(); ++i) {
    SipKey k = key;
    k[i] ^= 0x01;
    EXPECT_NE(siphash24(k, msg), base) << "key byte " << i;
  }
  // A trailing zero byte is not padding: the length is hashed in.
  const std::uint8_t longer[9] = {0, 1, 2, 3, 4, 5, 6, 7, 0};
  EXPECT_NE(siphash24(key, longer), base);
}

// The inline 12-byte form is SipHash itself, not a look-alike: with 2 and 4
// rounds it agrees with siphash24() (checked above against the paper's
// vectors) on the same 12 bytes. SipHash-1-3 differs from it only in the
// round counts, which are template arguments of the same code.
TEST(SipHash12, TwoFourEqualsSipHash24OfTheSameTwelveBytes) {
  SipKey key = reference_key();
  std::uint64_t x = 0x0123456789abcdefULL;
  for (int n = 0; n < 1000; ++n) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const std::uint64_t m0 = x;
    const auto m1 = static_cast<std::uint32_t>(x >> 17);
    std::array<std::uint8_t, 12> bytes{};
    for (int i = 0; i < 8; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(m0 >> (8 * i));
    for (int i = 0; i < 4; ++i) bytes[static_cast<std::size_t>(8 + i)] = static_cast<std::uint8_t>(m1 >> (8 * i));
    ASSERT_EQ((SipHash12<2, 4>(key)(m0, m1)), siphash24(key, bytes)) << n;
    if (n % 100 == 0) key[static_cast<std::size_t>(n / 100)] ^= 0x5a;  // other keys too
  }
  // The message bytes 00 .. 0b: vector 12 of the reference vectors.
  EXPECT_EQ((SipHash12<2, 4>(reference_key())(0x0706050403020100ULL, 0x0b0a0908u)), kVectors[12]);
  EXPECT_NE((SipHash12<1, 3>(reference_key())(0x0706050403020100ULL, 0x0b0a0908u)), kVectors[12]);
}
