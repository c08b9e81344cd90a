// Explicit Congestion Notification (RFC 3168 §6.1, issue 11 item 8): the
// setup handshake both ways, ECT(0) on new data only, CE echoed with ECE
// until CWR, and one window reduction per window for an ECE.
#include <gtest/gtest.h>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;
using tcp::TcpState;
namespace ecn = wire::ecn;

namespace {

const Instant t0 = Instant{} + 1000s;
constexpr wire::TcpFlags kSynAck = flag::syn | flag::ack;

// A connection accepted from an ECN-setup SYN (ECE and CWR).
Established ecn_established(Stack& s) {
  auto& tcp = s.tcp();
  Established e;
  e.listener = tcp.open();
  EXPECT_TRUE(tcp.bind(e.listener, {Ipv4Addr::any(), kSrvPort}));
  EXPECT_TRUE(tcp.listen(e.listener, 4));
  auto syn = hdr(kPeerIsn, 0, flag::syn | flag::ece | flag::cwr);
  syn.options.mss = 1460;
  s.receive(packet(syn), t0);
  auto out = drain(s);
  EXPECT_EQ(out.size(), 1u);
  if (out.empty()) return e;
  e.iss = out[0].h.seq.value();
  s.receive(packet(hdr(kPeerIsn + 1, e.iss + 1, flag::ack)), t0);
  auto a = tcp.accept(e.listener);
  EXPECT_TRUE(a);
  if (a) e.id = a->id;
  return e;
}

}  // namespace

// §6.1.1: an ECN-setup SYN gets an ECN-setup SYN-ACK (ECE, not CWR), sent
// Not-ECT; a plain SYN gets a plain SYN-ACK.
TEST(Ecn, PassiveOpenAnswersAnEcnSetupSyn) {
  Stack s(config());
  auto& tcp = s.tcp();
  auto l = tcp.open();
  ASSERT_TRUE(tcp.bind(l, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.listen(l, 4));
  s.receive(packet(hdr(kPeerIsn, 0, flag::syn | flag::ece | flag::cwr)), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = kSynAck | flag::ece, .ecn = ecn::not_ect});
  auto plain = hdr(7000, 0, flag::syn, 65535, Port{40001});
  s.receive(packet(plain), t0);
  out = drain(s);
  ASSERT_FALSE(out.empty());
  EXPECT_SEG(out.back(), {.flags = kSynAck});
  EXPECT_EQ(counter(s, "tcp.ecn_negotiated"), 1u);
}

// An active open requests ECN when asked (TcpConfig::ecn or set_ecn), and
// has it only when the SYN-ACK answers with ECE and without CWR.
TEST(Ecn, ActiveOpenRequestsWhenAskedAndNegotiatesOnlyOnAnEceSynAck) {
  for (const wire::TcpFlags answer : {flag::ece, flag::ece | flag::cwr, wire::TcpFlags{}}) {
    Stack s(config());
    auto& tcp = s.tcp();
    auto id = tcp.open();
    ASSERT_TRUE(tcp.set_ecn(id, true));
    ASSERT_TRUE(tcp.connect(id, {kPeer, kPeerPort}, t0));
    auto out = drain(s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_SEG(out[0], {.flags = flag::syn | flag::ece | flag::cwr, .ecn = ecn::not_ect});
    auto sa = hdr(kPeerIsn, out[0].h.seq.value() + 1, kSynAck | answer, 65535, kPeerPort, out[0].h.src_port);
    sa.options.mss = 1460;
    s.receive(packet(sa), t0);
    EXPECT_EQ(tcp.info(id)->ecn, answer == flag::ece) << "SYN-ACK flags " << answer;
    EXPECT_EQ(tcp.set_ecn(id, false).error(), std::errc::already_connected);
  }
  // Not asked: a plain SYN (Linux's default accepts and does not request).
  Stack s(config());
  auto id = s.tcp().open();
  ASSERT_TRUE(s.tcp().connect(id, {kPeer, kPeerPort}, t0));
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::syn});
  auto c = config();
  c.tcp.ecn = true;  // weft host --ecn
  Stack s2(c);
  ASSERT_TRUE(s2.tcp().connect(s2.tcp().open(), {kPeer, kPeerPort}, t0));
  out = drain(s2);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::syn | flag::ece | flag::cwr});
}

// §6.1.1, §6.1.4-6.1.5: ECT(0) on new data; never on pure ACKs,
// retransmissions or window probes.
TEST(Ecn, Ect0OnNewDataOnly) {
  Stack s(config());
  auto e = ecn_established(s);
  auto& tcp = s.tcp();
  const auto d = bytes(100);
  ASSERT_TRUE(tcp.send(e.id, d, t0));
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.seq = e.host_nxt(), .len = 100, .ecn = ecn::ect0});
  // The retransmission after the RTO: Not-ECT.
  s.poll(t0 + 2s);
  out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.seq = e.host_nxt(), .len = 100, .ecn = ecn::not_ect});
  // A pure ACK: Not-ECT.
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 100, flag::ack | flag::psh), bytes(10)), t0 + 2s);
  s.poll(t0 + 3s);
  out = drain(s);
  ASSERT_FALSE(out.empty());
  EXPECT_SEG(out.back(), {.flags = flag::ack, .len = 0, .ecn = ecn::not_ect});
  // A zero window, then the persist probe: Not-ECT.
  s.receive(packet(hdr(e.peer_nxt + 10, e.host_nxt() + 100, flag::ack, 0)), t0 + 3s);
  ASSERT_TRUE(tcp.send(e.id, d, t0 + 3s));
  drain(s);
  s.poll(t0 + 5s);
  out = drain(s);
  ASSERT_FALSE(out.empty());
  EXPECT_SEG(out[0], {.ecn = ecn::not_ect});
}

// §6.1.3: a CE-marked segment is answered at once with ECE, and every ACK
// carries ECE until a segment with CWR arrives.
TEST(Ecn, CeIsEchoedWithEceUntilCwr) {
  Stack s(config());
  auto e = ecn_established(s);
  std::uint32_t peer = e.peer_nxt;
  const auto d = bytes(100);
  s.receive(packet(hdr(peer, e.host_nxt(), flag::ack), d, kPeer, kHost, ecn::ce), t0);
  peer += 100;
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u) << "a CE is answered at once";
  EXPECT_SEG(out[0], {.flags = flag::ack | flag::ece, .ack = peer});
  s.receive(packet(hdr(peer, e.host_nxt(), flag::ack), d, kPeer, kHost, ecn::ect0), t0 + 1ms);
  peer += 100;
  s.poll(t0 + 1s);
  out = drain(s);
  ASSERT_FALSE(out.empty());
  EXPECT_SEG(out.back(), {.flags = flag::ack | flag::ece, .ack = peer}) << "ECE until CWR";
  s.receive(packet(hdr(peer, e.host_nxt(), flag::ack | flag::cwr), d, kPeer, kHost, ecn::ect0), t0 + 2s);
  peer += 100;
  s.poll(t0 + 3s);
  out = drain(s);
  ASSERT_FALSE(out.empty());
  EXPECT_SEG(out.back(), {.flags = flag::ack, .ack = peer}) << "the CWR ended the echo";
  EXPECT_EQ(counter(s, "tcp.ce_received"), 1u);
}

// §6.1.2: an ECE halves the window once per window of data, and the next
// new data segment carries CWR (only that one).
TEST(Ecn, EceReducesTheWindowOncePerWindowAndCwrFollows) {
  Stack s(config());
  auto e = ecn_established(s);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.send(e.id, bytes(20000), t0));
  auto out = drain(s);
  ASSERT_GE(out.size(), 4u);
  const std::uint32_t cwnd = tcp.info(e.id)->cwnd;
  const std::uint32_t first = e.host_nxt();
  const std::uint32_t len = static_cast<std::uint32_t>(out[0].data.size());
  s.receive(packet(hdr(e.peer_nxt, first + len, flag::ack | flag::ece)), t0 + 10ms);
  const std::uint32_t reduced = tcp.info(e.id)->cwnd;
  EXPECT_LT(reduced, cwnd);
  EXPECT_EQ(counter(s, "tcp.ecn_reductions"), 1u);
  auto after = drain(s);
  // A second ECE for the same window: no second reduction.
  s.receive(packet(hdr(e.peer_nxt, first + 2 * len, flag::ack | flag::ece)), t0 + 11ms);
  EXPECT_EQ(counter(s, "tcp.ecn_reductions"), 1u);
  for (auto& g : drain(s)) after.push_back(g);
  // Everything sent so far acknowledged: the window opens for new data.
  std::uint32_t sent = 0;
  for (const auto& g : out) sent += static_cast<std::uint32_t>(g.data.size());
  for (const auto& g : after) sent += static_cast<std::uint32_t>(g.data.size());
  s.receive(packet(hdr(e.peer_nxt, first + sent, flag::ack)), t0 + 20ms);
  for (auto& g : drain(s)) after.push_back(g);
  std::size_t cwr = 0, data = 0;
  for (const auto& g : after)
    if (!g.data.empty()) {
      ++data;
      if (g.has(flag::cwr)) ++cwr;
    }
  ASSERT_GT(data, 0u) << "new data went out after the ECE";
  EXPECT_EQ(cwr, 1u) << "CWR on the first new data segment only";
}

// A connection without ECN ignores CE marks and ECE flags.
TEST(Ecn, WithoutNegotiationMarksAndFlagsMeanNothing) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack), bytes(10), kPeer, kHost, ecn::ce), t0);
  s.poll(t0 + 1s);
  // The CE-marked data is ACKed at once (quick-ACK) with a plain ACK: no
  // ECE. Asserting the ACK exists is the positive control: a loop over no
  // segments would pass if nothing had been sent at all.
  auto acks = drain(s);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_SEG(acks[0], {.flags = flag::ack, .seq = e.host_nxt(), .ack = e.peer_nxt + 10, .len = 0});
  ASSERT_TRUE(tcp.send(e.id, bytes(100), t0 + 1s));
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.ecn = ecn::not_ect});
  EXPECT_EQ(counter(s, "tcp.ce_received"), 0u);
}
