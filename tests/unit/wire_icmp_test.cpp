#include "wire/icmp.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "base/rng.hpp"
#include "wire/checksum.hpp"
#include "wire_test_util.hpp"

using namespace weft;
using namespace weft::wire;
using weft::wire::test::hex;

namespace {
// Echo request, identifier 0x1234, sequence 1, data "abcdefgh"; checksum
// 0x5435 computed independently.
const char* const kEchoRequest = "08 00 54 35 12 34 00 01 61 62 63 64 65 66 67 68";
}  // namespace

TEST(Icmp, ParsesKnownEchoRequest) {
  auto b = hex(kEchoRequest);
  auto p = IcmpView::parse(b);
  ASSERT_TRUE(p) << to_string(p.error());
  EXPECT_EQ(p->type(), icmp_type::echo_request);
  EXPECT_EQ(p->code(), 0);
  EXPECT_EQ(p->checksum(), 0x5435);
  EXPECT_EQ(p->echo_ident(), 0x1234);
  EXPECT_EQ(p->echo_seq(), 1);
  EXPECT_EQ(p->rest_of_header(), 0x12340001u);
  ASSERT_EQ(p->payload().size(), 8u);
  EXPECT_EQ(p->payload().data(), b.data() + 8);
  EXPECT_EQ(p->payload()[0], 'a');
}

TEST(Icmp, EmitsKnownEchoRequestByteForByte) {
  std::vector<std::uint8_t> m(16, 0xee);
  const char data[] = "abcdefgh";
  std::copy(data, data + 8, m.begin() + 8);
  IcmpRepr::echo_request(0x1234, 1, 8).emit(m);
  EXPECT_EQ(m, hex(kEchoRequest));
}

TEST(Icmp, EchoReplyAnswersARequestWithTheSameIdentSeqAndData) {
  auto req = hex(kEchoRequest);
  auto q = IcmpView::parse(req);
  ASSERT_TRUE(q);
  std::vector<std::uint8_t> reply(req);  // payload copied as is, RFC 792 p.14
  IcmpRepr::echo_reply(q->echo_ident(), q->echo_seq(), q->payload().size()).emit(reply);
  auto r = IcmpView::parse(reply);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type(), icmp_type::echo_reply);
  EXPECT_EQ(r->echo_ident(), 0x1234);
  EXPECT_EQ(r->echo_seq(), 1);
  EXPECT_TRUE(std::equal(r->payload().begin(), r->payload().end(), q->payload().begin(), q->payload().end()));
}

TEST(Icmp, FragmentationNeededCarriesNextHopMtu) {
  std::vector<std::uint8_t> m(8 + 28, 0x45);
  auto repr = IcmpRepr::dest_unreachable(icmp_code::fragmentation_needed, 28, 1400);
  EXPECT_EQ(repr.rest, 1400u);
  repr.emit(m);
  auto p = IcmpView::parse(m);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->type(), icmp_type::dest_unreachable);
  EXPECT_EQ(p->code(), icmp_code::fragmentation_needed);
  EXPECT_EQ(p->next_hop_mtu(), 1400);
  EXPECT_EQ(load_be16(&m[4]), 0) << "RFC 1191 §4: the high half stays unused";
  EXPECT_EQ(p->payload().size(), 28u);
}

TEST(Icmp, OtherUnreachableCodesLeaveTheUnusedFieldZero) {
  auto repr = IcmpRepr::dest_unreachable(icmp_code::port_unreachable, 28, 1400);
  EXPECT_EQ(repr.type, icmp_type::dest_unreachable);
  EXPECT_EQ(repr.code, icmp_code::port_unreachable);
  EXPECT_EQ(repr.rest, 0u);
  EXPECT_EQ(repr.payload_len, 28u);
}

TEST(Icmp, RoundTripsRandomMessagesOfOddAndEvenLength) {
  Rng rng(792);
  for (int i = 0; i < 2000; ++i) {
    IcmpRepr r{static_cast<std::uint8_t>(rng.next()), static_cast<std::uint8_t>(rng.next()),
               static_cast<std::uint32_t>(rng.next()), rng.below(600)};
    std::vector<std::uint8_t> m(8 + r.payload_len);
    for (std::size_t k = 8; k < m.size(); ++k) m[k] = static_cast<std::uint8_t>(rng.next());
    r.emit(m);
    auto p = IcmpView::parse(m);
    ASSERT_TRUE(p) << to_string(p.error());
    ASSERT_EQ(IcmpRepr::from(*p), r);
  }
}

TEST(Icmp, ChecksumCoversOnlyHeaderPlusPayloadLen) {
  std::vector<std::uint8_t> m(8 + 4 + 10, 0x77);  // 10 spare bytes past the message
  IcmpRepr::echo_request(1, 2, 4).emit(m);
  EXPECT_TRUE(IcmpView::parse(std::span(m).first(12)));
}

TEST(Icmp, RejectsEveryLengthBelowEightAsTruncated) {
  auto b = hex(kEchoRequest);
  for (std::size_t n = 0; n < 8; ++n) {
    std::vector<std::uint8_t> cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    auto p = IcmpView::parse(cut);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error(), ParseError::truncated) << n;
  }
}

TEST(Icmp, RejectsEverySingleBitFlip) {
  const auto good = hex(kEchoRequest);
  for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
    auto b = good;
    b[bit / 8] ^= static_cast<std::uint8_t>(0x80 >> (bit % 8));
    auto p = IcmpView::parse(b);
    ASSERT_FALSE(p) << bit;
    EXPECT_EQ(p.error(), ParseError::bad_checksum) << bit;
  }
}
