// No value a user can set moves a deadline into the past or stops a timer
// (issue 10): saturating deadline arithmetic, Linux's ranges on the
// keepalive options, and an event-loop wait that is always finite.
#include <gtest/gtest.h>

#include <limits>

#include "base/time.hpp"
#include "host/event_loop.hpp"
#include "tcp_test_util.hpp"

namespace weft {
namespace {

using namespace tcptest;

constexpr Instant kEnd = Instant::max();
const Instant t0 = Instant{} + 1000s;

TEST(DeadlineAfter, SaturatesInsteadOfWrapping) {
  EXPECT_EQ(deadline_after(t0, 5s), t0 + 5s);
  EXPECT_EQ(deadline_after(t0, Duration::max()), kEnd) << "a huge duration is the end of time, not the past";
  EXPECT_EQ(deadline_after(kEnd - 1s, 2s), kEnd);
  EXPECT_EQ(deadline_after(Instant::min() + 1s, -2s), Instant::min());
  EXPECT_EQ(saturating_sub(kEnd, Instant::min()), Duration::max());
  EXPECT_EQ(saturating_sub(Instant::min(), kEnd), Duration::min());
  EXPECT_EQ(saturating_sub(t0 + 3s, t0), 3s);
}

TEST(WaitMsUntil, IsFiniteAndNeverNegative) {
  EXPECT_EQ(wait_ms_until(t0, t0 + 1s), 0) << "overdue: wake now";
  EXPECT_EQ(wait_ms_until(t0 + 1500us, t0), 2) << "rounded up: never early";
  EXPECT_EQ(wait_ms_until(kEnd, t0), kMaxWaitMs) << "the end of time: a wakeup a minute, not forever";
  EXPECT_EQ(wait_ms_until(kEnd, Instant::min()), kMaxWaitMs) << "no overflow in the difference";
  EXPECT_EQ(wait_ms_until(t0 + 24h, t0), kMaxWaitMs);
}

TEST(TcpOptionRanges, KeepaliveTakesLinuxsRanges) {
  Stack s(config());
  auto id = s.tcp().open();
  auto& tcp = s.tcp();
  // include/net/tcp.h: MAX_TCP_KEEPIDLE = MAX_TCP_KEEPINTVL = 32767 s,
  // MAX_TCP_KEEPCNT = 127; zero keeps the default.
  EXPECT_TRUE(tcp.set_keepalive(id, true, 32767s, 32767s, 127, t0));
  EXPECT_EQ(tcp.set_keepalive(id, true, 32768s, 1s, 1, t0).error(), std::errc::invalid_argument);
  EXPECT_EQ(tcp.set_keepalive(id, true, 1s, 32768s, 1, t0).error(), std::errc::invalid_argument);
  EXPECT_EQ(tcp.set_keepalive(id, true, 1s, 1s, 128, t0).error(), std::errc::invalid_argument);
  EXPECT_EQ(tcp.set_keepalive(id, true, Duration::max(), 1s, 1, t0).error(), std::errc::invalid_argument);
  EXPECT_EQ(tcp.set_keepalive(id, true, -1s, 1s, 1, t0).error(), std::errc::invalid_argument);
  EXPECT_EQ(tcp.set_user_timeout(id, -1ms).error(), std::errc::invalid_argument);
  EXPECT_EQ(tcp.set_syn_retries(id, 128).error(), std::errc::invalid_argument);
  EXPECT_EQ(tcp.set_linger(id, -1s).error(), std::errc::invalid_argument);
}

// With every option at its largest, the connection's deadlines stay in the
// future and its retransmission timer still fires on time.
TEST(TcpOptionRanges, LargestValuesLeaveTimersFiringOnTime) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.set_keepalive(e.id, true, TcpLayer::kMaxKeepIdle, TcpLayer::kMaxKeepIdle, 127, t0));
  ASSERT_TRUE(tcp.set_user_timeout(e.id, std::chrono::milliseconds(std::numeric_limits<int>::max())));
  ASSERT_TRUE(tcp.set_linger(e.id, std::chrono::seconds(std::numeric_limits<std::uint32_t>::max())));
  auto d = s.next_deadline();
  ASSERT_TRUE(d);
  EXPECT_GT(*d, t0);
  const std::uint8_t byte = 'x';
  ASSERT_TRUE(tcp.send(e.id, std::span<const std::uint8_t>(&byte, 1), t0));
  ASSERT_EQ(drain(s).size(), 1u);
  d = s.next_deadline();
  ASSERT_TRUE(d);
  EXPECT_LE(*d, t0 + 1s) << "the retransmission timer is the next deadline";
  s.poll(*d);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u) << "the retransmission fired";
  EXPECT_EQ(out[0].data.size(), 1u);
}

}  // namespace
}  // namespace weft
