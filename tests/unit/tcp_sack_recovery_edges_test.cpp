// Edges of SACK loss recovery (RFC 6675; issue 11 C6 and the two items a
// previous review noted): the rescue retransmission never repeats what
// this recovery already retransmitted, no new recovery starts after an RTO
// before HighACK reaches RecoveryPoint, and the first retransmission stops
// at the first SACKed byte. Each test runs with the host's ISS in both
// halves of the space and across the wrap.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;

namespace {

const Instant t0 = Instant{} + 1000s;
constexpr std::uint32_t kMss = 1460;
const std::uint32_t kIssValues[] = {0x00001000u, 0x80001000u, 0xFFFFF000u};

class SackEdges : public ::testing::TestWithParam<std::uint32_t> {
 protected:
  void SetUp() override {
    wire::TcpOptions o;
    o.sack_permitted = true;
    e = established(s, t0, o);
    ASSERT_EQ(e.iss, GetParam());
  }
  std::uint32_t at(std::uint32_t k) const { return e.host_nxt() + k * kMss; }
  Sent seg(std::uint32_t k) const { return Sent{at(k), kMss}; }
  void ack(std::uint32_t cum, std::uint32_t l, std::uint32_t r, Instant now, std::uint16_t window = 65535) {
    auto h = hdr(e.peer_nxt, cum, flag::ack, window);
    h.options.sack[0] = wire::SackBlock{SeqNum{l}, SeqNum{r}};
    h.options.sack_count = 1;
    s.receive(packet(h), now);
  }

  Stack s{config({.sack = true, .iss = GetParam()})};
  Established e;
};

}  // namespace

// Four segments, the first lost. The third duplicate ACK retransmits it
// (HighRxt = its last octet); nothing else is outstanding unSACKed, so
// NextSeg() rule 4 would pick the highest unSACKed octet -- the same
// segment. RFC 6675 §4 rule 4 is a "rescue" for a tail that has not been
// retransmitted; a segment ending at or below HighRxt was, and goes only
// once.
TEST_P(SackEdges, RescueRetransmissionSkipsWhatHighRxtCovers) {
  ASSERT_TRUE(s.tcp().send(e.id, bytes(4 * kMss), t0));
  ASSERT_EQ(data_sent(s).size(), 4u);
  ack(at(0), at(1), at(2), t0 + 10ms);
  ack(at(0), at(1), at(3), t0 + 11ms);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{});
  ack(at(0), at(1), at(4), t0 + 12ms);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{seg(0)}) << "one retransmission, no rescue of the same bytes";
  EXPECT_EQ(counter(s, "tcp.retrans_segs"), 1u);
}

// RFC 6675 §5.1: after a retransmission timeout "a new recovery phase ...
// MUST NOT be initiated until HighACK is greater than or equal to the new
// value of RecoveryPoint" (HighData at the timeout). Segments 0 and 1 are
// lost, the timer resends 0, and after its ACK segment 1 is lost again
// while 2, 3 and 4 arrive: their SACKs are duplicate ACKs, but HighACK is
// still below RecoveryPoint, so no fast retransmit (segment 1 waits for
// the timer, as RFC 6582 §4 has it without SACK).
TEST_P(SackEdges, NoNewRecoveryAfterAnRtoBeforeRecoveryPoint) {
  auto& tcp = s.tcp();
  s.receive(packet(hdr(e.peer_nxt, at(0), flag::ack, 2 * kMss)), t0);  // the peer's window: two segments
  ASSERT_TRUE(tcp.send(e.id, bytes(10 * kMss), t0));
  ASSERT_EQ(data_sent(s), (std::vector<Sent>{seg(0), seg(1)}));
  const auto rto_at = s.next_deadline();
  ASSERT_TRUE(rto_at);
  s.poll(*rto_at);
  ASSERT_EQ(data_sent(s), std::vector<Sent>{seg(0)}) << "the timeout resends segment 0";
  Instant now = *rto_at + 10ms;
  s.receive(packet(hdr(e.peer_nxt, at(1), flag::ack)), now);  // window opens
  ASSERT_EQ(data_sent(s), (std::vector<Sent>{seg(1), seg(2)}));
  const auto recoveries = counter(s, "tcp.sack_recoveries");
  // Segment 1 lost again; 2, 3 and 4 arrive (3 and 4 sent by Limited Transmit).
  ack(at(1), at(2), at(3), now += 1ms);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{seg(3)});
  ack(at(1), at(2), at(4), now += 1ms);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{seg(4)});
  ack(at(1), at(2), at(5), now += 1ms);
  EXPECT_EQ(data_sent(s), std::vector<Sent>{}) << "no fast retransmit of segment 1";
  EXPECT_EQ(counter(s, "tcp.sack_recoveries"), recoveries);
}

// RFC 6675 §5 step 4.3 retransmits "the first segment presumed dropped",
// and NextSeg() never covers a SACKed octet: when the peer holds bytes
// from the middle of the first segment on, the retransmission is only the
// hole before them, not a full segment from SND.UNA.
TEST_P(SackEdges, FirstRetransmissionStopsAtTheFirstSackedByte) {
  ASSERT_TRUE(s.tcp().send(e.id, bytes(10 * kMss), t0));
  ASSERT_EQ(data_sent(s).size(), 10u);
  const std::uint32_t sacked_from = at(0) + 500, sacked_to = at(5);
  ack(at(0), sacked_from, sacked_to, t0 + 10ms);  // more than 2 segments SACKed: IsLost(HighACK + 1)
  const auto out = data_sent(s);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out[0], (Sent{at(0), 500}));
  for (const Sent& x : out)
    EXPECT_FALSE(SeqNum{x.seq} < SeqNum{sacked_to} && SeqNum{sacked_from} < SeqNum{x.seq + x.len})
        << "retransmitted SACKed bytes: " << ::testing::PrintToString(x);
}

INSTANTIATE_TEST_SUITE_P(IssInBothHalvesAndAcrossTheWrap, SackEdges, ::testing::ValuesIn(kIssValues),
                         [](const auto& info) { return "iss_" + hex(info.param); });
