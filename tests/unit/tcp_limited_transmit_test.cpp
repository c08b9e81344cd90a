// Limited Transmit (RFC 3042; RFC 5681 §3.2 step 1; RFC 6675 §5 step 3):
// the first and second duplicate ACKs each let the sender send one segment
// of new data, without changing cwnd, as long as the receiver's window
// allows it and FlightSize stays within cwnd + 2*SMSS. Each test runs with
// the host's ISS in both halves of the space and across the wrap, with and
// without SACK.
#include <gtest/gtest.h>

#include <cstdio>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;

namespace {

const Instant t0 = Instant{} + 1000s;
constexpr std::uint32_t kMss = 1460;  // the peer's MSS option; no timestamps
const std::uint32_t kIssValues[] = {0x00001000u, 0x80001000u, 0xFFFFF000u};

class LimitedTransmit : public ::testing::TestWithParam<std::tuple<std::uint32_t, bool>> {
 protected:
  void SetUp() override {
    const auto [iss, sack] = GetParam();
    wire::TcpOptions o;
    o.sack_permitted = sack;
    e = established(s, t0, o);
    ASSERT_EQ(e.iss, iss);
  }
  std::uint32_t at(std::uint32_t k) const { return e.host_nxt() + k * kMss; }
  Sent seg(std::uint32_t k) const { return Sent{at(k), kMss}; }
  // The peer's n-th duplicate ACK after losing segment 0 of the window
  // and receiving segments 1..n: the same cumulative ACK and window, with
  // SACK blocks for what arrived when SACK is on.
  void dupack(std::uint32_t n, std::uint16_t window, Instant now) {
    auto h = hdr(e.peer_nxt, at(0), flag::ack, window);
    if (std::get<1>(GetParam())) {
      h.options.sack[0] = wire::SackBlock{SeqNum{at(1)}, SeqNum{at(n + 1)}};
      h.options.sack_count = 1;
    }
    s.receive(packet(h), now);
  }

  Stack s{config({.sack = std::get<1>(GetParam()), .iss = std::get<0>(GetParam())})};
  Established e;
};

}  // namespace

// A cwnd-limited sender (initial window: 10 segments, RFC 6928) with 20
// segments queued loses the first of its window. The first two duplicate
// ACKs each send one new segment (10, then 11); cwnd does not move. The
// third starts loss recovery: the lost segment is retransmitted and no
// further new data goes (RFC 5681 §3.2 step 2: FlightSize for ssthresh
// leaves out what Limited Transmit sent, so cwnd is ssthresh + 3*SMSS = 8
// segments with NewReno, ssthresh = 5 segments with SACK, both below the 12
// in flight).
TEST_P(LimitedTransmit, OneNewSegmentOnEachOfTheFirstTwoDuplicateAcks) {
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.send(e.id, bytes(20 * kMss), t0));
  const auto first = data_sent(s);
  ASSERT_EQ(first.size(), 10u);
  const std::uint32_t cwnd = tcp.info(e.id)->cwnd;
  ASSERT_EQ(cwnd, 10 * kMss);

  dupack(1, 65535, t0 + 10ms);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{seg(10)}) << "the first duplicate ACK";
  EXPECT_EQ(tcp.info(e.id)->cwnd, cwnd);
  dupack(2, 65535, t0 + 11ms);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{seg(11)}) << "the second duplicate ACK";
  EXPECT_EQ(tcp.info(e.id)->cwnd, cwnd);
  dupack(3, 65535, t0 + 12ms);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{seg(0)}) << "the third: fast retransmit, no new data";
  EXPECT_EQ(tcp.info(e.id)->ssthresh, 5 * kMss) << "FlightSize without the Limited Transmit segments";
}

// The receiver's window covers exactly the ten segments in flight: Limited
// Transmit may not send beyond it (RFC 3042 §2: "if the receiver's
// advertised window allows").
TEST_P(LimitedTransmit, NothingWhenTheReceiversWindowIsFull) {
  auto& tcp = s.tcp();
  const std::uint16_t window = 10 * kMss;
  s.receive(packet(hdr(e.peer_nxt, at(0), flag::ack, window)), t0);  // a window update, nothing in flight
  ASSERT_TRUE(tcp.send(e.id, bytes(20 * kMss), t0));
  ASSERT_EQ(data_sent(s).size(), 10u);

  dupack(1, window, t0 + 10ms);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{});
  dupack(2, window, t0 + 11ms);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{});
}

INSTANTIATE_TEST_SUITE_P(IssInBothHalvesAndAcrossTheWrap, LimitedTransmit,
                         ::testing::Combine(::testing::ValuesIn(kIssValues), ::testing::Bool()), [](const auto& info) {
                           return "iss_" + hex(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) ? "_sack" : "_no_sack");
                         });
