// The packetdrill adapter's socket options, TCP_INFO and ioctl queue sizes
// (see pd_fixture.hpp).
#include "pd_fixture.hpp"

using namespace weft;
using namespace weft::pd_test;

namespace {

TEST(PacketdrillAdapter, SocketOptions) {
  Pd pd;
  const int fd = pd.socket();
  EXPECT_EQ(pd.getint(fd, SOL_SOCKET, SO_ERROR), 0);
  EXPECT_EQ(pd.getint(fd, SOL_SOCKET, SO_RCVBUF), 256 * 1024);
  EXPECT_EQ(pd.getint(fd, SOL_SOCKET, SO_SNDBUF), 256 * 1024);
  // Linux stores (and reports) twice what was set, at least
  // SOCK_MIN_RCVBUF / SOCK_MIN_SNDBUF, at most twice net.core.*mem_max.
  EXPECT_EQ(pd.setint(fd, SOL_SOCKET, SO_RCVBUF, 65536), 0);
  EXPECT_EQ(pd.getint(fd, SOL_SOCKET, SO_RCVBUF), 131072);
  EXPECT_EQ(pd.setint(fd, SOL_SOCKET, SO_SNDBUF, 100), 0);
  EXPECT_EQ(pd.getint(fd, SOL_SOCKET, SO_SNDBUF), 4608);
  EXPECT_EQ(pd.setint(fd, SOL_SOCKET, SO_RCVBUF, 100), 0);
  EXPECT_EQ(pd.getint(fd, SOL_SOCKET, SO_RCVBUF), 2304);
  EXPECT_EQ(pd.setint(fd, SOL_SOCKET, SO_SNDBUF, 1 << 30), 0);
  EXPECT_EQ(pd.getint(fd, SOL_SOCKET, SO_SNDBUF), 2 * 212992);
  EXPECT_EQ(pd.setint(fd, SOL_SOCKET, SO_SNDBUF, -1), 0);  // an unsigned, so huge
  EXPECT_EQ(pd.getint(fd, SOL_SOCKET, SO_SNDBUF), 2 * 212992);
  EXPECT_EQ(pd.getint(fd, IPPROTO_TCP, TCP_NODELAY), 0);
  EXPECT_EQ(pd.setint(fd, IPPROTO_TCP, TCP_NODELAY, 1), 0);
  EXPECT_EQ(pd.getint(fd, IPPROTO_TCP, TCP_NODELAY), 1);
  EXPECT_EQ(pd.getint(fd, IPPROTO_TCP, TCP_MAXSEG), 536);
  EXPECT_EQ(pd.setint(fd, IPPROTO_TCP, TCP_MAXSEG, 1000), 0);
  EXPECT_EQ(pd.getint(fd, IPPROTO_TCP, TCP_MAXSEG), 1000);
  errno = 0;
  EXPECT_EQ(pd.setint(fd, IPPROTO_TCP, TCP_MAXSEG, 10), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(pd.setint(fd, IPPROTO_TCP, TCP_MAXSEG, 32768), -1);
  EXPECT_EQ(pd.setint(fd, IPPROTO_TCP, TCP_MAXSEG, 0), 0);  // clears it
  EXPECT_EQ(pd.getint(fd, IPPROTO_TCP, TCP_MAXSEG), 536);
  EXPECT_EQ(pd.getint(fd, IPPROTO_TCP, TCP_CORK), 0);
  EXPECT_EQ(pd.setint(fd, IPPROTO_TCP, TCP_CORK, 1), 0);  // nginx refuses to run without it
  EXPECT_EQ(pd.getint(fd, IPPROTO_TCP, TCP_CORK), 1);
  EXPECT_EQ(pd.setint(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, 16384), 0);
  EXPECT_EQ(pd.getint(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT), 16384);
  EXPECT_EQ(pd.setint(fd, IPPROTO_TCP, TCP_INQ, 1), 0);
  EXPECT_EQ(pd.getint(fd, IPPROTO_TCP, TCP_INQ), 1);
  EXPECT_EQ(pd.setint(fd, IPPROTO_TCP, TCP_INQ, 2), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(pd.setint(fd, IPPROTO_TCP, TCP_KEEPIDLE, 60), 0);
  EXPECT_EQ(pd.getint(fd, IPPROTO_TCP, TCP_KEEPIDLE), 60);
  EXPECT_EQ(pd.getint(fd, IPPROTO_TCP, TCP_KEEPINTVL), 75);  // the other keepalive values stay
  EXPECT_EQ(pd.setint(fd, IPPROTO_TCP, TCP_KEEPCNT, 128), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(pd.setint(fd, SOL_SOCKET, SO_KEEPALIVE, 1), 0);
  EXPECT_EQ(pd.getint(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(pd.setint(fd, SOL_SOCKET, SO_REUSEADDR, 1), 0);
  EXPECT_EQ(pd.getint(fd, SOL_SOCKET, SO_REUSEADDR), 1);
  const linger l{1, 0};
  EXPECT_EQ(pd->setsockopt(pd.u(), fd, SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
  linger back{};
  socklen_t len = sizeof back;
  EXPECT_EQ(pd->getsockopt(pd.u(), fd, SOL_SOCKET, SO_LINGER, &back, &len), 0);
  EXPECT_EQ(back.l_onoff, 1);
  EXPECT_EQ(back.l_linger, 0);
  errno = 0;
  EXPECT_EQ(pd.setint(fd, SOL_SOCKET, SO_BROADCAST, 1), -1);
  EXPECT_EQ(errno, ENOPROTOOPT);
  errno = 0;
  EXPECT_EQ(pd.setint(42, SOL_SOCKET, SO_REUSEADDR, 1), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST(PacketdrillAdapter, SmallerSndbufTakesEffect) {
  // SO_SNDBUF set smaller on a connection limits what a write takes at
  // once (it only ever grew before).
  Pd pd;
  const int lfd = pd.listener();
  Conn c = established(pd, lfd);
  ASSERT_EQ(pd->fcntl(pd.u(), c.fd, F_SETFL, O_RDWR | O_NONBLOCK), 0);
  ASSERT_EQ(pd.setint(c.fd, SOL_SOCKET, SO_SNDBUF, 5000), 0);
  EXPECT_EQ(pd.getint(c.fd, SOL_SOCKET, SO_SNDBUF), 10000);
  const std::string big(20000, 'x');
  EXPECT_EQ(pd.write(c.fd, big), 5000);
  EXPECT_EQ(pd.poll1(c.fd, POLLOUT), 0);
}

TEST(PacketdrillAdapter, MaxsegLimitsAnnouncedAndSentMss) {
  Pd pd;
  const int fd = pd.socket(SOCK_STREAM | SOCK_NONBLOCK);
  ASSERT_EQ(pd.setint(fd, IPPROTO_TCP, TCP_MAXSEG, 1000), 0);
  EXPECT_EQ(pd.connect(fd, kRemote, 80), -1);
  const Seg syn = pd.receive();
  ASSERT_TRUE(syn.options.mss.has_value());
  EXPECT_EQ(*syn.options.mss, 1000);  // announced: the user's cap
  pd.inject(ip_tcp(kRemote, kLocal, 80, syn.sport, 5000, syn.seq + 1, flag::syn | flag::ack, {}, kMss));
  EXPECT_EQ(pd.receive().flags, flag::ack);
  EXPECT_EQ(pd.getint(fd, IPPROTO_TCP, TCP_MAXSEG), 1000);  // the MSS in use
  ASSERT_EQ(pd.setint(fd, IPPROTO_TCP, TCP_NODELAY, 1), 0);
  EXPECT_EQ(pd.write(fd, std::string(2500, 'm')), 2500);
  EXPECT_EQ(pd.receive().payload.size(), 1000u);  // sent with: the cap, not the peer's 1460
  EXPECT_EQ(pd.receive().payload.size(), 1000u);

  // A listener's children announce it too.
  const int lfd = pd.socket();
  ASSERT_EQ(pd.bind(lfd, Ipv4Addr::any(), kLocalPort), 0);
  ASSERT_EQ(pd.setint(lfd, IPPROTO_TCP, TCP_MAXSEG, 700), 0);
  ASSERT_EQ(pd->listen(pd.u(), lfd, 4), 0);
  EXPECT_EQ(pd.getint(lfd, IPPROTO_TCP, TCP_MAXSEG), 700);
  pd.inject(in_seg(1000, 0, flag::syn, {}, kMss));
  Seg sa = pd.receive();
  while (!has(sa, flag::syn)) sa = pd.receive();
  ASSERT_TRUE(sa.options.mss.has_value());
  EXPECT_EQ(*sa.options.mss, 700);
}

TEST(PacketdrillAdapter, TcpInfoInLinuxLayout) {
  Pd pd;
  const int lfd = pd.listener();
  Conn c = established(pd, lfd);
  ASSERT_EQ(pd.setint(c.fd, IPPROTO_TCP, TCP_NODELAY, 1), 0);
  EXPECT_EQ(pd.write(c.fd, "0123456789"), 10);
  (void)pd.receive();
  pd.inject(in_seg(c.peer_nxt, c.isn + 1, flag::psh | flag::ack, "abc"));
  tcp_info ti{};
  socklen_t len = sizeof ti;
  ASSERT_EQ(pd->getsockopt(pd.u(), c.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
  EXPECT_EQ(len, sizeof ti);
  EXPECT_EQ(ti.tcpi_state, TCP_ESTABLISHED);
  EXPECT_EQ(ti.tcpi_snd_mss, kMss);
  EXPECT_EQ(ti.tcpi_rcv_mss, kMss);
  EXPECT_EQ(ti.tcpi_rto, 200'000u);  // the handshake's RTT (0 in virtual time): the 200 ms floor
  EXPECT_EQ(ti.tcpi_unacked, 1u);    // one segment in flight
  EXPECT_EQ(ti.tcpi_retransmits, 0);
  EXPECT_EQ(ti.tcpi_total_retrans, 0u);
  EXPECT_GE(ti.tcpi_snd_cwnd, 2u);                // segments, not bytes
  EXPECT_EQ(ti.tcpi_options & TCPI_OPT_SACK, 0);  // the handshake offered no options
  // Truncated to the caller's length, as Linux: the first byte is the state.
  std::uint8_t first = 0;
  len = 1;
  ASSERT_EQ(pd->getsockopt(pd.u(), c.fd, IPPROTO_TCP, TCP_INFO, &first, &len), 0);
  EXPECT_EQ(len, 1u);
  EXPECT_EQ(first, TCP_ESTABLISHED);
  len = sizeof ti;
  ASSERT_EQ(pd->getsockopt(pd.u(), lfd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
  EXPECT_EQ(ti.tcpi_state, TCP_LISTEN);
}

TEST(PacketdrillAdapter, IoctlQueueSizes) {
  Pd pd;
  const int lfd = pd.listener();
  Conn c = established(pd, lfd);
  int v = -1;
  EXPECT_EQ(pd->ioctl(pd.u(), c.fd, SIOCINQ, &v), 0);
  EXPECT_EQ(v, 0);
  pd.inject(in_seg(c.peer_nxt, c.isn + 1, flag::psh | flag::ack, "hello"));
  EXPECT_EQ(pd->ioctl(pd.u(), c.fd, FIONREAD, &v), 0);
  EXPECT_EQ(v, 5);
  ASSERT_EQ(pd.setint(c.fd, IPPROTO_TCP, TCP_CORK, 1), 0);
  EXPECT_EQ(pd.write(c.fd, "abc"), 3);  // held by the cork: queued, not sent
  EXPECT_EQ(pd->ioctl(pd.u(), c.fd, SIOCOUTQ, &v), 0);
  EXPECT_EQ(v, 3);
  EXPECT_EQ(pd->ioctl(pd.u(), c.fd, SIOCOUTQNSD, &v), 0);
  EXPECT_EQ(v, 3);
  errno = 0;
  EXPECT_EQ(pd->ioctl(pd.u(), lfd, SIOCINQ, &v), -1);  // a listener: EINVAL (tcp_ioctl)
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(pd->ioctl(pd.u(), c.fd, SIOCGIFMTU, &v), -1);
  EXPECT_EQ(errno, ENOTTY);
  EXPECT_EQ(pd->ioctl(pd.u(), 77, SIOCINQ, &v), -1);
  EXPECT_EQ(errno, EBADF);
  int on = 1;
  EXPECT_EQ(pd->ioctl(pd.u(), c.fd, FIONBIO, &on), 0);
  EXPECT_EQ(pd->fcntl(pd.u(), c.fd, F_GETFL), O_RDWR | O_NONBLOCK);
}

TEST(PacketdrillAdapter, InqControlMessage) {
  Pd pd;
  const int lfd = pd.listener();
  Conn c = established(pd, lfd);
  ASSERT_EQ(pd.setint(c.fd, IPPROTO_TCP, TCP_INQ, 1), 0);
  pd.inject(in_seg(c.peer_nxt, c.isn + 1, flag::psh | flag::ack, "abcdefgh"));
  char data[3];
  iovec iov{data, sizeof data};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  ASSERT_EQ(pd->recvmsg(pd.u(), c.fd, &m, 0), 3);
  ASSERT_EQ(m.msg_controllen, CMSG_SPACE(sizeof(int)));
  const cmsghdr* cm = CMSG_FIRSTHDR(&m);
  ASSERT_NE(cm, nullptr);
  EXPECT_EQ(cm->cmsg_level, SOL_TCP);
  EXPECT_EQ(cm->cmsg_type, TCP_CM_INQ);
  int left = -1;
  std::memcpy(&left, CMSG_DATA(cm), sizeof left);
  EXPECT_EQ(left, 5);  // bytes still to read
}

}  // namespace
