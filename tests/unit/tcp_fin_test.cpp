// The peer's FIN at the edges (issue 11): retransmitted into TIME-WAIT.
// Each test runs with the sequence numbers of both ends in the lower half,
// in the upper half and where the peer's data and FIN straddle the wrap of
// the sequence space.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;
using tcp::TcpState;

namespace {

const Instant t0 = Instant{} + 1000s;
// Both the host's ISS and the peer's ISN. 0xFFFFFFC0: the peer's first
// data byte is 0xFFFFFFC1, so 100 bytes and a FIN cross 2^32 -> 0.
const std::uint32_t kSeqValues[] = {0x00001000u, 0x80001000u, 0xFFFFFFC0u};

std::string hex(std::uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "%08x", v);
  return b;
}

std::string name(std::uint32_t v, bool with_data) { return "seq_" + hex(v) + (with_data ? "_with_data" : "_bare"); }

class TimeWaitFin : public ::testing::TestWithParam<std::tuple<std::uint32_t, bool>> {};

}  // namespace

// RFC 9293 §3.10.7.4, TIME-WAIT: "The only thing that can arrive in this
// state is a retransmission of the remote FIN. Acknowledge it, and restart
// the 2 MSL timeout." The retransmission sits wholly below RCV.NXT (its FIN
// at RCV.NXT - 1, after its data if it carries any), so it must be
// recognised before the acceptance test turns it into a plain ACK.
TEST_P(TimeWaitFin, RetransmittedFinIsAckedAndRestartsTwoMsl) {
  const auto [v, with_data] = GetParam();
  Stack s(config({.iss = v}));  // MSL 1 s: TIME-WAIT lasts 2 s
  auto& tcp = s.tcp();
  auto e = established(s, t0, {}, v);
  ASSERT_EQ(e.iss, v);
  ASSERT_TRUE(tcp.shutdown(e.id, Shutdown::write, t0));
  (void)drain(s);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 1, flag::ack)), t0);
  ASSERT_EQ(tcp.info(e.id)->state, TcpState::fin_wait_2);

  const auto data = with_data ? bytes(100) : std::vector<std::uint8_t>{};
  const auto fin = hdr(e.peer_nxt, e.host_nxt() + 1, flag::fin | flag::ack);
  const std::uint32_t fin_seq = e.peer_nxt + static_cast<std::uint32_t>(data.size());
  s.receive(packet(fin, data), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].h.ack, SeqNum{fin_seq + 1});
  ASSERT_EQ(tcp.info(e.id)->state, TcpState::time_wait);
  std::vector<std::uint8_t> buf(200);
  EXPECT_EQ(tcp.recv(e.id, buf, t0)->len, data.size());

  // Our ACK was lost: the peer sends its FIN again late in 2*MSL.
  const Instant again = t0 + 1900ms;
  s.poll(again);
  EXPECT_TRUE(drain(s).empty());
  s.receive(packet(fin, data), again);
  out = drain(s);
  ASSERT_EQ(out.size(), 1u) << "the retransmitted FIN is acknowledged";
  EXPECT_TRUE(out[0].has(flag::ack));
  EXPECT_EQ(out[0].h.ack, SeqNum{fin_seq + 1});
  EXPECT_EQ(out[0].h.seq, SeqNum{e.host_nxt() + 1});

  s.poll(t0 + 2s + 100ms);  // past the first expiry
  ASSERT_TRUE(tcp.info(e.id));
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::time_wait) << "2*MSL restarted at the retransmission";
  s.poll(again + 2s - 1ms);
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::time_wait);
  s.poll(again + 2s);
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::closed) << "gone 2*MSL after the retransmitted FIN";
  EXPECT_TRUE(drain(s).empty());
}

INSTANTIATE_TEST_SUITE_P(SeqInBothHalvesAndAcrossTheWrap, TimeWaitFin,
                         ::testing::Combine(::testing::ValuesIn(kSeqValues), ::testing::Bool()),
                         [](const auto& info) { return name(std::get<0>(info.param), std::get<1>(info.param)); });
