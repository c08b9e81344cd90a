#include "wire/tcp.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <vector>

#include "base/rng.hpp"
#include "wire/checksum.hpp"
#include "wire_test_util.hpp"

using namespace weft;
using namespace weft::wire;
using weft::wire::test::hex;

namespace {
const Ipv4Addr kSrc(10, 0, 0, 1), kDst(10, 0, 0, 2);
// A Linux-style SYN, 10.0.0.1:50000 -> 10.0.0.2:80, seq 0x01020304, window
// 64240, options MSS 1460, SACK-permitted, TS 0x0a0b0c0d/0, NOP, WS 7;
// checksum 0x5b4e computed independently.
const char* const kSyn =
    "c3 50 00 50 01 02 03 04 00 00 00 00 a0 02 fa f0 5b 4e 00 00"
    "02 04 05 b4 04 02 08 0a 0a 0b 0c 0d 00 00 00 00 01 03 03 07";

// TcpOptions holds values, not a span, so the bytes may go away after parse.
Parsed<TcpOptions> parse_options(std::string_view h) { return TcpOptions::parse(hex(h)); }

// A segment with the given option bytes (a multiple of 4) and a correct checksum.
std::vector<std::uint8_t> segment_with_options(const std::vector<std::uint8_t>& opts) {
  std::vector<std::uint8_t> b(20 + opts.size());
  std::copy(opts.begin(), opts.end(), b.begin() + 20);
  b[12] = static_cast<std::uint8_t>(((20 + opts.size()) / 4) << 4);
  store_be16(&b[16], checksum_fold(checksum_add(
                         b, pseudo_header_sum(kSrc, kDst, IpProto::tcp, static_cast<std::uint16_t>(b.size())))));
  return b;
}
}  // namespace

TEST(Tcp, ParsesKnownSyn) {
  auto b = hex(kSyn);
  auto p = TcpView::parse(b, kSrc, kDst);
  ASSERT_TRUE(p) << to_string(p.error());
  EXPECT_EQ(p->src_port(), Port(50000));
  EXPECT_EQ(p->dst_port(), Port(80));
  EXPECT_EQ(p->seq(), SeqNum(0x01020304));
  EXPECT_EQ(p->ack(), SeqNum(0));
  EXPECT_EQ(p->header_len(), 40u);
  EXPECT_EQ(p->flags(), tcp_flag::syn);
  EXPECT_TRUE(p->has(tcp_flag::syn));
  EXPECT_FALSE(p->has(tcp_flag::ack));
  EXPECT_FALSE(p->has(tcp_flag::syn | tcp_flag::ack));
  EXPECT_EQ(p->window(), 64240);
  EXPECT_EQ(p->checksum(), 0x5b4e);
  EXPECT_EQ(p->urgent(), 0);
  EXPECT_TRUE(p->payload().empty());
  const TcpOptions& o = p->options();
  EXPECT_EQ(o.mss, 1460);
  EXPECT_TRUE(o.sack_permitted);
  ASSERT_TRUE(o.timestamps);
  EXPECT_EQ(o.timestamps->val.value(), 0x0a0b0c0du);
  EXPECT_EQ(o.timestamps->ecr.value(), 0u);
  EXPECT_EQ(o.window_scale, 7);
  EXPECT_EQ(o.sack_count, 0);
}

// The flags byte is bit 0 FIN up to bit 7 CWR (RFC 9293 §3.1, RFC 3168
// §6.1); the set is printed by name in that order.
TEST(TcpFlags, BitsNamesAndSetOperations) {
  EXPECT_EQ(tcp_flag::fin.value(), 0x01);
  EXPECT_EQ(tcp_flag::syn.value(), 0x02);
  EXPECT_EQ(tcp_flag::rst.value(), 0x04);
  EXPECT_EQ(tcp_flag::psh.value(), 0x08);
  EXPECT_EQ(tcp_flag::ack.value(), 0x10);
  EXPECT_EQ(tcp_flag::urg.value(), 0x20);
  EXPECT_EQ(tcp_flag::ece.value(), 0x40);
  EXPECT_EQ(tcp_flag::cwr.value(), 0x80);

  const TcpFlags synack = tcp_flag::syn | tcp_flag::ack;
  EXPECT_EQ(synack.value(), 0x12);
  EXPECT_TRUE(synack.has(tcp_flag::syn));
  EXPECT_TRUE(synack.has(tcp_flag::syn | tcp_flag::ack));
  EXPECT_FALSE(synack.has(tcp_flag::syn | tcp_flag::fin));
  EXPECT_TRUE(synack.any_of(tcp_flag::syn | tcp_flag::fin));
  EXPECT_FALSE(synack.any_of(tcp_flag::rst | tcp_flag::fin));
  EXPECT_TRUE(static_cast<bool>(synack & tcp_flag::ack));
  EXPECT_FALSE(static_cast<bool>(synack & tcp_flag::rst));
  EXPECT_TRUE(TcpFlags{}.empty());
  EXPECT_TRUE(TcpFlags{}.has(TcpFlags{}));  // the empty set is in every set

  TcpFlags f = tcp_flag::ack;
  f |= tcp_flag::fin;
  EXPECT_EQ(f, tcp_flag::fin | tcp_flag::ack);
  f &= tcp_flag::fin;
  EXPECT_EQ(f, tcp_flag::fin);

  EXPECT_EQ(synack.to_string(), "SYN|ACK");
  EXPECT_EQ((tcp_flag::ack | tcp_flag::fin | tcp_flag::psh).to_string(), "FIN|PSH|ACK");
  EXPECT_EQ(TcpFlags{0xff}.to_string(), "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR");
  EXPECT_EQ(TcpFlags{}.to_string(), "none");
  std::ostringstream os;
  os << (tcp_flag::rst | tcp_flag::ack);
  EXPECT_EQ(os.str(), "RST|ACK");

  static_assert((tcp_flag::syn | tcp_flag::ack).has(tcp_flag::ack), "usable in constant expressions");
  static_assert(sizeof(TcpFlags) == 1);
}

TEST(Tcp, EmitsKnownSynByteForByte) {
  TcpRepr r{.src_port = Port(50000),
            .dst_port = Port(80),
            .seq = SeqNum(0x01020304),
            .flags = tcp_flag::syn,
            .window = 64240};
  r.options.mss = 1460;
  r.options.sack_permitted = true;
  r.options.timestamps = wire::TcpTimestamps{TsVal{0x0a0b0c0d}, TsVal{0}};
  r.options.window_scale = 7;
  ASSERT_EQ(r.header_len(), 40u);
  std::vector<std::uint8_t> b(40, 0xee);
  r.emit(b, kSrc, kDst, 0);
  EXPECT_EQ(b, hex(kSyn));
}

TEST(Tcp, RoundTripsRandomSegments) {
  Rng rng(9293);
  for (int i = 0; i < 3000; ++i) {
    const Ipv4Addr s{static_cast<std::uint32_t>(rng.next())}, d{static_cast<std::uint32_t>(rng.next())};
    TcpRepr r{.src_port = Port{static_cast<std::uint16_t>(rng.next())},
              .dst_port = Port{static_cast<std::uint16_t>(rng.next())},
              .seq = SeqNum{static_cast<std::uint32_t>(rng.next())},
              .ack = SeqNum{static_cast<std::uint32_t>(rng.next())},
              .flags = TcpFlags{static_cast<std::uint8_t>(rng.next())},
              .window = static_cast<std::uint16_t>(rng.next()),
              .urgent = static_cast<std::uint16_t>(rng.next())};
    if (rng.chance(0.5)) r.options.mss = static_cast<std::uint16_t>(rng.next());
    if (rng.chance(0.5)) r.options.window_scale = static_cast<std::uint8_t>(rng.below(15));
    r.options.sack_permitted = rng.chance(0.5);
    if (rng.chance(0.5))
      r.options.timestamps = wire::TcpTimestamps{TsVal{static_cast<std::uint32_t>(rng.next())},
                                                 TsVal{static_cast<std::uint32_t>(rng.next())}};
    r.options.sack_count = static_cast<std::uint8_t>(rng.below(5));
    for (auto& blk : r.options.sack)
      blk = {SeqNum{static_cast<std::uint32_t>(rng.next())}, SeqNum{static_cast<std::uint32_t>(rng.next())}};
    // What can be sent is what fits; the rest is dropped by emit (RFC 2018 §3).
    r.options.sack_count = static_cast<std::uint8_t>(r.options.sack_blocks_to_emit());

    const std::size_t payload_len = rng.below(1000);
    std::vector<std::uint8_t> b(r.header_len() + payload_len);
    for (std::size_t k = r.header_len(); k < b.size(); ++k) b[k] = static_cast<std::uint8_t>(rng.next());
    r.emit(b, s, d, payload_len);
    auto p = TcpView::parse(b, s, d);
    ASSERT_TRUE(p) << to_string(p.error());
    ASSERT_EQ(TcpRepr::from(*p), r);
    ASSERT_EQ(p->header_len(), r.header_len());
    ASSERT_EQ(p->payload().size(), payload_len);
    ASSERT_EQ(p->payload().data(), b.data() + r.header_len());
  }
}

TEST(TcpOptions, EmitLenIsPaddedAndFitsTheOptionSpace) {
  TcpOptions o;
  EXPECT_EQ(o.emit_len(), 0u);
  o.mss = 536;
  EXPECT_EQ(o.emit_len(), 4u);
  o.window_scale = 0;
  EXPECT_EQ(o.emit_len(), 8u);
  o.sack_permitted = true;
  EXPECT_EQ(o.emit_len(), 12u);
  o.timestamps = wire::TcpTimestamps{TsVal{1}, TsVal{2}};
  EXPECT_EQ(o.emit_len(), 20u) << "SACK-permitted shares the timestamps' alignment word";
  o.sack_count = 4;
  EXPECT_EQ(o.sack_blocks_to_emit(), 2u) << "20 bytes of other options leave room for 2 blocks";
  EXPECT_EQ(o.emit_len(), 40u);

  TcpOptions sack_only;
  sack_only.sack_count = 4;
  EXPECT_EQ(sack_only.sack_blocks_to_emit(), 4u);
  EXPECT_EQ(sack_only.emit_len(), 36u);
  sack_only.timestamps = wire::TcpTimestamps{TsVal{1}, TsVal{2}};
  EXPECT_EQ(sack_only.sack_blocks_to_emit(), 3u) << "RFC 2018 §3: 3 blocks beside timestamps";
  EXPECT_EQ(sack_only.emit_len(), 40u);
  sack_only.sack_count = 200;  // nonsense count: capped, never read past the array
  EXPECT_EQ(sack_only.sack_blocks_to_emit(), 3u);
}

TEST(TcpOptions, EmitsSackAndParsesItBack) {
  TcpOptions o;
  o.sack_count = 2;
  o.sack[0] = {SeqNum(100), SeqNum(200)};
  o.sack[1] = {SeqNum(0xfffffff0), SeqNum(16)};
  std::vector<std::uint8_t> b(o.emit_len(), 0xee);
  o.emit(b);
  EXPECT_EQ(b, hex("01 01 05 12 00 00 00 64 00 00 00 c8 ff ff ff f0 00 00 00 10"));
  auto p = TcpOptions::parse(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, o);
}

TEST(TcpOptions, EolEndsNopSkipsUnknownSkippedByLength) {
  // NOP, unknown kind 30 of length 4, MSS, EOL, then bytes that would be
  // malformed if read.
  auto p = parse_options("01 1e 04 aa bb 02 04 02 18 00 02 00 ff");
  ASSERT_TRUE(p) << to_string(p.error());
  EXPECT_EQ(p->mss, 536);
  EXPECT_FALSE(p->window_scale);
  EXPECT_TRUE(parse_options(""));
  EXPECT_TRUE(parse_options("00"));
  EXPECT_TRUE(parse_options("01 01 01 01"));
}

TEST(TcpOptions, RejectsLengthZeroOneAndOverrun) {
  for (const char* bad : {"1e 00 01 01", "1e 01 01 01", "1e 05 01 01", "02", "01 01 01 1e", "02 04 05", "1e ff"}) {
    auto p = parse_options(bad);
    ASSERT_FALSE(p) << bad;
    EXPECT_EQ(p.error(), ParseError::bad_option) << bad;
  }
}

TEST(TcpOptions, RejectsKnownKindsWithTheWrongLength) {
  for (const char* bad : {"02 03 05 01", "02 05 05 b4 00", "03 02 01 01", "03 04 07 00", "04 03 00 01",
                          "08 09 00 00 00 00 00 00 00 01 01 01", "08 0b 00 00 00 00 00 00 00 00 00 01", "05 02 01 01",
                          "05 03 00 01", "05 0b 00 00 00 00 00 00 00 00 00 01"}) {
    auto p = parse_options(bad);
    ASSERT_FALSE(p) << bad;
    EXPECT_EQ(p.error(), ParseError::bad_option) << bad;
  }
  // SACK of 1 and of 4 blocks: 10 and 34 bytes.
  auto one = parse_options("05 0a 00 00 00 01 00 00 00 02 01 01");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->sack_count, 1);
  EXPECT_EQ(one->sack[0].left, SeqNum(1));
  EXPECT_EQ(one->sack[0].right, SeqNum(2));
  std::string four = "01 01 05 22";
  for (int k = 0; k < 8; ++k) four += " 00 00 00 0" + std::to_string(k);
  auto p4 = parse_options(four);
  ASSERT_TRUE(p4);
  EXPECT_EQ(p4->sack_count, 4);
  EXPECT_EQ(p4->sack[3].right, SeqNum(7));
}

TEST(Tcp, RejectsMalformedOptionsInASegment) {
  auto b = segment_with_options(hex("1e 00 01 01"));
  auto p = TcpView::parse(b, kSrc, kDst);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error(), ParseError::bad_option);
  // An option that runs into the payload overruns the header.
  auto c = segment_with_options(hex("01 01 1e 05"));
  c.push_back(0);
  c.push_back(0);
  EXPECT_EQ(TcpView::parse(c, kSrc, kDst, false).error(), ParseError::bad_option);
}

TEST(Tcp, RejectsEveryLengthBelowTwentyAsTruncated) {
  auto b = hex(kSyn);
  for (std::size_t n = 0; n < 20; ++n) {
    std::vector<std::uint8_t> cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    auto p = TcpView::parse(cut, kSrc, kDst);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error(), ParseError::truncated) << n;
  }
}

TEST(Tcp, RejectsDataOffsetBelowFiveOrBeyondTheBytes) {
  for (std::uint8_t off : {0, 1, 4, 11, 15}) {
    auto b = hex(kSyn);
    b[12] = static_cast<std::uint8_t>(off << 4);
    auto p = TcpView::parse(b, kSrc, kDst, false);
    ASSERT_FALSE(p) << int(off);
    EXPECT_EQ(p.error(), ParseError::bad_header_len) << int(off);
  }
  auto b = hex(kSyn);
  b[12] = 0x50;  // offset 5: the options become payload; only the checksum changes
  auto p = TcpView::parse(b, kSrc, kDst, false);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->payload().size(), 20u);
  EXPECT_EQ(p->options(), TcpOptions{});
}

TEST(Tcp, ChecksumCoversPseudoHeaderAndCanBeSkipped) {
  auto b = hex(kSyn);
  EXPECT_EQ(TcpView::parse(b, kSrc, Ipv4Addr(10, 0, 0, 3)).error(), ParseError::bad_checksum);
  EXPECT_TRUE(TcpView::parse(b, kSrc, Ipv4Addr(10, 0, 0, 3), /*verify_checksum=*/false));
  std::vector<std::uint8_t> c(60, 0xee);  // not zero: emit must write the 0
  TcpRepr{.src_port = Port(1), .dst_port = Port(2)}.emit(c, kSrc, kDst, 40, /*compute_checksum=*/false);
  EXPECT_EQ(load_be16(&c[16]), 0);
}

TEST(Tcp, RejectsEverySingleBitFlip) {
  auto good = hex(kSyn);
  for (char ch : std::string("payload")) good.push_back(static_cast<std::uint8_t>(ch));
  TcpRepr r = TcpRepr::from(*TcpView::parse(hex(kSyn), kSrc, kDst));
  r.emit(good, kSrc, kDst, 7);
  ASSERT_TRUE(TcpView::parse(good, kSrc, kDst));
  for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
    auto b = good;
    b[bit / 8] ^= static_cast<std::uint8_t>(0x80 >> (bit % 8));
    auto p = TcpView::parse(b, kSrc, kDst);
    ASSERT_FALSE(p) << bit;
  }
}

TEST(Tcp, HasTestsEveryRequestedBit) {
  std::vector<std::uint8_t> b(20);
  TcpRepr{.src_port = Port(1), .dst_port = Port(2), .flags = tcp_flag::syn | tcp_flag::ack}.emit(b, kSrc, kDst, 0);
  auto p = TcpView::parse(b, kSrc, kDst);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->has(tcp_flag::syn));
  EXPECT_TRUE(p->has(tcp_flag::ack));
  EXPECT_TRUE(p->has(tcp_flag::syn | tcp_flag::ack));
  EXPECT_FALSE(p->has(tcp_flag::syn | tcp_flag::fin));
  EXPECT_FALSE(p->has(tcp_flag::rst));
}
