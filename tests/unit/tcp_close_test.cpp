// TCP as a specification, closing: a Stack with an established connection
// (or a listener) is closed or shut down, and the segments it sends and the
// states it goes through are checked (RFC 9293 §3.6, §3.10.4). Split from
// tcp_state_test.cpp, which has the other states.
#include <gtest/gtest.h>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;
using tcp::TcpState;

namespace {
const Instant t0 = Instant{} + 1000s;
}

// ------------------------------------------------------------- closing

TEST(TcpClose, ActiveCloseThroughTimeWait) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.close(e.id, t0));
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::fin | flag::ack, .seq = e.host_nxt(), .ack = e.peer_nxt, .len = 0});
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::fin_wait_1);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 1, flag::ack)), t0);
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::fin_wait_2);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 1, flag::fin | flag::ack)), t0);
  out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt() + 1, .ack = e.peer_nxt + 1, .len = 0});
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::time_wait);
  // A retransmitted FIN is acked again.
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 1, flag::fin | flag::ack)), t0 + 100ms);
  EXPECT_EQ(drain(s).size(), 1u);
  s.poll(t0 + 100ms + 2s);
  EXPECT_FALSE(tcp.info(e.id)) << "TIME-WAIT over: the socket is gone";
  EXPECT_EQ(tcp.socket_count(), 1u);  // the listener
}

TEST(TcpClose, PassiveCloseEndOfStreamThenLastAck) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::fin | flag::ack)), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  // A FIN is acked at once.
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt(), .ack = e.peer_nxt + 1, .len = 0});
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::close_wait);
  std::vector<std::uint8_t> buf(10);
  auto r = tcp.recv(e.id, buf, t0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->len, 0u) << "end of stream";
  // Half-close: we can still send.
  ASSERT_TRUE(tcp.send(e.id, bytes(10), t0));
  EXPECT_EQ(drain(s).size(), 1u);
  ASSERT_TRUE(tcp.close(e.id, t0));
  out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::fin | flag::ack, .seq = e.host_nxt() + 10, .ack = e.peer_nxt + 1, .len = 0});
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::last_ack);
  s.receive(packet(hdr(e.peer_nxt + 1, e.host_nxt() + 11, flag::ack)), t0);
  EXPECT_FALSE(tcp.info(e.id));
}

TEST(TcpClose, SimultaneousCloseGoesThroughClosing) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.shutdown(e.id, Shutdown::write, t0));
  (void)drain(s);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::fin | flag::ack)), t0);
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::closing);
  s.receive(packet(hdr(e.peer_nxt + 1, e.host_nxt() + 1, flag::ack)), t0);
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::time_wait);
}

TEST(TcpClose, CloseWithUnreadDataSendsRst) {
  Stack s(config());
  auto e = established(s, t0);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack), bytes(10)), t0);
  (void)drain(s);
  ASSERT_TRUE(s.tcp().close(e.id, t0));
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  // RFC 9293 §3.10.4 (RFC 2525 §2.17): a RST at SND.NXT.
  EXPECT_SEG(out[0], {.flags = flag::rst | flag::ack, .seq = e.host_nxt(), .len = 0});
  EXPECT_FALSE(s.tcp().info(e.id));
}

TEST(TcpClose, LingerZeroSendsRst) {
  Stack s(config());
  auto e = established(s, t0);
  ASSERT_TRUE(s.tcp().set_linger(e.id, Duration::zero()));
  ASSERT_TRUE(s.tcp().close(e.id, t0));
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::rst | flag::ack, .seq = e.host_nxt(), .len = 0});
}

// send_room() is what send() takes at once, all of it, and 0 exactly when
// send() would take nothing (and say why).
TEST(TcpData, SendRoomIsWhatSendTakes) {
  Stack s(config());
  auto& tcp = s.tcp();
  SocketId fresh = tcp.open();
  EXPECT_EQ(tcp.send_room(fresh), 0u);  // not connected: send says ENOTCONN
  auto e = established(s, t0);
  EXPECT_EQ(tcp.send_room(e.listener), 0u);
  ASSERT_EQ(tcp.send_room(e.id), 65536u);
  auto n = tcp.send(e.id, bytes(1000), t0);
  ASSERT_TRUE(n);
  EXPECT_EQ(tcp.send_room(e.id), 65536u - 1000);
  auto big = bytes(tcp.send_room(e.id));
  n = tcp.send(e.id, big, t0);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, big.size());
  EXPECT_EQ(tcp.send_room(e.id), 0u);  // full: send says EAGAIN
  Stack s2(config());
  auto f = established(s2, t0);
  ASSERT_EQ(s2.tcp().send_room(f.id), 65536u);
  ASSERT_TRUE(s2.tcp().shutdown(f.id, Shutdown::write, t0));
  EXPECT_EQ(s2.tcp().send_room(f.id), 0u);  // after shutdown: send says EPIPE
}

TEST(TcpClose, SendAfterShutdownIsEpipe) {
  Stack s(config());
  auto e = established(s, t0);
  ASSERT_TRUE(s.tcp().shutdown(e.id, Shutdown::write, t0));
  EXPECT_EQ(s.tcp().send(e.id, bytes(1), t0).error(), std::errc::broken_pipe);
}

TEST(TcpClose, TimeWaitIsReusedByANewerSyn) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.close(e.id, t0));
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 1, flag::fin | flag::ack)), t0);
  (void)drain(s);
  ASSERT_EQ(tcp.info(e.id)->state, TcpState::time_wait);
  auto syn = hdr(e.peer_nxt + 100000, 0, flag::syn);
  syn.options.mss = 1460;
  s.receive(packet(syn), t0 + 1ms);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::syn | flag::ack, .ack = e.peer_nxt + 100001, .len = 0});
  EXPECT_EQ(counter(s, "tcp.timewait_reused"), 1u);
}

TEST(TcpClose, ClosingAListenerResetsUnacceptedConnections) {
  Stack s(config());
  auto& tcp = s.tcp();
  SocketId l = tcp.open();
  ASSERT_TRUE(tcp.bind(l, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.listen(l, 4));
  auto syn = hdr(kPeerIsn, 0, flag::syn);
  syn.options.mss = 1460;
  s.receive(packet(syn), t0);
  auto sa = drain(s).at(0);
  s.receive(packet(hdr(kPeerIsn + 1, sa.h.seq.value() + 1, flag::ack)), t0);
  EXPECT_TRUE(tcp.events(l) & tcp_event::readable);
  ASSERT_TRUE(tcp.close(l, t0));
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::rst | flag::ack, .seq = sa.h.seq.value() + 1, .len = 0});
  EXPECT_EQ(tcp.socket_count(), 0u);
  // The port is free again.
  SocketId l2 = tcp.open();
  EXPECT_TRUE(tcp.bind(l2, {Ipv4Addr::any(), kSrvPort}));
}
