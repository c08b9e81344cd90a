// RFC 6298 retransmission timeout: the numbers of §2, the bounds of §2.4 and
// §2.5, the backoff of §5.5 and the SYN rule of §5.7.
#include "tcp/rto.hpp"

#include <gtest/gtest.h>

using namespace weft;
using namespace weft::tcp;

TEST(RtoEstimator, UsesInitialRtoBeforeAnySample) {
  RtoEstimator est;
  EXPECT_EQ(est.rto(), 1s);  // §2.1
  EXPECT_FALSE(est.srtt());
  EXPECT_EQ(est.rttvar(), Duration::zero());
  EXPECT_EQ(est.backoffs(), 0u);
}

TEST(RtoEstimator, FirstSampleSetsSrttAndHalfRttvar) {
  RtoEstimator est;
  est.on_sample(100ms);
  // §2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4*RTTVAR).
  EXPECT_EQ(est.srtt(), 100ms);
  EXPECT_EQ(est.rttvar(), 50ms);
  EXPECT_EQ(est.rto(), 300ms);
}

TEST(RtoEstimator, LaterSamplesFollowTheSection23Equations) {
  RtoEstimator est;
  est.on_sample(100ms);

  // R' = 200 ms. RTTVAR first, with the old SRTT:
  //   RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 37.5 + 25     = 62.5 ms
  //   SRTT   = 7/8 * 100 + 1/8 * 200        = 87.5 + 25     = 112.5 ms
  //   RTO    = 112.5 + 4 * 62.5                              = 362.5 ms
  est.on_sample(200ms);
  EXPECT_EQ(est.rttvar(), 62500us);
  EXPECT_EQ(est.srtt(), 112500us);
  EXPECT_EQ(est.rto(), 362500us);

  // R' = 50 ms:
  //   RTTVAR = 3/4 * 62.5 + 1/4 * |112.5 - 50| = 46.875 + 15.625 = 62.5 ms
  //   SRTT   = 7/8 * 112.5 + 1/8 * 50         = 98.4375 + 6.25  = 104.6875 ms
  //   RTO    = 104.6875 + 250                                    = 354.6875 ms
  est.on_sample(50ms);
  EXPECT_EQ(est.rttvar(), 62500us);
  EXPECT_EQ(est.srtt(), 104687500ns);
  EXPECT_EQ(est.rto(), 354687500ns);
}

TEST(RtoEstimator, GranularityBoundsTheVarianceTerm) {
  // A perfectly steady path: RTTVAR decays towards zero, and G keeps RTO
  // strictly above SRTT (§2, "max(G, K*RTTVAR)").
  RtoEstimator est({.initial = 1s, .min = 0ms, .max = 60s, .granularity = 1ms});
  for (int i = 0; i < 200; ++i) est.on_sample(10ms);
  EXPECT_EQ(est.srtt(), 10ms);
  EXPECT_EQ(est.rttvar(), Duration::zero());
  EXPECT_EQ(est.rto(), 11ms);
}

TEST(RtoEstimator, ClampsToTheConfiguredMinimum) {
  RtoEstimator linux_like;    // min 200 ms
  linux_like.on_sample(1ms);  // 1 + 4 * 0.5 = 3 ms
  EXPECT_EQ(linux_like.rto(), 200ms);

  RtoEstimator rfc({.min = 1s});  // §2.4 to the letter
  rfc.on_sample(1ms);
  EXPECT_EQ(rfc.rto(), 1s);
  rfc.on_sample(1ms);
  EXPECT_EQ(rfc.rto(), 1s);
  // The clamp applies to the RTO, not to the estimates themselves.
  EXPECT_EQ(rfc.srtt(), 1ms);
}

TEST(RtoEstimator, ClampsToTheConfiguredMaximum) {
  RtoEstimator est;
  est.on_sample(100s);  // 100 + 4 * 50 = 300 s
  EXPECT_EQ(est.rto(), 120s);
  RtoEstimator low_initial({.initial = 500s});
  EXPECT_EQ(low_initial.rto(), 120s);
}

TEST(RtoEstimator, BackoffDoublesAndIsCappedAtMax) {
  RtoEstimator est;
  est.on_sample(100ms);
  ASSERT_EQ(est.rto(), 300ms);
  Duration expected = 300ms;
  for (unsigned i = 1; i <= 8; ++i) {
    est.backoff();  // §5.5
    expected *= 2;
    EXPECT_EQ(est.backoffs(), i);
    EXPECT_EQ(est.rto(), expected) << i;
  }
  EXPECT_EQ(est.rto(), 76800ms);
  est.backoff();  // 153.6 s > 120 s
  EXPECT_EQ(est.rto(), 120s);
  // However many expiries, never more than max and never an overflow.
  for (int i = 0; i < 1000; ++i) est.backoff();
  EXPECT_EQ(est.backoffs(), 1009u);
  EXPECT_EQ(est.rto(), 120s);

  est.clear_backoff();
  EXPECT_EQ(est.backoffs(), 0u);
  EXPECT_EQ(est.rto(), 300ms);
}

TEST(RtoEstimator, BackoffAppliesToTheInitialRtoToo) {
  RtoEstimator est;
  est.backoff();
  EXPECT_EQ(est.rto(), 2s);
  est.backoff();
  EXPECT_EQ(est.rto(), 4s);
}

TEST(RtoEstimator, ANewSampleCollapsesTheBackoff) {
  // RFC 6298 §5: after backing off, the next RTT measurement recomputes
  // RTO per §2, "collapsing" it back down.
  RtoEstimator est;
  est.on_sample(100ms);
  est.backoff();
  est.backoff();
  ASSERT_EQ(est.rto(), 1200ms);
  est.on_sample(100ms);
  EXPECT_EQ(est.backoffs(), 0u);
  EXPECT_EQ(est.rto(), 100ms + 4 * 37500us);  // RTTVAR = 3/4 * 50 + 0
}

TEST(RtoEstimator, SynTimeoutResetsTheRtoToThreeSeconds) {
  // §5.7: the SYN timed out (RTO backed off from 1 s), no sample was taken
  // (Karn), and the handshake completes: data starts with RTO = 3 s.
  RtoEstimator est;
  est.backoff();
  ASSERT_EQ(est.rto(), 2s);
  est.reset_after_syn_timeout();
  EXPECT_EQ(est.backoffs(), 0u);
  EXPECT_EQ(est.rto(), 3s);
  // Backoff doubles from the 3 s base.
  est.backoff();
  EXPECT_EQ(est.rto(), 6s);
  // The first sample on data replaces the 3 s floor with the §2.2 value.
  est.on_sample(100ms);
  EXPECT_EQ(est.rto(), 300ms);
}

TEST(RtoEstimator, SynTimeoutDoesNotLowerALargerRto) {
  // §5.7 applies to an RTO "less than 3 seconds".
  RtoEstimator est;
  est.on_sample(2s);  // 2 + 4 * 1 = 6 s
  est.backoff();
  est.reset_after_syn_timeout();
  EXPECT_EQ(est.rto(), 6s);
}

TEST(RtoEstimator, SynTimeoutRtoStillRespectsMax) {
  RtoEstimator est({.max = 2s});
  est.reset_after_syn_timeout();
  EXPECT_EQ(est.rto(), 2s);
}
