// The packetdrill adapter's reads and writes, poll and epoll, close and
// the calls it does not offer (see pd_fixture.hpp).
#include "pd_fixture.hpp"

using namespace weft;
using namespace weft::pd_test;

namespace {

TEST(PacketdrillAdapter, RecvPeekAndDontWait) {
  Pd pd;
  const int lfd = pd.listener();
  Conn c = established(pd, lfd);
  char b[16] = {};
  errno = 0;
  EXPECT_EQ(pd->recv(pd.u(), c.fd, b, sizeof b, MSG_DONTWAIT), -1);  // blocking socket, non-blocking call
  EXPECT_EQ(errno, EAGAIN);
  pd.inject(in_seg(c.peer_nxt, c.isn + 1, flag::psh | flag::ack, "abcdef"));
  EXPECT_EQ(pd->recv(pd.u(), c.fd, b, 3, MSG_PEEK), 3);
  EXPECT_EQ(std::string(b, 3), "abc");
  EXPECT_EQ(pd->recv(pd.u(), c.fd, b, sizeof b, MSG_PEEK), 6);
  EXPECT_EQ(std::string(b, 6), "abcdef");
  std::memset(b, 0, sizeof b);
  EXPECT_EQ(pd->recv(pd.u(), c.fd, b, 4, 0), 4);
  EXPECT_EQ(std::string(b, 4), "abcd");
  iovec iov[2] = {{b, 1}, {b + 8, 4}};
  EXPECT_EQ(pd->readv(pd.u(), c.fd, iov, 2), 2);
  EXPECT_EQ(b[0], 'e');
  EXPECT_EQ(b[8], 'f');
  errno = 0;
  EXPECT_EQ(pd->recv(pd.u(), c.fd, b, sizeof b, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  // End of stream reads as 0.
  pd.inject(in_seg(c.peer_nxt + 6, c.isn + 1, flag::fin | flag::ack));
  EXPECT_EQ(pd->recv(pd.u(), c.fd, b, sizeof b, 0), 0);
}

TEST(PacketdrillAdapter, NullBuffersAreEfault) {
  // write(fd, NULL, n > 0) fails with EFAULT, as on Linux, where the copy
  // from the null pointer faults after the socket's own checks; n = 0 is
  // a successful no-op. The same for send, read and recv.
  Pd pd;
  const int lfd = pd.listener();
  Conn c = established(pd, lfd);
  const auto fails = [](long r, int e) { return r == -1 && errno == e; };
  errno = 0;
  EXPECT_TRUE(fails(pd->write(pd.u(), c.fd, nullptr, 10), EFAULT));
  EXPECT_TRUE(fails(pd->send(pd.u(), c.fd, nullptr, 10, 0), EFAULT));
  EXPECT_TRUE(fails(pd->sendto(pd.u(), c.fd, nullptr, 10, 0, nullptr, 0), EFAULT));
  EXPECT_EQ(pd->write(pd.u(), c.fd, nullptr, 0), 0);
  EXPECT_TRUE(fails(pd->write(pd.u(), 42, nullptr, 10), EBADF));  // the descriptor is checked first
  iovec bad[2] = {{nullptr, 4}, {nullptr, 0}};
  EXPECT_TRUE(fails(pd->writev(pd.u(), c.fd, bad, 2), EFAULT));
  // Nothing was queued or sent by any of them.
  pd.inject(in_seg(c.peer_nxt, c.isn + 1, flag::psh | flag::ack, "abc"));
  EXPECT_EQ(pd.receive().ack, c.peer_nxt + 3);  // the delayed ACK, not data
  // Reading: EAGAIN while there is nothing, EFAULT once there is; the bytes stay.
  pd.inject(in_seg(c.peer_nxt + 3, c.isn + 1, flag::psh | flag::ack, "d"));
  EXPECT_TRUE(fails(pd->read(pd.u(), c.fd, nullptr, 10), EFAULT));
  EXPECT_TRUE(fails(pd->recv(pd.u(), c.fd, nullptr, 10, 0), EFAULT));
  EXPECT_TRUE(fails(pd->readv(pd.u(), c.fd, bad, 2), EFAULT));
  EXPECT_EQ(pd->read(pd.u(), c.fd, nullptr, 0), 0);
  char b[8] = {};
  EXPECT_EQ(pd->read(pd.u(), c.fd, b, sizeof b), 4);
  EXPECT_EQ(std::string(b, 4), "abcd");
  EXPECT_TRUE(fails(pd->recv(pd.u(), c.fd, nullptr, 10, MSG_DONTWAIT), EAGAIN));
  // At end of stream there is nothing to copy: 0.
  pd.inject(in_seg(c.peer_nxt + 4, c.isn + 1, flag::fin | flag::ack));
  EXPECT_EQ(pd->read(pd.u(), c.fd, nullptr, 10), 0);
}

TEST(PacketdrillAdapter, VectoredCallsAndWaitAll) {
  Pd pd;
  const int lfd = pd.listener();
  Conn c = established(pd, lfd);
  ASSERT_EQ(pd.setint(c.fd, IPPROTO_TCP, TCP_NODELAY, 1), 0);
  char a[] = "ab", b[] = "cde";
  iovec out[2] = {{a, 2}, {b, 3}};
  EXPECT_EQ(pd->writev(pd.u(), c.fd, out, 2), 5);
  EXPECT_EQ(pd.receive().payload, "abcde");
  msghdr m{};
  m.msg_iov = out;
  m.msg_iovlen = 2;
  EXPECT_EQ(pd->sendmsg(pd.u(), c.fd, &m, 0), 5);
  EXPECT_EQ(pd.receive().payload, "abcde");

  pd.inject(in_seg(c.peer_nxt, c.isn + 11, flag::psh | flag::ack, "0123"));
  char x[3] = {}, y[8] = {};
  iovec in[2] = {{x, 3}, {y, 8}};
  msghdr r{};
  r.msg_iov = in;
  r.msg_iovlen = 2;
  EXPECT_EQ(pd->recvmsg(pd.u(), c.fd, &r, MSG_PEEK), 4);
  EXPECT_EQ(std::string(x, 3), "012");
  EXPECT_EQ(y[0], '3');
  EXPECT_EQ(r.msg_flags, 0);

  // MSG_WAITALL: a blocking read returns only once the buffer is full.
  char w[10] = {};
  BlockingCall rd(pd, [&] { return static_cast<long>(pd->recv(pd.u(), c.fd, w, sizeof w, MSG_WAITALL)); });
  ASSERT_TRUE(rd.wait_blocked());  // 4 bytes are there, 10 are asked for
  pd.inject(in_seg(c.peer_nxt + 4, c.isn + 11, flag::psh | flag::ack, "456789"));
  EXPECT_EQ(rd.join(), 10);
  EXPECT_EQ(std::string(w, 10), "0123456789");
}

TEST(PacketdrillAdapter, PollReadiness) {
  Pd pd;
  const int lfd = pd.listener();
  EXPECT_EQ(pd.poll1(lfd, POLLIN), 0);
  const std::uint32_t isn = handshake(pd, 1000);
  EXPECT_EQ(pd.poll1(lfd, POLLIN | POLLOUT), POLLIN);
  const int fd = pd->accept(pd.u(), lfd, nullptr, nullptr);
  ASSERT_EQ(fd, 4);
  EXPECT_EQ(pd.poll1(lfd, POLLIN), 0);
  EXPECT_EQ(pd.poll1(fd, POLLIN | POLLOUT), POLLOUT);
  EXPECT_EQ(pd.poll1(99, POLLIN), POLLNVAL);

  // A blocking poll with a timeout ends when virtual time passes it.
  pd.usleep(1);
  long long start = 0;
  BlockingCall p1(pd, [&] {
    start = pd.now() + 1;
    pollfd p{fd, POLLIN, 0};
    return static_cast<long>(pd->poll(pd.u(), &p, 1, 500));
  });
  ASSERT_TRUE(p1.wait_blocked());
  pd.usleep(700'000);
  EXPECT_EQ(p1.join(), 0);
  EXPECT_EQ(p1.end_time(), start + 500'000);

  // An infinite one ends when data arrives.
  pollfd pf{fd, POLLIN, 0};
  BlockingCall p2(pd, [&] { return static_cast<long>(pd->poll(pd.u(), &pf, 1, -1)); });
  ASSERT_TRUE(p2.wait_blocked());
  pd.inject(in_seg(1001, isn + 1, flag::psh | flag::ack, "x"));
  EXPECT_EQ(p2.join(), 1);
  EXPECT_EQ(pf.revents, POLLIN);
  EXPECT_EQ(pd.poll1(fd, POLLIN | POLLOUT), POLLIN | POLLOUT);

  // The peer's FIN: readable (end of stream) and POLLRDHUP.
  pd.inject(in_seg(1002, isn + 1, flag::fin | flag::ack));
  EXPECT_EQ(pd.poll1(fd, POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
  // A reset: error and hang-up, asked for or not.
  pd.inject(in_seg(1003, isn + 1, flag::rst));
  EXPECT_EQ(pd.poll1(fd, 0) & (POLLERR | POLLHUP), POLLERR | POLLHUP);
}

TEST(PacketdrillAdapter, BlockingCallOnTheClockThreadRunsTheClock) {
  // A blocking call from the thread that moves the clock cannot wait for
  // anyone else to move it: it runs the clock itself, as the kernel's
  // timers run while a caller sleeps.
  Pd pd;
  const int lfd = pd.listener();
  Conn c = established(pd, lfd);
  const long long t = pd.now() + 1;
  pollfd p{c.fd, POLLIN, 0};
  EXPECT_EQ(pd->poll(pd.u(), &p, 1, 250), 0);
  EXPECT_EQ(pd.now(), t + 250'000);
  // A blocking connect that is never answered times out after the SYN
  // retransmissions (Linux's tcp_syn_retries: 6), each RTO twice the last.
  const int fd = pd.socket();
  const long long t_connect = pd.now() + 1;
  errno = 0;
  EXPECT_EQ(pd.connect(fd, kRemote, 80), -1);
  EXPECT_EQ(errno, ETIMEDOUT);
  const long long t_failed = pd.now();
  // A segment to a closed port is answered at once with RST: a marker
  // behind everything the connect sent.
  pd.inject(in_seg(1, 0, flag::syn, {}, std::nullopt, 5555, 9));
  std::vector<long long> syn_times;
  for (Seg s = pd.receive(); s.dport != 5555; s = pd.receive())
    if (s.dport == 80 && has(s, flag::syn)) syn_times.push_back(s.at);
  ASSERT_EQ(syn_times.size(), 7u);
  EXPECT_EQ(syn_times[0], t_connect);
  for (std::size_t i = 1; i < syn_times.size(); ++i)
    EXPECT_EQ(syn_times[i] - syn_times[i - 1], 1'000'000LL << (i - 1)) << i;
  EXPECT_GT(t_failed, syn_times.back());
}

TEST(PacketdrillAdapter, EpollLevelEdgeAndOneShot) {
  Pd pd;
  const int lfd = pd.listener();
  Conn c = established(pd, lfd);
  const int ep = pd->epoll_create(pd.u(), 1);
  ASSERT_EQ(ep, 5);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = c.fd;
  ASSERT_EQ(pd->epoll_ctl(pd.u(), ep, EPOLL_CTL_ADD, c.fd, &ev), 0);
  errno = 0;
  EXPECT_EQ(pd->epoll_ctl(pd.u(), ep, EPOLL_CTL_ADD, c.fd, &ev), -1);
  EXPECT_EQ(errno, EEXIST);
  epoll_event out[4]{};
  EXPECT_EQ(pd->epoll_wait(pd.u(), ep, out, 4, 0), 0);
  pd.inject(in_seg(c.peer_nxt, c.isn + 1, flag::psh | flag::ack, "ab"));
  // Level-triggered: reported while readable.
  ASSERT_EQ(pd->epoll_wait(pd.u(), ep, out, 4, 0), 1);
  EXPECT_EQ(out[0].events, EPOLLIN);
  EXPECT_EQ(out[0].data.fd, c.fd);
  EXPECT_EQ(pd->epoll_wait(pd.u(), ep, out, 4, 0), 1);
  // Edge-triggered: once per arrival.
  ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
  ASSERT_EQ(pd->epoll_ctl(pd.u(), ep, EPOLL_CTL_MOD, c.fd, &ev), 0);
  ASSERT_EQ(pd->epoll_wait(pd.u(), ep, out, 4, 0), 1);
  EXPECT_EQ(out[0].events, EPOLLIN | EPOLLOUT);
  EXPECT_EQ(pd->epoll_wait(pd.u(), ep, out, 4, 0), 0);
  pd.inject(in_seg(c.peer_nxt + 2, c.isn + 1, flag::psh | flag::ack, "cd"));
  ASSERT_EQ(pd->epoll_wait(pd.u(), ep, out, 4, 0), 1);
  EXPECT_EQ(out[0].events, EPOLLIN);
  EXPECT_EQ(pd->epoll_wait(pd.u(), ep, out, 4, 0), 0);
  // One-shot: once, until re-armed with EPOLL_CTL_MOD.
  ev.events = EPOLLIN | EPOLLONESHOT;
  ASSERT_EQ(pd->epoll_ctl(pd.u(), ep, EPOLL_CTL_MOD, c.fd, &ev), 0);
  EXPECT_EQ(pd->epoll_wait(pd.u(), ep, out, 4, 0), 1);
  EXPECT_EQ(pd->epoll_wait(pd.u(), ep, out, 4, 0), 0);
  ASSERT_EQ(pd->epoll_ctl(pd.u(), ep, EPOLL_CTL_MOD, c.fd, &ev), 0);
  EXPECT_EQ(pd->epoll_wait(pd.u(), ep, out, 4, 0), 1);
  // A blocking wait ends when data arrives, a timed one when time passes.
  char b[8];
  EXPECT_EQ(pd->read(pd.u(), c.fd, b, sizeof b), 4);
  ev.events = EPOLLIN;
  ASSERT_EQ(pd->epoll_ctl(pd.u(), ep, EPOLL_CTL_MOD, c.fd, &ev), 0);
  pd.usleep(1);
  long long start = 0;
  BlockingCall w1(pd, [&] {
    start = pd.now() + 1;
    return static_cast<long>(pd->epoll_wait(pd.u(), ep, out, 4, 300));
  });
  ASSERT_TRUE(w1.wait_blocked());
  pd.usleep(500'000);
  EXPECT_EQ(w1.join(), 0);
  EXPECT_EQ(w1.end_time(), start + 300'000);
  BlockingCall w2(pd, [&] { return static_cast<long>(pd->epoll_wait(pd.u(), ep, out, 4, -1)); });
  ASSERT_TRUE(w2.wait_blocked());
  pd.inject(in_seg(c.peer_nxt + 4, c.isn + 1, flag::psh | flag::ack, "e"));
  EXPECT_EQ(w2.join(), 1);
  // Errors as epoll_ctl(2) and epoll_wait(2) give them; close leaves the list.
  EXPECT_EQ(pd->epoll_ctl(pd.u(), ep, EPOLL_CTL_DEL, c.fd, nullptr), 0);
  EXPECT_EQ(pd->epoll_ctl(pd.u(), ep, EPOLL_CTL_DEL, c.fd, nullptr), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(pd->epoll_ctl(pd.u(), c.fd, EPOLL_CTL_ADD, lfd, &ev), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(pd->epoll_wait(pd.u(), ep, out, 0, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(pd->epoll_create(pd.u(), 0), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(pd.write(ep, "x"), -1);
  EXPECT_EQ(errno, ENOTSOCK);
  ASSERT_EQ(pd->epoll_ctl(pd.u(), ep, EPOLL_CTL_ADD, lfd, &ev), 0);
  EXPECT_EQ(pd->close(pd.u(), lfd), 0);
  EXPECT_EQ(pd->epoll_wait(pd.u(), ep, out, 4, 0), 0);  // the listener left the list with its close
  EXPECT_EQ(pd->epoll_ctl(pd.u(), ep, EPOLL_CTL_DEL, lfd, nullptr), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(pd->close(pd.u(), ep), 0);
}

TEST(PacketdrillAdapter, LingerZeroCloseSendsRst) {
  Pd pd;
  const int lfd = pd.listener();
  Conn c = established(pd, lfd);
  const linger l{1, 0};
  ASSERT_EQ(pd->setsockopt(pd.u(), c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
  ASSERT_EQ(pd->close(pd.u(), c.fd), 0);
  const Seg rst = pd.receive();
  EXPECT_TRUE(has(rst, flag::rst));
  EXPECT_EQ(rst.seq, c.isn + 1);
}

TEST(PacketdrillAdapter, UnsupportedCallsSayEnosys) {  // epoll and ioctl: see their own tests
  Pd pd;
  const auto enosys = [](int r) { return r == -1 && errno == ENOSYS; };
  errno = 0;
  int fds[2];
  EXPECT_TRUE(enosys(pd->pipe(pd.u(), fds)));
  EXPECT_TRUE(enosys(pd->splice(pd.u(), 3, nullptr, 4, nullptr, 10, 0)));
  EXPECT_TRUE(enosys(pd->socket(pd.u(), AF_INET, SOCK_DGRAM, 0)));
  EXPECT_TRUE(enosys(pd->socket(pd.u(), AF_INET6, SOCK_STREAM, 0)));
  errno = 0;
  EXPECT_EQ(pd->socket(pd.u(), AF_UNIX, SOCK_STREAM, 0), -1);
  EXPECT_EQ(errno, EAFNOSUPPORT);
  EXPECT_EQ(pd.socket(), 3);  // none of the failures took a number
  // The link takes IPv4 only.
  std::vector<std::uint8_t> v6(40, 0);
  v6[0] = 0x60;
  errno = 0;
  EXPECT_EQ(pd->netdev_send(pd.u(), v6.data(), v6.size()), -1);
  EXPECT_EQ(errno, EAFNOSUPPORT);
}

}  // namespace
