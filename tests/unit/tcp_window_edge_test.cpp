// The edge of the advertised window (issue 11 items 2 and 3): RCV.WND is
// what weft last advertised, scaled, and its right edge never moves left;
// TS.Recent is taken only from a segment whose ACK was acceptable. Each
// test runs with both ends' sequence numbers in the lower half, the upper
// half and across the wrap.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;
using tcp::TcpState;

namespace {

const Instant t0 = Instant{} + 1000s;
// Both the host's ISS and the peer's ISN. 0xFFFFF000: the peer's window
// of 64 KiB crosses 2^32 -> 0.
const std::uint32_t kSeqValues[] = {0x00001000u, 0x80001000u, 0xFFFFF000u};

class WindowEdge : public ::testing::TestWithParam<std::uint32_t> {
 protected:
  std::uint32_t isn() const { return GetParam(); }
  // rcvbuf 256 KiB: far more free space than a 65,535 window says.
  StackConfig cfg(bool sack, bool wscale, bool timestamps = false) const {
    auto c = config(Options{.sack = sack, .timestamps = timestamps, .wscale = wscale, .iss = isn()});
    c.tcp.rcvbuf = 256 * 1024;
    return c;
  }
};

}  // namespace

// RFC 9293 §3.10.7.4 and RFC 5961 §3.2: a RST outside the window that was
// advertised is dropped silently; one inside it but not at RCV.NXT gets a
// challenge ACK. Without window scaling the window is 65,535 however much
// buffer stands behind it.
TEST_P(WindowEdge, RstBeyondTheAdvertisedWindowIsDroppedSilently) {
  Stack s(cfg(false, false));
  auto e = established(s, t0, {}, isn());
  s.receive(packet(hdr(e.peer_nxt + 70000, 0, flag::rst)), t0);
  EXPECT_TRUE(drain(s).empty()) << "a RST beyond the 65,535 advertised got an answer";
  EXPECT_EQ(s.tcp().info(e.id)->state, TcpState::established);
  // Positive control: inside the window, a challenge ACK.
  s.receive(packet(hdr(e.peer_nxt + 1000, 0, flag::rst)), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt(), .ack = e.peer_nxt});
}

// In SYN-RECEIVED the window is never scaled (RFC 7323 §2.2): 65,535 at most.
TEST_P(WindowEdge, InSynReceivedTheUnscaledWindowBounds) {
  Stack s(cfg(false, true));
  auto& tcp = s.tcp();
  auto l = tcp.open();
  ASSERT_TRUE(tcp.bind(l, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.listen(l, 4));
  auto syn = hdr(isn(), 0, flag::syn);
  syn.options.mss = 1460;
  syn.options.window_scale = 7;
  s.receive(packet(syn), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_SEG(out[0], {.flags = flag::syn | flag::ack, .ack = isn() + 1, .window = 65535});
  s.receive(packet(hdr(isn() + 1 + 70000, 0, flag::rst)), t0);
  EXPECT_TRUE(drain(s).empty()) << "a RST beyond the SYN-ACK's window got an answer";
  // Positive control: the same RST inside the SYN-ACK's window but not at
  // RCV.NXT gets a challenge ACK (RFC 5961 §3.2), so the silence above is
  // the window's edge, not an embryonic connection that answers nothing.
  s.receive(packet(hdr(isn() + 1 + 1000, 0, flag::rst)), t0);
  auto ch = drain(s);
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_SEG(ch[0], {.flags = flag::ack, .seq = out[0].h.seq.value() + 1, .ack = isn() + 1, .len = 0});
  // The handshake still completes.
  s.receive(packet(hdr(isn() + 1, out[0].h.seq.value() + 1, flag::ack)), t0);
  EXPECT_TRUE(tcp.accept(l));
}

// Out-of-window data is not stored: with SACK, it would show as a block.
TEST_P(WindowEdge, DataBeyondTheAdvertisedWindowIsNotStored) {
  Stack s(cfg(true, false));
  wire::TcpOptions o;
  o.sack_permitted = true;
  auto e = established(s, t0, o, isn());
  const auto d = bytes(100);
  s.receive(packet(hdr(e.peer_nxt + 65600, e.host_nxt(), flag::ack), d), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0],
             {.flags = flag::ack, .ack = e.peer_nxt, .sack = std::vector<std::pair<std::uint32_t, std::uint32_t>>{}});
  // Inside the window, out of order: stored and SACKed (positive control).
  s.receive(packet(hdr(e.peer_nxt + 1000, e.host_nxt(), flag::ack), d), t0);
  out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .ack = e.peer_nxt, .sack = {{{e.peer_nxt + 1000, e.peer_nxt + 1100}}}});
}

// With window scaling, what a segment offers is its field << shift, and
// the right edge it names never moves left of an earlier one even when the
// free space, rounded down by the shift, says less (RFC 7323 §2.4). The
// peer may fill exactly to that edge, and no further.
TEST_P(WindowEdge, ScaledEdgeNeverMovesLeftAndBoundsAcceptance) {
  Stack s(cfg(true, true));
  wire::TcpOptions o;
  o.sack_permitted = true;
  o.window_scale = 0;
  auto& tcp = s.tcp();
  auto l = tcp.open();
  ASSERT_TRUE(tcp.bind(l, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.listen(l, 4));
  auto syn = hdr(isn(), 0, flag::syn);
  syn.options = o;
  syn.options.mss = 1460;
  s.receive(packet(syn), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].h.options.window_scale);
  const unsigned shift = *out[0].h.options.window_scale;
  ASSERT_GT(shift, 0u) << "256 KiB needs a shift";
  const std::uint32_t host_nxt = out[0].h.seq.value() + 1;
  std::uint32_t peer = isn() + 1;
  s.receive(packet(hdr(peer, host_nxt, flag::ack)), t0);
  ASSERT_TRUE(tcp.accept(l));
  // Odd sizes, never read: the free space is never a multiple of 2^shift.
  SeqNum edge{peer};
  for (int i = 0; i < 12; ++i) {
    const auto d = bytes(997 + i);
    s.receive(packet(hdr(peer, host_nxt, flag::ack | flag::psh), d), t0 + std::chrono::milliseconds(i));
    peer += static_cast<std::uint32_t>(d.size());
    s.poll(t0 + std::chrono::milliseconds(i) + 500ms);  // the delayed ACK, if any
    for (const auto& a : drain(s)) {
      const SeqNum right = a.h.ack + (std::uint32_t{a.h.window} << shift);
      EXPECT_GE(right, edge) << "the right edge moved left at segment " << i << ": " << describe(a);
      edge = std::max(edge, right);
    }
  }
  // One byte beyond the edge: that byte is trimmed, the rest stored.
  const std::uint32_t room = static_cast<std::uint32_t>(edge - SeqNum{peer});
  ASSERT_GT(room, 3000u);
  const auto tail = bytes(1000);
  const std::uint32_t e = edge.value();
  s.receive(packet(hdr(e - 999, host_nxt, flag::ack), tail), t0 + 1s);
  out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.ack = peer, .sack = {{{e - 999, e}}}}) << "the byte beyond the edge was stored";
  // Exactly to the edge: accepted (its overlap with what is held is
  // reported as a D-SACK first, RFC 2883).
  s.receive(packet(hdr(e - 1000, host_nxt, flag::ack), tail), t0 + 1s);
  out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.ack = peer, .sack = {{{e - 999, e}, {e - 1000, e}}}});
}

// RFC 5961 §5.2's blind injection: an in-window segment with an ACK above
// SND.NXT (answered with a challenge ACK, and otherwise ignored) and a huge
// TSval must not become TS.Recent, or PAWS drops every valid segment after
// it. TS.Recent is taken only once the ACK is found acceptable.
TEST_P(WindowEdge, TsRecentComesOnlyFromAnAcceptableAck) {
  Stack s(cfg(false, false, true));
  wire::TcpOptions o;
  o.timestamps = wire::TcpTimestamps{TsVal{5000u}, TsVal{0u}};
  auto e = established(s, t0, o, isn());
  const auto d = bytes(10);
  auto bogus = hdr(e.peer_nxt, e.host_nxt() + 50000, flag::ack);
  bogus.options.timestamps = wire::TcpTimestamps{TsVal{5000u + 0x70000000u}, TsVal{0u}};
  s.receive(packet(bogus, d), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .ack = e.peer_nxt, .tsecr = 5001})
      << "a challenge ACK, echoing the old TSval";
  auto good = hdr(e.peer_nxt, e.host_nxt(), flag::ack | flag::psh);
  good.options.timestamps = wire::TcpTimestamps{TsVal{5002u}, TsVal{0u}};
  s.receive(packet(good, d), t0 + 10ms);
  s.poll(t0 + 1s);
  out = drain(s);
  ASSERT_FALSE(out.empty());
  EXPECT_SEG(out.back(), {.flags = flag::ack, .ack = e.peer_nxt + 10, .tsecr = 5002});
  EXPECT_EQ(counter(s, "tcp.paws_rejected"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Seq, WindowEdge, ::testing::ValuesIn(kSeqValues), seq_param_name);

// A peer sending one-byte segments to a reader that never reads: each ACK
// may round the scaled window up by one unit past the buffer's edge, so the
// offered edge creeps right. What the ring takes beyond the buffer stays
// within an eighth of it; the rest is dropped, as Linux drops data past its
// memory limit.
TEST(WindowEdgeBound, TinySegmentsCannotGrowTheReceiveBufferWithoutBound) {
  auto c = config(Options{.wscale = true});
  c.tcp.rcvbuf = 70000;  // shift 1: one byte of rounding an ACK
  Stack s(c);
  auto& tcp = s.tcp();
  auto l = tcp.open();
  ASSERT_TRUE(tcp.bind(l, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.listen(l, 4));
  auto syn = hdr(kPeerIsn, 0, flag::syn);
  syn.options.mss = 1460;
  syn.options.window_scale = 0;
  s.receive(packet(syn), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  const std::uint32_t host_nxt = out[0].h.seq.value() + 1;
  s.receive(packet(hdr(kPeerIsn + 1, host_nxt, flag::ack)), t0);
  auto a = tcp.accept(l);
  ASSERT_TRUE(a);
  const std::uint8_t one = 'x';
  std::uint32_t seq = kPeerIsn + 1;
  Instant now = t0;
  for (int i = 0; i < 90000; ++i) {
    s.receive(packet(hdr(seq, host_nxt, flag::ack), std::span<const std::uint8_t>(&one, 1)), now);
    ++seq;
    now += 300ms;  // past the delayed ACK: one ACK, one rounding, per segment
    s.poll(now);
    (void)drain(s);
  }
  const std::size_t held = tcp.info(a->id)->recv_queue;
  EXPECT_GE(held, 70000u) << "the buffer itself fills";
  EXPECT_LE(held, 70000u + 70000u / 8) << "held beyond the buffer and its eighth";
}
