#include "wire/checksum.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "base/rng.hpp"
#include "wire/bytes.hpp"
#include "wire_test_util.hpp"

using namespace weft;
using namespace weft::wire;
using weft::wire::test::fold16;
using weft::wire::test::hex;
using weft::wire::test::naive_sum16;

TEST(Checksum, Rfc1071WorkedExample) {
  // RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
  auto b = hex("00 01 f2 03 f4 f5 f6 f7");
  EXPECT_EQ(fold16(checksum_add(b)), 0xddf2);
  EXPECT_EQ(checksum_fold(checksum_add(b)), 0x220d);
  EXPECT_EQ(internet_checksum(b), 0x220d);
}

TEST(Checksum, RealIpv4HeaderVerifiesAndRecomputes) {
  auto h = hex("45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7");
  EXPECT_EQ(internet_checksum(h), 0) << "a header with a correct checksum sums to -0";
  h[10] = h[11] = 0;
  EXPECT_EQ(internet_checksum(h), 0xb861);
}

TEST(Checksum, OddLengthPadsLastByteAsHighByte) {
  EXPECT_EQ(fold16(checksum_add(hex("ab"))), 0xab00);
  EXPECT_EQ(fold16(checksum_add(hex("01 02 03"))), 0x0102 + 0x0300);
  EXPECT_EQ(internet_checksum(hex("ab")), static_cast<std::uint16_t>(~0xab00));
}

TEST(Checksum, EmptyAndAllZeroSumToZero) {
  EXPECT_EQ(checksum_add({}), 0u);
  EXPECT_EQ(checksum_add({}, 0x12345678u), 0x12345678u) << "nothing added, running sum unchanged";
  std::vector<std::uint8_t> zeros(100, 0);
  EXPECT_EQ(checksum_add(zeros), 0u);
  EXPECT_EQ(internet_checksum(zeros), 0xffff);
}

TEST(Checksum, RunningSumOverEvenPiecesEqualsWhole) {
  auto b = hex("45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7 01");
  std::span<const std::uint8_t> s(b);
  for (std::size_t cut = 0; cut <= b.size(); cut += 2) {
    std::uint32_t sum = checksum_add(s.subspan(cut), checksum_add(s.first(cut)));
    EXPECT_EQ(checksum_fold(sum), internet_checksum(b)) << "cut at " << cut;
  }
}

// The 8-bytes-at-a-time sum must agree with the word-at-a-time definition for
// every length and every alignment. The data sits at the very end of its own
// allocation so that ASan catches any read past it.
TEST(Checksum, FastSumMatchesNaiveForEveryLengthAndAlignment) {
  Rng rng(1071);
  for (std::size_t len = 0; len <= 2000; ++len) {
    for (std::size_t off = 0; off < 8; ++off) {
      std::vector<std::uint8_t> buf(off + len);
      for (auto& x : buf) x = static_cast<std::uint8_t>(rng.next());
      std::span<const std::uint8_t> data = std::span<const std::uint8_t>(buf).subspan(off);
      const auto initial = (len % 3 == 0) ? 0u : static_cast<std::uint32_t>(rng.next());
      ASSERT_EQ(fold16(checksum_add(data, initial)), naive_sum16(data, initial)) << "len " << len << " off " << off;
    }
  }
}

TEST(Checksum, FastSumHandlesMaximalCarries) {
  // All-ones data makes every 64-bit add carry.
  for (std::size_t len : {1u, 7u, 8u, 9u, 31u, 32u, 33u, 65535u, 200000u}) {
    std::vector<std::uint8_t> ones(len, 0xff);
    EXPECT_EQ(fold16(checksum_add(ones, 0xffffffffu)), naive_sum16(ones, 0xffffffffu)) << len;
    EXPECT_EQ(fold16(checksum_add(ones)), naive_sum16(ones)) << len;
  }
}

TEST(Checksum, PseudoHeaderSumMatchesTheTwelveBytes) {
  const Ipv4Addr src(192, 0, 2, 1), dst(192, 0, 2, 2);
  // c000 + 0201 + c000 + 0202 + 0011 + 000d
  EXPECT_EQ(pseudo_header_sum(src, dst, IpProto::udp, 13), 0x18421u);
  Rng rng(768);
  for (int i = 0; i < 1000; ++i) {
    const Ipv4Addr s{static_cast<std::uint32_t>(rng.next())}, d{static_cast<std::uint32_t>(rng.next())};
    const auto len = static_cast<std::uint16_t>(rng.next());
    const IpProto proto = (i % 2) ? IpProto::tcp : IpProto::udp;
    std::uint8_t ph[12];
    store_be32(ph, s.value());
    store_be32(ph + 4, d.value());
    ph[8] = 0;
    ph[9] = static_cast<std::uint8_t>(proto);
    store_be16(ph + 10, len);
    EXPECT_EQ(fold16(pseudo_header_sum(s, d, proto, len)), naive_sum16(ph));
  }
}

TEST(Checksum, IncrementalUpdateRfc1624Example) {
  // RFC 1624 §4: other bytes sum to 0xCD7A, m = 0x5555 becomes m' = 0x3285.
  // HC = ~(0xCD7A + 0x5555) = 0xDD2F; recomputing gives ~0xFFFF = 0x0000,
  // which eqn. 3 reproduces (eqn. 2 would give 0xFFFF).
  EXPECT_EQ(checksum_update16(0xdd2f, 0x5555, 0x3285), 0x0000);
}

TEST(Checksum, IncrementalUpdateEqualsFullRecomputation) {
  Rng rng(1624);
  for (int i = 0; i < 20000; ++i) {
    const std::size_t words = 10 + rng.below(100);
    std::vector<std::uint8_t> b(words * 2);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng.next());
    b[0] |= 0x40;  // never all zero: that sum has two representations (+0, -0)
    const std::size_t csum_at = 2 * rng.below(words);
    store_be16(&b[csum_at], 0);
    store_be16(&b[csum_at], internet_checksum(b));
    ASSERT_EQ(internet_checksum(b), 0);

    std::size_t edit_at;
    do edit_at = 2 * rng.below(words);
    while (edit_at == csum_at || edit_at == 0);
    const std::uint16_t old_field = load_be16(&b[edit_at]);
    const auto new_field = static_cast<std::uint16_t>(rng.chance(0.1) ? old_field : rng.next());
    const std::uint16_t incremental = checksum_update16(load_be16(&b[csum_at]), old_field, new_field);

    store_be16(&b[edit_at], new_field);
    store_be16(&b[csum_at], 0);
    ASSERT_EQ(incremental, internet_checksum(b)) << "iteration " << i;
  }
}
