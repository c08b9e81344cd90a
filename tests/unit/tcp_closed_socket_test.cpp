// The closed-socket rule (tcp.hpp): after close() the id is not the user's,
// as a descriptor is gone after close(2); every user call answers as for
// no socket while the stack finishes the connection as an orphan.
#include <gtest/gtest.h>

#include <vector>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;
using tcp::TcpState;

namespace {
const Instant t0 = Instant{} + 1000s;
constexpr auto kBadf = std::errc::bad_file_descriptor;

// Every user call on `closed` answers as for no socket, and none of them
// sends anything (abort's RST, an option's flush).
void expect_not_the_users(Stack& s, SocketId closed) {
  auto& tcp = s.tcp();
  std::vector<std::uint8_t> buf(4, 1);
  EXPECT_EQ(tcp.bind(closed, {Ipv4Addr::any(), Port(7)}).error(), kBadf);
  EXPECT_EQ(tcp.listen(closed, 1).error(), kBadf);
  EXPECT_EQ(tcp.accept(closed).error(), kBadf);
  EXPECT_EQ(tcp.connect(closed, {kPeer, Port(9)}, t0).error(), kBadf);
  EXPECT_EQ(tcp.send(closed, buf, t0).error(), kBadf);
  EXPECT_EQ(tcp.recv(closed, buf, t0).error(), kBadf);
  EXPECT_EQ(tcp.recv(closed, buf, t0, true).error(), kBadf);
  EXPECT_EQ(tcp.shutdown(closed, Shutdown::both, t0).error(), kBadf);
  EXPECT_EQ(tcp.take_error(closed), kBadf);
  EXPECT_EQ(tcp.set_rcvbuf(closed, 4096).error(), kBadf);
  EXPECT_EQ(tcp.set_sndbuf(closed, 4096).error(), kBadf);
  EXPECT_EQ(tcp.set_nodelay(closed, true, t0).error(), kBadf);
  EXPECT_EQ(tcp.set_cork(closed, false, t0).error(), kBadf);
  EXPECT_EQ(tcp.set_keepalive(closed, true, 1s, 1s, 1, t0).error(), kBadf);
  EXPECT_EQ(tcp.set_linger(closed, Duration::zero()).error(), kBadf);
  EXPECT_EQ(tcp.set_reuse_addr(closed, true).error(), kBadf);
  EXPECT_EQ(tcp.set_user_timeout(closed, 1s).error(), kBadf);
  EXPECT_EQ(tcp.set_syn_retries(closed, 2).error(), kBadf);
  EXPECT_EQ(tcp.set_ecn(closed, true).error(), kBadf);
  EXPECT_EQ(tcp.set_notsent_lowat(closed, 10).error(), kBadf);
  EXPECT_EQ(tcp.set_inq(closed, true).error(), kBadf);
  EXPECT_EQ(tcp.set_maxseg(closed, 1000).error(), kBadf);
  EXPECT_FALSE(tcp.options(closed));
  EXPECT_EQ(tcp.readable(closed), 0u);
  EXPECT_EQ(tcp.send_room(closed), 0u);
  EXPECT_EQ(tcp.pending_accepts(closed), 0u);
  EXPECT_EQ(tcp.events(closed), 0u);
  EXPECT_FALSE(tcp.local_endpoint(closed));
  EXPECT_FALSE(tcp.remote_endpoint(closed));
  EXPECT_EQ(tcp.abort(closed, t0).error(), kBadf);
  EXPECT_EQ(tcp.close(closed, t0).error(), kBadf);
  EXPECT_TRUE(drain(s).empty()) << "no call on a closed socket sends anything";
}
}  // namespace

TEST(TcpClosedSocket, OrphanInFinWaitIsNotTheUsersButFinishes) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.close(e.id, t0));
  ASSERT_EQ(drain(s).size(), 1u);  // the FIN
  expect_not_the_users(s, e.id);
  // Introspection still shows the orphan, as netstat does.
  ASSERT_TRUE(tcp.info(e.id));
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::fin_wait_1);
  // The stack finishes the connection: the FIN is acknowledged, the
  // peer's FIN answered, TIME-WAIT runs out.
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 1, flag::ack)), t0);
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::fin_wait_2);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 1, flag::fin | flag::ack)), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt() + 1, .ack = e.peer_nxt + 1});
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::time_wait);
  expect_not_the_users(s, e.id);
  s.poll(t0 + 3s);
  EXPECT_FALSE(tcp.info(e.id));
}

TEST(TcpClosedSocket, TimeWaitClosedByTheUserCannotBeAborted) {
  // The user's socket reaches TIME-WAIT, then is closed: abort() on it used
  // to be allowed (and freed it at once); now, as every call, EBADF, and
  // TIME-WAIT runs its course, answering a retransmitted FIN.
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.shutdown(e.id, Shutdown::write, t0));
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 1, flag::fin | flag::ack)), t0);
  (void)drain(s);
  ASSERT_EQ(tcp.info(e.id)->state, TcpState::time_wait);
  std::vector<std::uint8_t> buf(4);
  ASSERT_TRUE(tcp.recv(e.id, buf, t0)) << "still the user's: end of stream";
  ASSERT_TRUE(tcp.close(e.id, t0));
  expect_not_the_users(s, e.id);
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::time_wait);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 1, flag::fin | flag::ack)), t0 + 100ms);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u) << "the retransmitted FIN is answered";
  EXPECT_TRUE(out[0].has(flag::ack));
  s.poll(t0 + 3s);
  EXPECT_FALSE(tcp.info(e.id));
  EXPECT_EQ(tcp.socket_count(), 1u);
}

TEST(TcpClosedSocket, ASocketTheStackEndedStaysTheUsersUntilClosed) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::rst)), t0);
  EXPECT_EQ(tcp.take_error(e.id), std::errc::connection_reset);
  ASSERT_TRUE(tcp.options(e.id));
  ASSERT_TRUE(tcp.set_nodelay(e.id, true, t0));
  ASSERT_TRUE(tcp.close(e.id, t0));
  EXPECT_EQ(tcp.take_error(e.id), kBadf);
}
