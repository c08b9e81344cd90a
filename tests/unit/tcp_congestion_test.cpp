// RFC 5681 congestion control with the RFC 6928 initial window and RFC 3465
// byte counting, as NewReno uses it.
#include "tcp/congestion.hpp"

#include <gtest/gtest.h>

using namespace weft;
using namespace weft::tcp;

namespace {

constexpr std::uint32_t smss = 1460;
constexpr Instant t0{};

// One round trip of a greedy, ACK-clocked sender: a full window is in flight
// and each ACK (of `per_ack` bytes) is answered by new data, so the flight
// size seen by every ACK is the current cwnd.
void ack_one_window(CongestionControl& cc, std::uint32_t per_ack) {
  const std::uint32_t window = cc.cwnd();
  for (std::uint32_t acked = 0; acked < window; acked += per_ack) cc.on_ack(per_ack, cc.cwnd(), t0);
}

// Brings cc into congestion avoidance with cwnd == ssthresh == `window`.
void enter_congestion_avoidance(CongestionControl& cc, std::uint32_t window) {
  cc.on_loss_detected(2 * window);
  cc.on_recovery_exit();
  ASSERT_EQ(cc.cwnd(), window);
  ASSERT_EQ(cc.ssthresh(), window);
}

}  // namespace

TEST(InitialWindow, FollowsRfc6928) {
  // min(10*SMSS, max(2*SMSS, 14600))
  EXPECT_EQ(initial_window(536), 5360u);    // 10 segments
  EXPECT_EQ(initial_window(1460), 14600u);  // 10 segments, exactly 14600
  EXPECT_EQ(initial_window(9000), 18000u);  // jumbo: 2 segments
  EXPECT_EQ(initial_window(65535), 131070u);
}

TEST(NewReno, StartsWithInitialWindowAndHighSsthresh) {
  auto cc = make_newreno(smss);
  EXPECT_STREQ(cc->name(), "newreno");
  EXPECT_EQ(cc->cwnd(), 14600u);
  EXPECT_EQ(cc->ssthresh(), 0x7fffffffu);
}

TEST(NewReno, SetMssRecomputesTheInitialWindowOnlyBeforeAnyEvent) {
  auto cc = make_newreno(536);
  EXPECT_EQ(cc->cwnd(), 5360u);
  cc->set_mss(1460);  // the handshake settled on a larger SMSS
  EXPECT_EQ(cc->cwnd(), 14600u);

  cc->on_ack(1460, cc->cwnd(), t0);
  ASSERT_EQ(cc->cwnd(), 16060u);
  cc->set_mss(1200);  // path MTU shrank later: cwnd is kept
  EXPECT_EQ(cc->cwnd(), 16060u);
  cc->set_mss(20000);  // never below one segment
  EXPECT_EQ(cc->cwnd(), 20000u);
}

TEST(NewReno, LostSynMeansAOneSegmentInitialWindow) {
  // RFC 5681 §3.1: the caller applies it with set_mss() then set_cwnd().
  auto cc = make_newreno(536);
  cc->set_mss(smss);
  cc->set_cwnd(smss);
  EXPECT_EQ(cc->cwnd(), smss);
}

TEST(NewReno, SlowStartDoublesCwndEveryRoundTrip) {
  auto cc = make_newreno(smss);
  std::uint32_t expected = 14600;
  for (int rtt = 0; rtt < 5; ++rtt) {
    ack_one_window(*cc, smss);
    expected *= 2;
    EXPECT_EQ(cc->cwnd(), expected) << "after round trip " << rtt + 1;
  }
}

TEST(NewReno, SlowStartStillDoublesWithDelayedAcks) {
  // RFC 3465's point: counting bytes (L = 2*SMSS) instead of ACKs keeps the
  // doubling when the receiver acknowledges every other segment.
  auto cc = make_newreno(smss);
  ack_one_window(*cc, 2 * smss);
  EXPECT_EQ(cc->cwnd(), 29200u);
  ack_one_window(*cc, 2 * smss);
  EXPECT_EQ(cc->cwnd(), 58400u);
}

TEST(NewReno, AbcLimitsSlowStartGrowthToTwoSegmentsPerAck) {
  auto cc = make_newreno(smss);
  cc->on_ack(10 * smss, cc->cwnd(), t0);  // a stretch ACK of ten segments
  EXPECT_EQ(cc->cwnd(), 14600u + 2 * smss);
  cc->on_ack(500, cc->cwnd(), t0);  // a small ACK counts its bytes only
  EXPECT_EQ(cc->cwnd(), 14600u + 2 * smss + 500);
}

TEST(NewReno, SlowStartStopsAtSsthresh) {
  auto cc = make_newreno(smss);
  cc->on_loss_detected(40000);  // ssthresh 20000
  cc->set_cwnd(19000);
  cc->on_ack(2 * smss, cc->cwnd(), t0);
  EXPECT_EQ(cc->cwnd(), 20000u);
}

TEST(NewReno, CongestionAvoidanceAddsOneSegmentPerWindowOfAckedBytes) {
  auto cc = make_newreno(smss);
  enter_congestion_avoidance(*cc, 20 * smss);

  for (int i = 0; i < 19; ++i) cc->on_ack(smss, cc->cwnd(), t0);
  EXPECT_EQ(cc->cwnd(), 20 * smss) << "19 of 20 segments acked: no growth yet";
  cc->on_ack(smss, cc->cwnd(), t0);
  EXPECT_EQ(cc->cwnd(), 21 * smss);

  // The next increase needs the new, larger window: 21 segments.
  for (int i = 0; i < 20; ++i) cc->on_ack(smss, cc->cwnd(), t0);
  EXPECT_EQ(cc->cwnd(), 21 * smss);
  cc->on_ack(smss, cc->cwnd(), t0);
  EXPECT_EQ(cc->cwnd(), 22 * smss);

  // Delayed ACKs change nothing: bytes are counted, not ACKs.
  ack_one_window(*cc, 2 * smss);
  EXPECT_EQ(cc->cwnd(), 23 * smss);
}

TEST(NewReno, CongestionAvoidanceGrowsAtMostOneSegmentPerAck) {
  auto cc = make_newreno(smss);
  enter_congestion_avoidance(*cc, 10 * smss);
  cc->on_ack(30 * smss, cc->cwnd(), t0);  // a huge stretch ACK
  EXPECT_EQ(cc->cwnd(), 11 * smss);
}

TEST(NewReno, DoesNotGrowWhenNotCwndLimited) {
  // An application-limited sender with a quarter of the window in flight:
  // ACKs prove nothing about a larger window.
  auto cc = make_newreno(smss);
  cc->on_ack(smss, 14600 / 4, t0);
  EXPECT_EQ(cc->cwnd(), 14600u);
  // Half the window in use counts as using it (RFC 7661's threshold).
  cc->on_ack(smss, 14600 / 2, t0);
  EXPECT_EQ(cc->cwnd(), 14600u + smss);

  enter_congestion_avoidance(*cc, 10 * smss);
  for (int i = 0; i < 50; ++i) cc->on_ack(smss, 2 * smss, t0);
  EXPECT_EQ(cc->cwnd(), 10 * smss);
}

TEST(NewReno, LossSetsSsthreshToHalfTheFlightSize) {
  auto cc = make_newreno(smss);
  const std::uint32_t before = cc->cwnd();
  cc->on_loss_detected(100000);
  EXPECT_EQ(cc->ssthresh(), 50000u);  // eq. 4
  EXPECT_EQ(cc->cwnd(), before) << "cwnd is the recovery algorithm's to set";

  cc->on_loss_detected(3000);  // a small flight: the 2*SMSS floor
  EXPECT_EQ(cc->ssthresh(), 2 * smss);

  cc->on_loss_detected(100000);
  cc->set_cwnd(50000 + 3 * smss);  // NewReno: ssthresh + 3*SMSS, inflated
  cc->on_recovery_exit();
  EXPECT_EQ(cc->cwnd(), 50000u);  // deflated to ssthresh
}

TEST(NewReno, RtoCollapsesCwndAndLowersSsthreshOnlyOnce) {
  auto cc = make_newreno(smss);
  ack_one_window(*cc, smss);  // cwnd 29200
  cc->on_rto(29200, true);
  EXPECT_EQ(cc->cwnd(), smss);  // LW
  EXPECT_EQ(cc->ssthresh(), 14600u);

  // The retransmission timed out too: ssthresh is held, whatever FlightSize
  // says now (RFC 5681 §3.1).
  cc->on_rto(2 * smss, false);
  EXPECT_EQ(cc->cwnd(), smss);
  EXPECT_EQ(cc->ssthresh(), 14600u);

  // A later, separate series lowers it again.
  cc->on_rto(8000, true);
  EXPECT_EQ(cc->ssthresh(), 4000u);
}

TEST(NewReno, SlowStartAfterRtoUsesOneSegmentLimit) {
  // RFC 3465 §2.3: while the data outstanding at the timeout is being
  // acknowledged, L = 1*SMSS; afterwards L = 2*SMSS again.
  auto cc = make_newreno(smss);
  cc->on_rto(4 * smss, false);  // ssthresh stays high: pure slow start
  ASSERT_EQ(cc->cwnd(), smss);
  cc->on_ack(2 * smss, 4 * smss, t0);
  EXPECT_EQ(cc->cwnd(), 2 * smss);
  cc->on_ack(2 * smss, 4 * smss, t0);  // acknowledges the last pre-RTO bytes
  EXPECT_EQ(cc->cwnd(), 3 * smss);
  cc->on_ack(2 * smss, cc->cwnd(), t0);  // new data
  EXPECT_EQ(cc->cwnd(), 5 * smss);
}

TEST(NewReno, IdleLongerThanRtoRestartsFromTheInitialWindow) {
  auto cc = make_newreno(smss);
  ack_one_window(*cc, smss);
  ack_one_window(*cc, smss);
  ASSERT_EQ(cc->cwnd(), 58400u);

  cc->on_idle(900ms, 1s);
  EXPECT_EQ(cc->cwnd(), 58400u) << "idle shorter than RTO: keep the window";
  cc->on_idle(1s, 1s);
  EXPECT_EQ(cc->cwnd(), 58400u) << "RFC 5681 §4.1: more than one RTO";
  cc->on_idle(1500ms, 1s);
  EXPECT_EQ(cc->cwnd(), 14600u);  // RW = min(IW, cwnd)

  cc->on_rto(14600, true);
  cc->on_idle(10s, 1s);
  EXPECT_EQ(cc->cwnd(), smss) << "RW never raises a smaller cwnd";
}

TEST(NewReno, SetCwndNeverGoesBelowOneSegment) {
  auto cc = make_newreno(smss);
  cc->set_cwnd(0);
  EXPECT_EQ(cc->cwnd(), smss);
  cc->set_cwnd(100000);
  EXPECT_EQ(cc->cwnd(), 100000u);
}
