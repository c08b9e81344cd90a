// Data carried by the handshake's segments (issue 11 C1, C2): on a SYN-ACK
// (RFC 9293 §3.10.7.3) and on a SYN to a listener (§3.10.7.2). Each test
// runs with both ends' sequence numbers in the lower half, in the upper half
// and where the data crosses the wrap.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;
using tcp::TcpState;

namespace {

const Instant t0 = Instant{} + 1000s;
// The host's ISS and the peer's ISN; with 0xFFFFFFC0 the 100 data bytes
// cross 2^32 -> 0.
const std::uint32_t kSeqValues[] = {0x00001000u, 0x80001000u, 0xFFFFFFC0u};

class HandshakeData : public ::testing::TestWithParam<std::uint32_t> {};

}  // namespace

// RFC 9293 §3.10.7.3, SYN-SENT: once our SYN is acknowledged, "If there are
// other controls or text in the segment, then continue processing at the
// sixth step ... where the URG bit is checked": the SYN-ACK's data is
// processed as text, delivered to the application and acknowledged (the
// ACK the handshake sends covers it).
TEST_P(HandshakeData, DataOnSynAckIsDeliveredAndAcknowledged) {
  const std::uint32_t v = GetParam();
  Stack s(config({.iss = v}));
  auto& tcp = s.tcp();
  const SocketId c = tcp.open();
  ASSERT_TRUE(tcp.connect(c, {kPeer, kPeerPort}, t0));
  const auto syn = drain(s).at(0);
  ASSERT_SEG(syn, {.flags = flag::syn, .seq = v});
  const auto data = bytes(100, 9);
  auto sa = hdr(v, v + 1, flag::syn | flag::ack, 65535, kPeerPort, syn.h.src_port);  // the peer's ISN is v too
  sa.options.mss = 1460;
  s.receive(packet(sa, data), t0 + 10ms);
  const auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = v + 1, .ack = v + 1 + 100, .len = 0});
  EXPECT_EQ(tcp.info(c)->state, TcpState::established);
  EXPECT_TRUE(tcp.events(c) & tcp_event::readable);
  std::vector<std::uint8_t> buf(200);
  auto r = tcp.recv(c, buf, t0 + 11ms);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->len, 100u);
  EXPECT_EQ(std::vector<std::uint8_t>(buf.begin(), buf.begin() + 100), data);
}

// RFC 9293 §3.10.7.2, LISTEN: "any other control or text should be queued
// for processing later" -- the SYN-ACK acknowledges only the SYN, and the
// data is processed once the handshake's ACK makes the connection
// ESTABLISHED: the application reads it and the peer gets its ACK.
// (Linux and FreeBSD without TCP Fast Open discard such data and let the
// peer retransmit it; weft keeps it as the RFC says.)
TEST_P(HandshakeData, DataOnSynIsHeldUntilEstablishedThenDelivered) {
  const std::uint32_t v = GetParam();
  Stack s(config({.iss = v}));
  auto& tcp = s.tcp();
  const SocketId l = tcp.open();
  ASSERT_TRUE(tcp.bind(l, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.listen(l, 4));
  const auto data = bytes(100, 3);
  auto syn = hdr(v, 0, flag::syn);
  syn.options.mss = 1460;
  s.receive(packet(syn, data), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::syn | flag::ack, .seq = v, .ack = v + 1});  // the SYN only

  s.receive(packet(hdr(v + 1, v + 1, flag::ack)), t0 + 10ms);
  auto a = tcp.accept(l);
  ASSERT_TRUE(a);
  std::vector<std::uint8_t> buf(200);
  auto r = tcp.recv(a->id, buf, t0 + 11ms);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->len, 100u);
  EXPECT_EQ(std::vector<std::uint8_t>(buf.begin(), buf.begin() + 100), data);
  // Acknowledged, at once or by the delayed-ACK timer.
  s.poll(t0 + 500ms);
  out = drain(s);
  ASSERT_FALSE(out.empty());
  EXPECT_SEG(out.back(), {.flags = flag::ack, .ack = v + 1 + 100});
}

// A FIN on the SYN is one of the "other controls" queued with its text
// (RFC 9293 §3.10.7.2): once ESTABLISHED the text is delivered, then the
// FIN takes effect: CLOSE-WAIT, the ACK covers it, the reader gets end of
// stream. With text and without.
TEST_P(HandshakeData, FinOnSynIsHeldWithItsTextUntilEstablished) {
  const std::uint32_t v = GetParam();
  for (const std::size_t len : {std::size_t{0}, std::size_t{100}}) {
    Stack s(config({.iss = v}));
    auto& tcp = s.tcp();
    const SocketId l = tcp.open();
    ASSERT_TRUE(tcp.bind(l, {Ipv4Addr::any(), kSrvPort}));
    ASSERT_TRUE(tcp.listen(l, 4));
    const auto data = bytes(len, 5);
    auto syn = hdr(v, 0, flag::syn | flag::fin);
    syn.options.mss = 1460;
    s.receive(packet(syn, data), t0);
    auto out = drain(s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_SEG(out[0], {.flags = flag::syn | flag::ack, .ack = v + 1});  // the SYN only
    s.receive(packet(hdr(v + 1, v + 1, flag::ack)), t0 + 10ms);
    auto a = tcp.accept(l);
    ASSERT_TRUE(a);
    EXPECT_EQ(tcp.info(a->id)->state, TcpState::close_wait) << len << " bytes";
    out = drain(s);
    ASSERT_FALSE(out.empty());
    EXPECT_SEG(out.back(), {.flags = flag::ack, .ack = v + 1 + static_cast<std::uint32_t>(len) + 1});
    std::vector<std::uint8_t> buf(200);
    auto r = tcp.recv(a->id, buf, t0 + 11ms);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->len, len);
    if (len > 0) {
      r = tcp.recv(a->id, buf, t0 + 11ms);
      ASSERT_TRUE(r);
      EXPECT_EQ(r->len, 0u) << "end of stream after the text";
    }
  }
}

// The peer retransmits the SYN's data after the handshake (as a sender
// whose data was not acknowledged by the SYN-ACK would): the copy is
// recognised as a duplicate, not delivered twice.
TEST_P(HandshakeData, DataOnSynRetransmittedAfterTheHandshakeIsNotDeliveredTwice) {
  const std::uint32_t v = GetParam();
  Stack s(config({.iss = v}));
  auto& tcp = s.tcp();
  const SocketId l = tcp.open();
  ASSERT_TRUE(tcp.bind(l, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.listen(l, 4));
  const auto data = bytes(100, 3);
  auto syn = hdr(v, 0, flag::syn);
  syn.options.mss = 1460;
  s.receive(packet(syn, data), t0);
  (void)drain(s);
  s.receive(packet(hdr(v + 1, v + 1, flag::ack), data), t0 + 10ms);  // the handshake's ACK, with the data again
  auto a = tcp.accept(l);
  ASSERT_TRUE(a);
  std::vector<std::uint8_t> buf(400);
  auto r = tcp.recv(a->id, buf, t0 + 11ms);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->len, 100u);
  s.poll(t0 + 500ms);
  const auto out = drain(s);
  ASSERT_FALSE(out.empty());
  EXPECT_SEG(out.back(), {.flags = flag::ack, .ack = v + 1 + 100});
}

INSTANTIATE_TEST_SUITE_P(SeqInBothHalvesAndAcrossTheWrap, HandshakeData, ::testing::ValuesIn(kSeqValues),
                         [](const auto& info) { return "seq_" + hex(info.param); });
