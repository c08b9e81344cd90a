#include "wire/types.hpp"

#include <gtest/gtest.h>

using namespace weft;

TEST(Ipv4Addr, ParsesDottedQuadAndRejectsGarbage) {
  EXPECT_EQ(Ipv4Addr::parse("192.0.2.1"), Ipv4Addr(192, 0, 2, 1));
  EXPECT_EQ(Ipv4Addr::parse("0.0.0.0"), Ipv4Addr::any());
  EXPECT_EQ(Ipv4Addr(192, 0, 2, 1).to_string(), "192.0.2.1");
  for (const char* bad :
       {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "a.b.c.d", "1.2.3.4 ", "-1.2.3.4", "1234.1.1.1"})
    EXPECT_FALSE(Ipv4Addr::parse(bad)) << bad;
}

TEST(Ipv4Cidr, ContainsAndMask) {
  auto c = Ipv4Cidr::parse("192.0.2.2/24").value();
  EXPECT_EQ(c.prefix_len, 24);
  EXPECT_TRUE(c.contains(Ipv4Addr(192, 0, 2, 200)));
  EXPECT_FALSE(c.contains(Ipv4Addr(192, 0, 3, 1)));
  EXPECT_EQ(c.directed_broadcast(), Ipv4Addr(192, 0, 2, 255));
  EXPECT_FALSE(Ipv4Cidr::parse("192.0.2.2/33"));
  EXPECT_EQ(Ipv4Cidr::parse("0.0.0.0/0")->mask(), 0u);
}

TEST(Port, RangesFollowIana) {
  EXPECT_TRUE(Port(80).is_well_known());
  EXPECT_TRUE(Port(1023).is_well_known());
  EXPECT_TRUE(Port(1024).is_registered());
  EXPECT_TRUE(Port(49151).is_registered());
  EXPECT_TRUE(Port(49152).is_dynamic());
  EXPECT_TRUE(Port(65535).is_dynamic());
}

TEST(Endpoint, RoundTrips) {
  auto e = Endpoint::parse("203.0.113.9:4444").value();
  EXPECT_EQ(e.to_string(), "203.0.113.9:4444");
  EXPECT_FALSE(Endpoint::parse("203.0.113.9:65536"));
  EXPECT_FALSE(Endpoint::parse("203.0.113.9"));
}

TEST(SeqNum, ComparesModulo2To32) {
  SeqNum a(0xfffffff0u), b(0x10u);
  EXPECT_LT(a, b);  // b is 32 past a, across the wrap
  EXPECT_GT(b, a);
  EXPECT_EQ(b - a, 32);
  EXPECT_EQ(a + 32u, b);
  EXPECT_TRUE(SeqNum::in_window(SeqNum(5), a, 40));
  EXPECT_FALSE(SeqNum::in_window(SeqNum(0x20), a, 40));
}

// seq_len counts the bytes of [from, to) across the wrap; seq_len_or_zero
// gives 0 once `to` is not after `from` (behind it, or equal).
TEST(SeqNum, LengthsCountAcrossTheWrap) {
  const SeqNum a(0xfffffff0u), b(0x10u);
  EXPECT_EQ(seq_len(a, b), 32u);
  EXPECT_EQ(seq_len(a, a), 0u);
  EXPECT_EQ(seq_len(SeqNum(100), SeqNum(1100)), 1000u);
  EXPECT_EQ(seq_len_or_zero(a, b), 32u);
  EXPECT_EQ(seq_len_or_zero(b, a), 0u);  // `to` 32 before `from`
  EXPECT_EQ(seq_len_or_zero(a, a), 0u);
  EXPECT_EQ(seq_len_or_zero(SeqNum(0x7fffffffu), SeqNum(0x80000005u)), 6u);
  static_assert(seq_len(SeqNum(0xffffffffu), SeqNum(1)) == 2);
}

// RFC 7323 §5.3: timestamps compare modulo 2^32, so a TSval just past the
// wrap is newer than one just before it, and one 2^31 - 1 ahead is still
// newer while one 2^31 + 1 ahead reads as older (FreeBSD's TSTMP_LT).
TEST(TsVal, ComparesModulo2To32AcrossTheWrap) {
  const TsVal before(0xfffffff0u), after(0x10u);
  EXPECT_LT(before, after);
  EXPECT_GT(after, before);
  EXPECT_LE(before, after);
  EXPECT_GE(after, before);
  EXPECT_FALSE(after < before);
  EXPECT_LE(after, after);
  EXPECT_GE(after, after);
  EXPECT_FALSE(after < after);
  EXPECT_EQ(before + 32u, after);
  EXPECT_EQ(after.since(before), 32u);
  EXPECT_EQ(before.since(after), 0xffffffe0u);  // "since" a later value: huge, never a small age

  const TsVal zero(0);
  EXPECT_GT(TsVal(0x7fffffffu), zero);  // 2^31 - 1 ahead: newer
  EXPECT_LT(TsVal(0x80000001u), zero);  // 2^31 + 1 ahead: read as 2^31 - 1 behind
  EXPECT_LT(TsVal(5000u), TsVal(5000u + 0x70000000u));
  static_assert(TsVal(1) > TsVal(0xffffffffu));
  static_assert(sizeof(TsVal) == 4);
}
