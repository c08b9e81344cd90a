// What TIME-WAIT answers (issue 11 item 5; RFC 9293 §3.10.7.4, RFC 5961 §7,
// as Linux's tcp_timewait_state_process): a bare ACK at RCV.NXT gets
// nothing; any other segment but a RST gets an ACK, rate-limited; an exact
// RST ends the wait. Run with sequence numbers in both halves and across
// the wrap.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;
using tcp::TcpState;

namespace {

const Instant t0 = Instant{} + 1000s;
const std::uint32_t kSeqValues[] = {0x00001000u, 0x80001000u, 0xFFFFFFF0u};

class TimeWait : public ::testing::TestWithParam<std::uint32_t> {
 protected:
  // Host closes first; the peer ACKs and sends its FIN: TIME-WAIT.
  Established enter(Stack& s) {
    auto& tcp = s.tcp();
    auto e = established(s, t0, {}, GetParam());
    EXPECT_TRUE(tcp.shutdown(e.id, Shutdown::write, t0));
    (void)drain(s);
    s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 1, flag::fin | flag::ack)), t0);
    auto out = drain(s);
    EXPECT_EQ(out.size(), 1u);
    EXPECT_EQ(tcp.info(e.id)->state, TcpState::time_wait);
    return e;
  }
};

}  // namespace

TEST_P(TimeWait, ABareAckAtRcvNxtGetsNothingAnythingElseAnAck) {
  Stack s(config({.iss = GetParam()}));
  auto e = enter(s);
  const std::uint32_t rcv_nxt = e.peer_nxt + 1, snd = e.host_nxt() + 1;
  s.receive(packet(hdr(rcv_nxt, snd, flag::ack)), t0 + 10ms);
  EXPECT_TRUE(drain(s).empty()) << "a bare ACK at RCV.NXT is the expected last word";
  // A bare ACK one past RCV.NXT, data at RCV.NXT, an old segment: each an ACK.
  s.receive(packet(hdr(rcv_nxt + 1, snd, flag::ack)), t0 + 20ms);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = snd, .ack = rcv_nxt});
  s.receive(packet(hdr(rcv_nxt, snd, flag::ack | flag::psh), bytes(10)), t0 + 30ms);
  out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = snd, .ack = rcv_nxt});
  s.receive(packet(hdr(rcv_nxt - 500, snd, flag::ack), bytes(10)), t0 + 40ms);
  out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .ack = rcv_nxt});
  EXPECT_EQ(s.tcp().info(e.id)->state, TcpState::time_wait);
}

TEST_P(TimeWait, TheAnswersAreRateLimited) {
  Stack s(config({.iss = GetParam()}));
  auto e = enter(s);
  const std::uint32_t rcv_nxt = e.peer_nxt + 1, snd = e.host_nxt() + 1;
  std::size_t answers = 0;
  for (int i = 0; i < 50; ++i) {
    s.receive(packet(hdr(rcv_nxt - 1000, snd, flag::ack), bytes(10)), t0 + std::chrono::milliseconds(10 + i));
    answers += drain(s).size();
  }
  EXPECT_GE(answers, 1u);
  EXPECT_LE(answers, 10u) << "challenge_acks_per_sec bounds what TIME-WAIT says";
}

TEST_P(TimeWait, AnExactRstEndsItAndGetsNoAnswer) {
  Stack s(config({.iss = GetParam()}));
  auto e = enter(s);
  s.receive(packet(hdr(e.peer_nxt + 1, 0, flag::rst)), t0 + 10ms);
  EXPECT_TRUE(drain(s).empty());
  auto i = s.tcp().info(e.id);
  EXPECT_TRUE(!i || i->state == TcpState::closed);
  // Positive control: a bare ACK at RCV.NXT, which TIME-WAIT would have
  // let pass in silence (ABareAckAtRcvNxtGetsNothing...), now meets no
  // connection and is answered <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.2,
  // the listener's rule for an ACK). So the RST really ended TIME-WAIT, and
  // the silence above is the never-answer-a-RST rule, not a mute stack.
  const std::uint32_t snd = e.host_nxt() + 1;
  s.receive(packet(hdr(e.peer_nxt + 1, snd, flag::ack)), t0 + 20ms);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::rst, .seq = snd, .len = 0});
}

INSTANTIATE_TEST_SUITE_P(SeqInBothHalvesAndAcrossTheWrap, TimeWait, ::testing::ValuesIn(kSeqValues), seq_param_name);
