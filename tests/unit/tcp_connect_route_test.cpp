// connect() to a destination with no route fails at once with ENETUNREACH
// (as Linux's ip_route_connect), not after every SYN retransmission with
// ETIMEDOUT: outside the prefix, without a gateway, nothing can be sent.
#include <gtest/gtest.h>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;
using tcp::TcpState;

namespace {
const Instant t0 = Instant{} + 1000s;
const Ipv4Addr kFar(203, 0, 113, 5);  // outside 192.0.2.0/24
}  // namespace

TEST(TcpConnectRoute, NoRouteIsEnetunreachAtOnceAndSendsNothing) {
  Stack s(config());
  auto& tcp = s.tcp();
  auto id = tcp.open();
  auto st = tcp.connect(id, {kFar, Port{80}}, t0);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error(), std::errc::network_unreachable);
  EXPECT_TRUE(drain(s).empty());
  EXPECT_EQ(tcp.info(id)->state, TcpState::closed);
  EXPECT_FALSE(s.next_deadline()) << "no timer left behind";
  // The socket is still usable: in the prefix, the SYN goes.
  ASSERT_TRUE(tcp.connect(id, {kPeer, kPeerPort}, t0));
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::syn});
}

TEST(TcpConnectRoute, AGatewayIsARoute) {
  auto c = config();
  c.gateway = kPeer;
  Stack s(c);
  auto id = s.tcp().open();
  ASSERT_TRUE(s.tcp().connect(id, {kFar, Port{80}}, t0));
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::syn});
}
