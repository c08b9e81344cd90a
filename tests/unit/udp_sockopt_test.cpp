// src/udp/sockopt.hpp: SOL_SOCKET options of a UDP socket over UdpLayer's
// setters and its options() getter.
#include "udp/sockopt.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;

namespace {

TEST(UdpSockopt, SetThenGetThroughTheLayersGetter) {
  Stack s(config());
  UdpLayer& udp = s.udp();
  const SocketId u = udp.open();
  ASSERT_TRUE(udp.options(u));
  EXPECT_FALSE(udp.options(u)->reuse_addr);
  EXPECT_EQ(udp.options(u)->rcvbuf, UdpLayer::kDefaultRcvBuf);
  EXPECT_EQ(*udp::get_socket_option(udp, u, SO_RCVBUF), 212992);
  EXPECT_TRUE(udp::set_socket_option(udp, u, SO_REUSEADDR, 7));
  EXPECT_TRUE(udp.options(u)->reuse_addr);
  EXPECT_EQ(*udp::get_socket_option(udp, u, SO_REUSEADDR), 1);
  EXPECT_TRUE(udp::set_socket_option(udp, u, SO_RCVBUF, 5000));
  EXPECT_EQ(*udp::get_socket_option(udp, u, SO_RCVBUF), 10000);
  EXPECT_TRUE(udp::set_socket_option(udp, u, SO_SNDBUF, 5000));  // taken, ignored
  EXPECT_EQ(udp::get_socket_option(udp, u, SO_SNDBUF).error(), std::errc::no_protocol_option);
  EXPECT_EQ(udp::set_socket_option(udp, u, SO_KEEPALIVE, 1).error(), std::errc::no_protocol_option);
  EXPECT_EQ(udp::set_socket_option(udp, u, SO_RCVBUF, -1).error(), std::errc::invalid_argument);
}

TEST(UdpSockopt, NoSocketIsEbadfAfterTheValueCheck) {
  Stack s(config());
  UdpLayer& udp = s.udp();
  const SocketId u = udp.open();
  ASSERT_TRUE(udp.close(u));
  EXPECT_FALSE(udp.options(u));
  EXPECT_EQ(udp::get_socket_option(udp, u, SO_RCVBUF).error(), std::errc::bad_file_descriptor);
  EXPECT_EQ(udp::set_socket_option(udp, u, SO_REUSEADDR, 1).error(), std::errc::bad_file_descriptor);
  // No UDP socket behind it at all (an ICMP socket in the daemon).
  EXPECT_EQ(udp::set_socket_option(udp, std::nullopt, SO_REUSEADDR, 1).error(), std::errc::bad_file_descriptor);
  EXPECT_EQ(udp::set_socket_option(udp, std::nullopt, SO_RCVBUF, 0).error(), std::errc::invalid_argument);
  EXPECT_EQ(udp::set_socket_option(udp, std::nullopt, SO_RCVBUF, 1).error(), std::errc::bad_file_descriptor);
  EXPECT_TRUE(udp::set_socket_option(udp, std::nullopt, SO_SNDBUF, 1));
}

}  // namespace
