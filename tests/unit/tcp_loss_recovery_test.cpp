// Loss recovery must not depend on where the ISS falls in the sequence space
// (issue 11). Each test runs with the host's ISS in the lower half, in the
// upper half and just below the wrap (the window then straddles 2^32 -> 0),
// and checks the retransmitted segments themselves: sequence number and
// length.
#include <gtest/gtest.h>

#include <cstdio>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;

namespace {

const Instant t0 = Instant{} + 1000s;
constexpr std::uint32_t kMss = 1460;  // the peer's MSS option; no timestamps, so all of it is data
const std::uint32_t kIssValues[] = {0x00001000u, 0x80001000u, 0xFFFFF000u};

// The host's k-th full-sized segment of a transfer starting at `first`.
struct Segments {
  std::uint32_t first;
  std::uint32_t at(std::uint32_t k) const { return first + k * kMss; }
  Sent seg(std::uint32_t k) const { return Sent{at(k), kMss}; }
  wire::SackBlock blk(std::uint32_t from, std::uint32_t to) const { return {SeqNum{at(from)}, SeqNum{at(to)}}; }
};

// How the peer's duplicate ACKs differ from RFC 5681 §2's "duplicate
// acknowledgment": none of them is one by that definition, so only their
// SACK information can make them duplicates (RFC 6675 §2).
enum class DupKind { window_change, carries_data };

// The test's end of the connection: a receiver that got some of the host's
// segments and acknowledges each arrival at once.
struct Peer {
  Stack& s;
  DupKind kind;
  std::uint32_t nxt;             // the peer's next sequence number
  std::uint16_t window = 60000;  // what it advertises

  void ack(std::uint32_t cum, std::vector<wire::SackBlock> blocks, Instant now) {
    std::vector<std::uint8_t> data;
    if (kind == DupKind::window_change)
      window = static_cast<std::uint16_t>(window - 512);  // every ACK advertises a new window
    else
      data = bytes(10);  // every ACK carries data
    auto h = hdr(nxt, cum, flag::ack, window);
    for (std::size_t i = 0; i < blocks.size(); ++i) h.options.sack[i] = blocks[i];
    h.options.sack_count = static_cast<std::uint8_t>(blocks.size());
    nxt += static_cast<std::uint32_t>(data.size());
    s.receive(packet(h, data), now);
  }
};

wire::TcpOptions sack_permitted() {
  wire::TcpOptions o;
  o.sack_permitted = true;
  return o;
}

class SackRecovery : public ::testing::TestWithParam<std::tuple<std::uint32_t, DupKind>> {};

}  // namespace

// RFC 6675 §2: with SACK, an ACK whose SACK blocks newly SACK data is a
// duplicate ACK even when it changes the window or carries data; §5: the
// third one (or IsLost(HighACK + 1)) starts loss recovery with the first
// hole, and NextSeg() rule 1 then retransmits every later hole as soon as
// IsLost() holds for it (RFC 6675 §4), with no wait for the retransmission
// timer. RFC 5681 §3.2 is the same rule without SACK. The scoreboard's
// notion of "above SND.UNA" starts at the ISS (RFC 6675 §5 applies in any
// part of the sequence space).
TEST_P(SackRecovery, SackDuplicateAcksRepairEveryHoleWithoutTimeout) {
  const auto [iss, kind] = GetParam();
  Stack s(config({.sack = true, .iss = iss}));
  auto& tcp = s.tcp();
  auto e = established(s, t0, sack_permitted());
  ASSERT_EQ(e.iss, iss);
  const Segments w{e.host_nxt()};
  Peer peer{s, kind, e.peer_nxt};

  ASSERT_TRUE(tcp.send(e.id, bytes(10 * kMss), t0));
  const auto first = data_sent(s);
  ASSERT_EQ(first.size(), 10u) << "an initial window of 10 segments (RFC 6928)";
  for (std::uint32_t k = 0; k < 10; ++k) EXPECT_EQ(first[k], w.seg(k));

  // Segments 1 and 4 are lost: two holes in one window. The rest arrive in
  // order and each is acknowledged at once.
  Instant now = t0 + 10ms;
  peer.ack(w.at(1), {}, now);  // segment 0: a new cumulative ACK
  EXPECT_EQ(data_sent(s), std::vector<Sent>{});
  peer.ack(w.at(1), {w.blk(2, 3)}, now);
  peer.ack(w.at(1), {w.blk(2, 4)}, now);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{}) << "two duplicate ACKs are not yet a loss";
  peer.ack(w.at(1), {w.blk(5, 6), w.blk(2, 4)}, now);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{w.seg(1)}) << "the third: fast retransmit of the first hole";

  // Segments 6..9 arrive. Once three segments are SACKed above segment 4,
  // IsLost() holds for it and it goes at once.
  std::vector<Sent> later;
  for (std::uint32_t k = 6; k < 10; ++k) {
    now += 1ms;
    peer.ack(w.at(1), {w.blk(5, k + 1), w.blk(2, 4)}, now);
    for (const Sent& x : data_sent(s)) later.push_back(x);
  }
  ASSERT_FALSE(later.empty()) << "the second hole waits for the retransmission timer";
  EXPECT_EQ(later.front(), w.seg(4));
  EXPECT_EQ(std::count(later.begin(), later.end(), w.seg(1)), 0) << "one retransmission per hole";

  // The retransmissions arrive: recovery ends with everything acknowledged
  // and no timeout.
  now += 10ms;
  peer.ack(w.at(4), {w.blk(5, 10)}, now);
  peer.ack(w.at(10), {}, now);
  (void)drain(s);
  EXPECT_EQ(tcp.info(e.id)->send_queue, 0u);
  EXPECT_FALSE(s.next_deadline() && *s.next_deadline() <= now) << "no timer due";
  EXPECT_EQ(counter(s, "tcp.rto_expired"), 0u);
  EXPECT_EQ(counter(s, "tcp.fast_retransmits"), 1u);
  EXPECT_EQ(counter(s, "tcp.sack_recoveries"), 1u);
}

// RFC 6675 §5: "If the incoming ACK is a duplicate acknowledgment per the
// definition in Section 2 (regardless of its status as a cumulative
// acknowledgment)", DupAcks is increased, and step (2) enters recovery at
// once when IsLost(HighACK + 1) holds. Here the ACKs for segments 0, 2 and
// 3 were lost; the one for segment 4 both moves SND.UNA and SACKs three
// segments above the hole.
TEST_P(SackRecovery, CumulativeAckWithNewSackShowingLossStartsRecovery) {
  const auto [iss, kind] = GetParam();
  Stack s(config({.sack = true, .iss = iss}));
  auto& tcp = s.tcp();
  auto e = established(s, t0, sack_permitted());
  ASSERT_EQ(e.iss, iss);
  const Segments w{e.host_nxt()};
  Peer peer{s, kind, e.peer_nxt};
  ASSERT_TRUE(tcp.send(e.id, bytes(10 * kMss), t0));
  ASSERT_EQ(data_sent(s).size(), 10u);
  peer.ack(w.at(1), {w.blk(2, 5)}, t0 + 10ms);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{w.seg(1)});
  EXPECT_EQ(counter(s, "tcp.sack_recoveries"), 1u);
}

INSTANTIATE_TEST_SUITE_P(IssInBothHalvesAndAcrossTheWrap, SackRecovery,
                         ::testing::Combine(::testing::ValuesIn(kIssValues),
                                            ::testing::Values(DupKind::window_change, DupKind::carries_data)),
                         [](const auto& info) {
                           return "iss_" + hex(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) == DupKind::window_change ? "_window_change"
                                                                                     : "_carries_data");
                         });

namespace {
class NewRenoRecovery : public ::testing::TestWithParam<std::uint32_t> {};
}  // namespace

// Without SACK: RFC 5681 §3.2, the third duplicate ACK retransmits the
// segment at SND.UNA; RFC 6582 §3.2 step 1 initialises "recover" to the ISS,
// so step 2's check ("the Cumulative Acknowledgment field covers more than
// recover") lets the first fast retransmit of a connection through wherever
// the ISS lies.
TEST_P(NewRenoRecovery, ThirdDuplicateAckRetransmitsTheFirstSegment) {
  const std::uint32_t iss = GetParam();
  Stack s(config({.iss = iss}));
  auto& tcp = s.tcp();
  auto e = established(s, t0);
  ASSERT_EQ(e.iss, iss);
  const Segments w{e.host_nxt()};
  ASSERT_TRUE(tcp.send(e.id, bytes(5 * kMss), t0));
  ASSERT_EQ(data_sent(s).size(), 5u);
  for (int i = 0; i < 2; ++i) s.receive(packet(hdr(e.peer_nxt, w.at(0), flag::ack)), t0 + 1ms);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{}) << "two duplicate ACKs are not yet a loss";
  s.receive(packet(hdr(e.peer_nxt, w.at(0), flag::ack)), t0 + 1ms);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{w.seg(0)});
  EXPECT_EQ(counter(s, "tcp.fast_retransmits"), 1u);
  EXPECT_EQ(counter(s, "tcp.newreno_recoveries"), 1u);
}

// RFC 6582 §3.2 step 2: three duplicate ACKs that do not cover more than
// "recover" (here: exactly the end of the previous recovery) start no fast
// retransmit; tcp.fast_retransmits counts retransmissions sent, so it does
// not move either.
TEST_P(NewRenoRecovery, GuardThatSendsNothingCountsNothing) {
  const std::uint32_t iss = GetParam();
  Stack s(config({.iss = iss}));
  auto& tcp = s.tcp();
  auto e = established(s, t0);
  const Segments w{e.host_nxt()};
  ASSERT_TRUE(tcp.send(e.id, bytes(10 * kMss), t0));
  ASSERT_EQ(data_sent(s).size(), 10u);
  // Segment 0 lost: fast retransmit, recover = the end of segment 9.
  for (int i = 0; i < 3; ++i) s.receive(packet(hdr(e.peer_nxt, w.at(0), flag::ack)), t0 + 1ms);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{w.seg(0)});
  s.receive(packet(hdr(e.peer_nxt, w.at(10), flag::ack)), t0 + 2ms);  // full acknowledgment
  ASSERT_EQ(counter(s, "tcp.fast_retransmits"), 1u);
  // New data; segment 10 is lost, and the duplicate ACKs name exactly
  // "recover".
  ASSERT_TRUE(tcp.send(e.id, bytes(10 * kMss), t0 + 3ms));
  const auto more = data_sent(s);
  ASSERT_FALSE(more.empty());
  EXPECT_EQ(more.front(), w.seg(10));
  for (int i = 0; i < 3; ++i) s.receive(packet(hdr(e.peer_nxt, w.at(10), flag::ack)), t0 + 4ms);
  // No retransmission; the first two duplicate ACKs each send one new
  // segment (Limited Transmit, RFC 3042), segments 15 and 16 after the 5
  // of the window.
  EXPECT_EQ(data_sent(s), (std::vector<Sent>{w.seg(15), w.seg(16)}));
  EXPECT_EQ(counter(s, "tcp.fast_retransmits"), 1u);
  EXPECT_EQ(counter(s, "tcp.newreno_recoveries"), 1u);
}

INSTANTIATE_TEST_SUITE_P(IssInBothHalvesAndAcrossTheWrap, NewRenoRecovery, ::testing::ValuesIn(kIssValues),
                         [](const auto& info) { return "iss_" + hex(info.param); });
