#include "wire/ipv4.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "base/rng.hpp"
#include "wire/checksum.hpp"
#include "wire_test_util.hpp"

using namespace weft;
using namespace weft::wire;
using weft::wire::test::hex;

namespace {

// A UDP datagram's IPv4 header, 192.168.0.1 -> 192.168.0.199, total length
// 0x73 = 115, DF, TTL 64, checksum 0xb861 (the example many texts use).
std::vector<std::uint8_t> known_datagram() {
  auto b = hex("45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7");
  for (std::uint8_t i = 0; i < 95; ++i) b.push_back(i);
  return b;
}

void fix_checksum(std::vector<std::uint8_t>& b) {
  const std::size_t ihl = std::size_t{b[0] & 0x0fu} * 4;
  b[10] = b[11] = 0;
  store_be16(&b[10], internet_checksum(std::span(b).first(ihl)));
}

}  // namespace

TEST(Ipv4, ParsesKnownHeader) {
  auto b = known_datagram();
  auto p = Ipv4View::parse(b);
  ASSERT_TRUE(p) << to_string(p.error());
  EXPECT_EQ(p->version(), 4);
  EXPECT_EQ(p->header_len(), 20u);
  EXPECT_EQ(p->total_len(), 115);
  EXPECT_EQ(p->dscp_ecn(), 0);
  EXPECT_EQ(p->ident(), 0);
  EXPECT_TRUE(p->dont_fragment());
  EXPECT_FALSE(p->more_fragments());
  EXPECT_EQ(p->frag_offset(), 0);
  EXPECT_FALSE(p->is_fragment());
  EXPECT_EQ(p->ttl(), 64);
  EXPECT_EQ(p->protocol(), 17);
  EXPECT_EQ(p->checksum(), 0xb861);
  EXPECT_EQ(p->src(), Ipv4Addr(192, 168, 0, 1));
  EXPECT_EQ(p->dst(), Ipv4Addr(192, 168, 0, 199));
  EXPECT_EQ(p->header().data(), b.data());
  EXPECT_EQ(p->header().size(), 20u);
  EXPECT_TRUE(p->options().empty());
  EXPECT_EQ(p->payload().data(), b.data() + 20);
  EXPECT_EQ(p->payload().size(), 95u);
  EXPECT_EQ(p->bytes().size(), 115u);
}

TEST(Ipv4, EmitsKnownHeaderByteForByte) {
  Ipv4Repr r{.src = Ipv4Addr(192, 168, 0, 1),
             .dst = Ipv4Addr(192, 168, 0, 199),
             .protocol = 17,
             .payload_len = 95,
             .dont_fragment = true};
  std::vector<std::uint8_t> out(20, 0xee);
  r.emit(out);
  auto want = known_datagram();
  want.resize(20);
  EXPECT_EQ(out, want);
}

TEST(Ipv4, EmitWritesOnlyTwentyBytes) {
  std::vector<std::uint8_t> out(30, 0xee);
  Ipv4Repr{.src = Ipv4Addr(10, 0, 0, 1), .dst = Ipv4Addr(10, 0, 0, 2), .protocol = 6, .payload_len = 10}.emit(out);
  for (std::size_t i = 20; i < out.size(); ++i) EXPECT_EQ(out[i], 0xee) << i;
}

TEST(Ipv4, RoundTripsRandomHeaders) {
  Rng rng(791);
  for (int i = 0; i < 5000; ++i) {
    Ipv4Repr r{.src = Ipv4Addr{static_cast<std::uint32_t>(rng.next())},
               .dst = Ipv4Addr{static_cast<std::uint32_t>(rng.next())},
               .protocol = static_cast<std::uint8_t>(rng.next()),
               .payload_len = static_cast<std::uint16_t>(rng.below(1500)),
               .ident = static_cast<std::uint16_t>(rng.next()),
               .dont_fragment = rng.chance(0.5),
               .more_fragments = rng.chance(0.5),
               .frag_offset = static_cast<std::uint16_t>(rng.below(8192) * 8),
               .ttl = static_cast<std::uint8_t>(rng.next()),
               .dscp_ecn = static_cast<std::uint8_t>(rng.next())};
    std::vector<std::uint8_t> b(Ipv4Repr::header_len + r.payload_len);
    r.emit(b);
    auto p = Ipv4View::parse(b);
    ASSERT_TRUE(p) << to_string(p.error());
    ASSERT_EQ(Ipv4Repr::from(*p), r);
    EXPECT_EQ(p->is_fragment(), r.more_fragments || r.frag_offset != 0);
    EXPECT_EQ(p->payload().size(), r.payload_len);
  }
}

TEST(Ipv4, FragmentOffsetIsInBytes) {
  auto b = known_datagram();
  store_be16(&b[6], 0x2000 | 185);  // MF, offset 185 units
  fix_checksum(b);
  auto p = Ipv4View::parse(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->frag_offset(), 1480);
  EXPECT_TRUE(p->more_fragments());
  EXPECT_FALSE(p->dont_fragment());
  EXPECT_TRUE(p->is_fragment());

  store_be16(&b[6], 185);  // last fragment: offset only
  fix_checksum(b);
  EXPECT_TRUE(Ipv4View::parse(b)->is_fragment());
  store_be16(&b[6], 0x2000);  // first fragment: MF only
  fix_checksum(b);
  EXPECT_TRUE(Ipv4View::parse(b)->is_fragment());
}

TEST(Ipv4, IgnoresLinkPaddingBeyondTotalLength) {
  // Ethernet pads short frames to 60 bytes; the datagram ends at total length.
  std::vector<std::uint8_t> b(46, 0xaa);
  Ipv4Repr{.src = Ipv4Addr(10, 0, 0, 1), .dst = Ipv4Addr(10, 0, 0, 2), .protocol = 1, .payload_len = 8}.emit(b);
  auto p = Ipv4View::parse(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->bytes().size(), 28u);
  EXPECT_EQ(p->payload().size(), 8u);
}

TEST(Ipv4, SkipsOptionsWithoutInterpretingThem) {
  // IHL 6: four option bytes (here a Router Alert, RFC 2113) before the data.
  auto b = hex("46 00 00 1c 00 01 00 00 01 02 00 00 0a 00 00 01 e0 00 00 01 94 04 00 00 11 22 33 44");
  fix_checksum(b);
  auto p = Ipv4View::parse(b);
  ASSERT_TRUE(p) << to_string(p.error());
  EXPECT_EQ(p->header_len(), 24u);
  EXPECT_EQ(p->options().size(), 4u);
  EXPECT_EQ(p->options()[0], 0x94);
  ASSERT_EQ(p->payload().size(), 4u);
  EXPECT_EQ(p->payload()[0], 0x11);
}

TEST(Ipv4, RejectsEveryLengthBelowTwentyAsTruncated) {
  auto b = known_datagram();
  for (std::size_t n = 0; n < 20; ++n) {
    std::vector<std::uint8_t> cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    auto p = Ipv4View::parse(cut);
    ASSERT_FALSE(p) << n;
    EXPECT_EQ(p.error(), ParseError::truncated) << n;
  }
}

TEST(Ipv4, RejectsOtherVersions) {
  for (std::uint8_t v : {0, 1, 5, 6, 15}) {
    auto b = known_datagram();
    b[0] = static_cast<std::uint8_t>(v << 4 | 5);
    fix_checksum(b);
    auto p = Ipv4View::parse(b);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error(), ParseError::bad_version) << int(v);
  }
}

TEST(Ipv4, RejectsIhlBelowFive) {
  for (std::uint8_t ihl = 0; ihl < 5; ++ihl) {
    auto b = known_datagram();
    b[0] = static_cast<std::uint8_t>(0x40 | ihl);
    auto p = Ipv4View::parse(b);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error(), ParseError::bad_header_len) << int(ihl);
  }
}

TEST(Ipv4, RejectsIhlBeyondTheBytes) {
  auto b = known_datagram();
  b.resize(40);
  store_be16(&b[2], 40);
  b[0] = 0x4a;  // 40 bytes of header: fits exactly
  fix_checksum(b);
  EXPECT_TRUE(Ipv4View::parse(b));
  b[0] = 0x4b;  // 44 bytes: beyond
  fix_checksum(b);
  auto p = Ipv4View::parse(b);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error(), ParseError::bad_header_len);
}

TEST(Ipv4, RejectsTotalLengthShorterThanHeaderOrLongerThanBytes) {
  for (std::uint16_t total : {0, 1, 19, 116, 1500, 65535}) {
    auto b = known_datagram();
    store_be16(&b[2], total);
    fix_checksum(b);
    auto p = Ipv4View::parse(b);
    ASSERT_FALSE(p) << total;
    EXPECT_EQ(p.error(), ParseError::bad_total_len) << total;
  }
  // IHL 6 and total 23: shorter than this header though longer than 20.
  auto b = hex("46 00 00 17 00 01 00 00 01 02 00 00 0a 00 00 01 e0 00 00 01 94 04 00 00");
  fix_checksum(b);
  EXPECT_EQ(Ipv4View::parse(b).error(), ParseError::bad_total_len);
  // Total length exactly the header: a datagram without data is valid.
  b[3] = 24;
  fix_checksum(b);
  ASSERT_TRUE(Ipv4View::parse(b));
  EXPECT_TRUE(Ipv4View::parse(b)->payload().empty());
}

TEST(Ipv4, RejectsEverySingleBitFlipInTheHeader) {
  const auto good = known_datagram();
  for (std::size_t bit = 0; bit < 20 * 8; ++bit) {
    auto b = good;
    b[bit / 8] ^= static_cast<std::uint8_t>(0x80 >> (bit % 8));
    auto p = Ipv4View::parse(b);
    ASSERT_FALSE(p) << "bit " << bit;
    // Version, IHL and total length are checked before the checksum.
    if (bit / 8 != 0 && bit / 8 != 2 && bit / 8 != 3) {
      EXPECT_EQ(p.error(), ParseError::bad_checksum) << "bit " << bit;
    }
  }
}

TEST(Ipv4, PayloadBitFlipsAreNotTheHeaderChecksumsConcern) {
  auto b = known_datagram();
  b[50] ^= 1;  // RFC 791: the checksum covers the header only
  EXPECT_TRUE(Ipv4View::parse(b));
}

TEST(Ipv4, IpVersionNibble) {
  EXPECT_EQ(ip_version({}), 0);
  EXPECT_EQ(ip_version(hex("45")), 4);
  EXPECT_EQ(ip_version(hex("60 00")), 6);
}
