// Quick-ACK as Linux does it (issue 11 C5; net/ipv4/tcp_input.c
// tcp_incr_quickack, tcp_event_data_recv): the first
// min(max(rcv_wnd / (2 * rcv_mss), 2), 16) data segments of a connection are
// ACKed at once rather than delayed (RFC 9293 §3.8.6.3 and RFC 1122
// §4.2.3.2 allow delaying; they do not require it), so that a sender in
// slow start is not held back by the receiver's delayed ACKs; the same
// again after the connection was idle for longer than the RTO. Not while
// the connection is interactive (the host answers data with data at once:
// Linux's "pingpong" mode), where the delayed ACK rides on the answer.
// Out-of-order and gap-filling segments are always ACKed at once (RFC 5681
// §4.2). Each test runs with the peer's ISN in both halves of the space and
// across the wrap.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;

namespace {

const Instant t0 = Instant{} + 1000s;
const std::uint32_t kIsnValues[] = {0x00001000u, 0x80001000u, 0xFFFFFF00u};
constexpr std::uint32_t kLen = 100;  // small segments: the every-second-full-segment rule never applies

struct Peer {
  Stack& s;
  Established e;
  std::uint32_t nxt = e.peer_nxt;
  std::uint32_t host_ack = e.host_nxt();  // what the peer acknowledges of the host's data

  void data(Instant now, std::uint32_t len = kLen) {
    s.receive(packet(hdr(nxt, host_ack, flag::ack), bytes(len)), now);
    nxt += len;
  }
};

StackConfig with_rcvbuf(std::size_t rcvbuf) {
  StackConfig c = config();
  c.tcp.rcvbuf = rcvbuf;
  return c;
}

class QuickAck : public ::testing::TestWithParam<std::uint32_t> {};

}  // namespace

// rcv_wnd 65535, rcv_mss 1460: 65535 / 2920 = 22, capped at 16 segments
// ACKed at once; the 17th waits for the delayed-ACK timer.
TEST_P(QuickAck, FirstSixteenSegmentsAreAckedAtOnce) {
  Stack s(config());
  Peer p{s, established(s, t0, {}, GetParam())};
  Instant now = t0;
  for (int i = 0; i < 16; ++i) {
    p.data(now += 1ms);
    const auto out = drain(s);
    ASSERT_EQ(out.size(), 1u) << "segment " << i;
    EXPECT_SEG(out[0], {.flags = flag::ack, .ack = p.nxt});
  }
  p.data(now += 1ms);
  EXPECT_TRUE(drain(s).empty()) << "the 17th is a delayed ACK";
  s.poll(now + s.tcp().config().delayed_ack);
  const auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .ack = p.nxt});
}

// A small window: rcv_wnd / (2 * rcv_mss) is 1 for a 4 KiB buffer, and at
// least 2 segments are ACKed at once.
TEST_P(QuickAck, SmallWindowStillGetsTwo) {
  Stack s(with_rcvbuf(4096));
  Peer p{s, established(s, t0, {}, GetParam())};
  Instant now = t0;
  for (int i = 0; i < 2; ++i) {
    p.data(now += 1ms);
    ASSERT_EQ(drain(s).size(), 1u) << "segment " << i;
  }
  p.data(now += 1ms);
  EXPECT_TRUE(drain(s).empty());
  // Positive control: the third is delayed, not lost or refused; its ACK
  // goes when the delayed-ACK timer fires (RFC 9293 §3.8.6.3).
  s.poll(now + s.tcp().config().delayed_ack);
  const auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .ack = p.nxt, .len = 0});
}

// After the quota is spent, an idle gap longer than the RTO starts quick-ACK
// again (Linux: the time since the last data exceeds the RTO).
TEST_P(QuickAck, ReenteredAfterIdleLongerThanTheRto) {
  Stack s(config());
  Peer p{s, established(s, t0, {}, GetParam())};
  Instant now = t0;
  for (int i = 0; i < 16; ++i) p.data(now += 1ms);
  (void)drain(s);
  p.data(now += 1ms);
  ASSERT_TRUE(drain(s).empty());
  now += 3s;  // longer than any RTO this connection has (1 s initial)
  s.poll(now);
  (void)drain(s);
  p.data(now += 1ms);
  const auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .ack = p.nxt});
}

// Interactive: the host answers the peer's data with data at once, so the
// connection is a request/response one (Linux's pingpong). The next data
// segment is not quick-ACKed; its ACK waits to ride on the answer.
TEST_P(QuickAck, NotWhenTheHostAnswersDataWithData) {
  Stack s(config());
  auto& tcp = s.tcp();
  Peer p{s, established(s, t0, {}, GetParam())};
  Instant now = t0;
  p.data(now += 1ms);
  ASSERT_EQ(drain(s).size(), 1u);
  ASSERT_TRUE(tcp.send(p.e.id, bytes(50), now));  // the answer, at once
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack | flag::psh, .ack = p.nxt, .len = 50});
  p.host_ack += 50;
  p.data(now += 20ms);  // the next request, acknowledging the answer
  EXPECT_TRUE(drain(s).empty()) << "delayed, to ride on the answer";
  ASSERT_TRUE(tcp.send(p.e.id, bytes(50), now + 1ms));
  out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack | flag::psh, .ack = p.nxt, .len = 50});
}

// RFC 5681 §4.2: an out-of-order segment and one filling the gap are ACKed
// at once, also once the quick-ACK quota is spent.
TEST_P(QuickAck, OutOfOrderAndGapFillingSegmentsAlwaysAckedAtOnce) {
  Stack s(config());
  Peer p{s, established(s, t0, {}, GetParam())};
  Instant now = t0;
  for (int i = 0; i < 17; ++i) p.data(now += 1ms);
  s.poll(now += 100ms);
  (void)drain(s);
  const std::uint32_t gap = p.nxt;
  p.nxt += kLen;  // one segment lost
  p.data(now += 1ms);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u) << "out of order";
  EXPECT_SEG(out[0], {.flags = flag::ack, .ack = gap});
  s.receive(packet(hdr(gap, p.host_ack, flag::ack), bytes(kLen)), now += 1ms);
  out = drain(s);
  ASSERT_EQ(out.size(), 1u) << "fills the gap";
  EXPECT_SEG(out[0], {.flags = flag::ack, .ack = p.nxt});
}

INSTANTIATE_TEST_SUITE_P(PeerIsnInBothHalvesAndAcrossTheWrap, QuickAck, ::testing::ValuesIn(kIsnValues),
                         [](const auto& info) { return "peer_isn_" + hex(info.param); });
