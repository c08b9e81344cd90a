#include "wire/types.hpp"

#include <gtest/gtest.h>

using namespace weft;

TEST(Ipv4Addr, ParsesDottedQuadAndRejectsGarbage) {
  EXPECT_EQ(Ipv4Addr::parse("192.0.2.1"), Ipv4Addr(192, 0, 2, 1));
  EXPECT_EQ(Ipv4Addr::parse("0.0.0.0"), Ipv4Addr::any());
  EXPECT_EQ(Ipv4Addr(192, 0, 2, 1).to_string(), "192.0.2.1");
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "a.b.c.d", "1.2.3.4 ", "-1.2.3.4", "1234.1.1.1"})
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
