// The peer's FIN at the edges (issue 11): retransmitted into TIME-WAIT, and
// arriving ahead of a gap. Each test runs with the sequence numbers of both
// ends in the lower half, in the upper half and where the peer's data and
// FIN straddle the wrap of the sequence space.
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

std::string name(std::uint32_t v, bool with_data) { return "seq_" + hex(v) + (with_data ? "_with_data" : "_bare"); }

class TimeWaitFin : public ::testing::TestWithParam<std::tuple<std::uint32_t, bool>> {};
class OutOfOrderFin : public ::testing::TestWithParam<std::tuple<std::uint32_t, bool>> {};

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
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt() + 1, .ack = fin_seq + 1, .len = 0});
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
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt() + 1, .ack = fin_seq + 1, .len = 0});

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

// RFC 9293 §3.10.7.4 eighth step: a FIN takes effect once everything
// before it has arrived, i.e. when RCV.NXT reaches it. One that arrives
// ahead of a gap is held with the out-of-order data: when the gap fills,
// RCV.NXT advances over the FIN too, the ACK covers it (no retransmission
// needed), the state moves to CLOSE-WAIT and the reader sees all the data,
// then end of stream.
TEST_P(OutOfOrderFin, FinBeyondAGapTakesEffectWhenTheGapFills) {
  const auto [v, fin_with_data] = GetParam();
  Stack s(config({.iss = v}));
  auto& tcp = s.tcp();
  auto e = established(s, t0, {}, v);
  const std::uint32_t p = e.peer_nxt;
  const auto first = bytes(100, 1), second = bytes(100, 9);

  // [p, p+100) is lost; [p+100, p+200) and the FIN at p+200 arrive.
  if (fin_with_data) {
    s.receive(packet(hdr(p + 100, e.host_nxt(), flag::ack | flag::fin), second), t0);
  } else {
    s.receive(packet(hdr(p + 100, e.host_nxt(), flag::ack), second), t0);
    auto out = drain(s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt(), .ack = p, .len = 0});
    s.receive(packet(hdr(p + 200, e.host_nxt(), flag::ack | flag::fin)), t0);
  }
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u) << "an out-of-order FIN is answered at once";
  // Nothing beyond the gap is acknowledged yet.
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt(), .ack = p, .len = 0});
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::established);
  std::vector<std::uint8_t> buf(400);
  EXPECT_EQ(tcp.recv(e.id, buf, t0).error(), std::errc::resource_unavailable_try_again);

  // The gap fills.
  s.receive(packet(hdr(p, e.host_nxt(), flag::ack), first), t0 + 1ms);
  out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  // The ACK covers the held FIN.
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt(), .ack = p + 201, .len = 0});
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::close_wait);
  auto r = tcp.recv(e.id, buf, t0 + 1ms);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->len, 200u);
  EXPECT_TRUE(std::equal(first.begin(), first.end(), buf.begin()));
  EXPECT_TRUE(std::equal(second.begin(), second.end(), buf.begin() + 100));
  r = tcp.recv(e.id, buf, t0 + 1ms);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->len, 0u) << "then end of stream";
}

INSTANTIATE_TEST_SUITE_P(SeqInBothHalvesAndAcrossTheWrap, OutOfOrderFin,
                         ::testing::Combine(::testing::ValuesIn(kSeqValues), ::testing::Bool()),
                         [](const auto& info) { return name(std::get<0>(info.param), std::get<1>(info.param)); });
