#include "wire/udp.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "base/rng.hpp"
#include "wire/checksum.hpp"
#include "wire_test_util.hpp"

using namespace weft;
using namespace weft::wire;
using weft::wire::test::hex;

namespace {
const Ipv4Addr kSrc(192, 0, 2, 1), kDst(192, 0, 2, 2);
// 192.0.2.1:40000 -> 192.0.2.2:53, data "weft!", length 13; checksum 0xe080
// computed independently over the pseudo header.
const char* const kDatagram = "9c 40 00 35 00 0d e0 80 77 65 66 74 21";
}  // namespace

TEST(Udp, ParsesKnownDatagram) {
  auto b = hex(kDatagram);
  auto p = UdpView::parse(b, kSrc, kDst);
  ASSERT_TRUE(p) << to_string(p.error());
  EXPECT_EQ(p->src_port(), Port(40000));
  EXPECT_EQ(p->dst_port(), Port(53));
  EXPECT_EQ(p->length(), 13);
  EXPECT_EQ(p->checksum(), 0xe080);
  ASSERT_EQ(p->payload().size(), 5u);
  EXPECT_EQ(p->payload().data(), b.data() + 8);
  EXPECT_EQ(p->payload()[4], '!');
}

TEST(Udp, EmitsKnownDatagramByteForByte) {
  auto want = hex(kDatagram);
  std::vector<std::uint8_t> b(want.size(), 0xee);
  std::copy(want.begin() + 8, want.end(), b.begin() + 8);
  UdpRepr{Port(40000), Port(53), 5}.emit(b, kSrc, kDst);
  EXPECT_EQ(b, want);
}

TEST(Udp, RoundTripsRandomDatagrams) {
  Rng rng(768);
  for (int i = 0; i < 3000; ++i) {
    const Ipv4Addr s{static_cast<std::uint32_t>(rng.next())}, d{static_cast<std::uint32_t>(rng.next())};
    UdpRepr r{Port{static_cast<std::uint16_t>(rng.next())}, Port{static_cast<std::uint16_t>(rng.next())},
              static_cast<std::uint16_t>(rng.below(1500))};
    std::vector<std::uint8_t> b(8 + r.payload_len);
    for (std::size_t k = 8; k < b.size(); ++k) b[k] = static_cast<std::uint8_t>(rng.next());
    r.emit(b, s, d);
    auto p = UdpView::parse(b, s, d);
    ASSERT_TRUE(p) << to_string(p.error());
    ASSERT_EQ(UdpRepr::from(*p), r);
    ASSERT_NE(p->checksum(), 0) << "a computed checksum is never sent as 0";
  }
}

TEST(Udp, ComputedZeroChecksumIsSentAsAllOnes) {
  // Choose the last data word so that the sum folds to 0xFFFF, i.e. the
  // checksum computes to 0: a word equal to the checksum without it does that.
  std::vector<std::uint8_t> b(12, 0);
  UdpRepr r{Port(1), Port(2), 4};
  r.emit(b, kSrc, kDst);
  const std::uint16_t without = load_be16(&b[6]);
  store_be16(&b[10], without);
  r.emit(b, kSrc, kDst);
  EXPECT_EQ(load_be16(&b[6]), 0xffff);
  EXPECT_TRUE(UdpView::parse(b, kSrc, kDst)) << "0xFFFF is -0 and verifies";
}

TEST(Udp, ZeroChecksumMeansNoneAndIsNotVerified) {
  auto b = hex(kDatagram);
  b[6] = b[7] = 0;
  b[9] ^= 0xff;  // corrupt data: nobody can tell
  auto p = UdpView::parse(b, kSrc, kDst);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->checksum(), 0);
}

TEST(Udp, EmitWithoutChecksumWritesZero) {
  std::vector<std::uint8_t> b(8 + 3, 0x55);
  UdpRepr{Port(7), Port(9), 3}.emit(b, kSrc, kDst, /*compute_checksum=*/false);
  EXPECT_EQ(load_be16(&b[6]), 0);
  EXPECT_TRUE(UdpView::parse(b, kSrc, kDst));
}

TEST(Udp, VerifyChecksumFalseAcceptsCorruption) {
  auto b = hex(kDatagram);
  b[12] ^= 1;
  EXPECT_EQ(UdpView::parse(b, kSrc, kDst).error(), ParseError::bad_checksum);
  EXPECT_TRUE(UdpView::parse(b, kSrc, kDst, /*verify_checksum=*/false));
}

TEST(Udp, ChecksumCoversThePseudoHeader) {
  auto b = hex(kDatagram);
  EXPECT_EQ(UdpView::parse(b, kSrc, Ipv4Addr(192, 0, 2, 3)).error(), ParseError::bad_checksum);
  EXPECT_EQ(UdpView::parse(b, Ipv4Addr(198, 51, 100, 1), kDst).error(), ParseError::bad_checksum);
}

TEST(Udp, PayloadEndsAtTheLengthField) {
  auto b = hex(kDatagram);
  b.push_back(0xaa);  // IP delivered one byte more than UDP claims
  b.push_back(0xbb);
  auto p = UdpView::parse(b, kSrc, kDst);
  ASSERT_TRUE(p) << "the extra bytes are not summed";
  EXPECT_EQ(p->payload().size(), 5u);
}

TEST(Udp, RejectsEveryLengthBelowEightAsTruncated) {
  auto b = hex(kDatagram);
  for (std::size_t n = 0; n < 8; ++n) {
    std::vector<std::uint8_t> cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    auto p = UdpView::parse(cut, kSrc, kDst);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error(), ParseError::truncated) << n;
  }
}

TEST(Udp, RejectsLengthFieldBelowEightOrBeyondTheBytes) {
  for (std::uint16_t len : {0, 1, 7, 14, 100, 65535}) {
    auto b = hex(kDatagram);
    store_be16(&b[4], len);
    auto p = UdpView::parse(b, kSrc, kDst, /*verify_checksum=*/false);
    ASSERT_FALSE(p) << len;
    EXPECT_EQ(p.error(), ParseError::bad_length) << len;
  }
  // Length 8 with 8 bytes: an empty datagram is fine.
  std::vector<std::uint8_t> empty(8);
  UdpRepr{Port(1), Port(2), 0}.emit(empty, kSrc, kDst);
  ASSERT_TRUE(UdpView::parse(empty, kSrc, kDst));
  EXPECT_TRUE(UdpView::parse(empty, kSrc, kDst)->payload().empty());
}

TEST(Udp, RejectsEverySingleBitFlip) {
  const auto good = hex(kDatagram);
  for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
    auto b = good;
    b[bit / 8] ^= static_cast<std::uint8_t>(0x80 >> (bit % 8));
    auto p = UdpView::parse(b, kSrc, kDst);
    ASSERT_FALSE(p) << bit;
    if (bit / 8 != 4 && bit / 8 != 5) {
      EXPECT_EQ(p.error(), ParseError::bad_checksum) << bit;
    }
  }
}
