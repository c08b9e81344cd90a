// The host daemon and libweft-client together (daemon_fixture.hpp): the
// data path, accept, connect, close, ownership and the control protocol.
#include "daemon_fixture.hpp"

namespace weft::dtest {
namespace {

TEST_F(DaemonTest, StreamCarriesBytesBothWaysInOrder) {
  int l = tcp_listen(5000);
  int c = tcp_connect(5000);
  sockaddr_in peer{};
  socklen_t pl = sizeof peer;
  int a = weft_accept(l, reinterpret_cast<sockaddr*>(&peer), &pl);
  ASSERT_GE(a, 0) << std::strerror(errno);
  EXPECT_EQ(peer.sin_addr.s_addr, sa(kAddr, 0).sin_addr.s_addr);

  constexpr std::size_t kLen = 3 << 20;
  std::vector<std::uint8_t> out(kLen);
  for (std::size_t i = 0; i < kLen; ++i) out[i] = static_cast<std::uint8_t>(i * 7 + (i >> 11));
  std::thread writer([&] {
    std::size_t off = 0;
    while (off < kLen) {
      ssize_t n = weft_send(c, out.data() + off, kLen - off, 0);
      ASSERT_GT(n, 0) << std::strerror(errno);
      off += static_cast<std::size_t>(n);
    }
    ASSERT_EQ(weft_shutdown(c, SHUT_WR), 0);
  });
  std::vector<std::uint8_t> in;
  std::vector<std::uint8_t> buf(100000);
  for (;;) {
    ssize_t n = weft_recv(a, buf.data(), buf.size(), 0);
    ASSERT_GE(n, 0) << std::strerror(errno);
    if (n == 0) break;
    in.insert(in.end(), buf.begin(), buf.begin() + n);
  }
  writer.join();
  EXPECT_TRUE(in == out);
  // And back, after the half close.
  const char reply[] = "done";
  ASSERT_EQ(weft_send(a, reply, 4, 0), 4);
  ASSERT_EQ(weft_close(a), 0);
  char got[8] = {};
  EXPECT_EQ(weft_recv(c, got, sizeof got, MSG_WAITALL), 4);
  EXPECT_STREQ(got, "done");
  EXPECT_EQ(weft_recv(c, got, sizeof got, 0), 0);  // clean end of stream
  weft_close(c);
  weft_close(l);
}

TEST_F(DaemonTest, ListenerIsReadableExactlyWhileAConnectionWaits) {
  int l = tcp_listen(5001);
  EXPECT_EQ(poll1(l, POLLIN | POLLOUT, 200), 0) << "nothing waits, and a listener is never writable";
  int c1 = tcp_connect(5001);
  int c2 = tcp_connect(5001);
  EXPECT_EQ(poll1(l, POLLIN, 2000) & POLLIN, POLLIN);
  int a1 = weft_accept(l, nullptr, nullptr);
  ASSERT_GE(a1, 0);
  EXPECT_EQ(poll1(l, POLLIN, 0) & POLLIN, POLLIN) << "a second connection still waits";
  int a2 = weft_accept(l, nullptr, nullptr);
  ASSERT_GE(a2, 0);
  EXPECT_EQ(poll1(l, POLLIN, 200), 0);
  int fl = ::fcntl(l, F_GETFL);
  ::fcntl(l, F_SETFL, fl | O_NONBLOCK);
  EXPECT_EQ(weft_accept(l, nullptr, nullptr), -1);
  EXPECT_EQ(errno, EAGAIN);
  // Recv-Q of a listener counts waiting connections, as Linux's; Send-Q is
  // 0 as net-tools shows it (the backlog is a field of its own).
  int c3 = tcp_connect(5001);
  EXPECT_TRUE(eventually([&] {
    auto s = sockets_where([](auto& j) { return j["state"] == "LISTEN" && j["local"]["port"] == 5001; });
    return s.size() == 1 && s[0]["recv_q"] == 1 && s[0]["send_q"] == 0 && s[0]["backlog"] == 16;
  }));
  for (int fd : {c1, c2, c3, a1, a2, l}) weft_close(fd);
}

TEST_F(DaemonTest, NonBlockingConnectBecomesWritableOnlyWhenTheHandshakeEnds) {
  // Refused: writable at once with SO_ERROR ECONNREFUSED.
  int s = tcp_socket(true);
  auto closed = sa(kAddr, 5999);
  ASSERT_EQ(weft_connect(s, reinterpret_cast<sockaddr*>(&closed), sizeof closed), -1);
  EXPECT_EQ(errno, EINPROGRESS);
  EXPECT_NE(poll1(s, POLLOUT, 2000) & POLLOUT, 0);
  int err = -1;
  socklen_t el = sizeof err;
  ASSERT_EQ(weft_getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el), 0);
  EXPECT_EQ(err, ECONNREFUSED);
  weft_close(s);

  // Nobody answers: not writable while the SYN is retried; then ETIMEDOUT.
  int t = tcp_socket(true);
  int one = 1;
  ASSERT_EQ(weft_setsockopt(t, IPPROTO_TCP, TCP_SYNCNT, &one, sizeof one), 0);
  auto nobody = sa("192.0.2.99", 80);
  ASSERT_EQ(weft_connect(t, reinterpret_cast<sockaddr*>(&nobody), sizeof nobody), -1);
  EXPECT_EQ(errno, EINPROGRESS);
  EXPECT_EQ(poll1(t, POLLOUT, 500), 0) << "writable before the handshake completed";
  char x = 1;
  EXPECT_EQ(weft_send(t, &x, 1, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_NE(poll1(t, POLLOUT, 10000) & POLLOUT, 0);
  ASSERT_EQ(weft_getsockopt(t, SOL_SOCKET, SO_ERROR, &err, &el), 0);
  EXPECT_EQ(err, ETIMEDOUT);
  weft_close(t);

  // Succeeds: writable, SO_ERROR 0.
  int l = tcp_listen(5002);
  int u = tcp_socket(true);
  auto ok = sa(kAddr, 5002);
  ASSERT_EQ(weft_connect(u, reinterpret_cast<sockaddr*>(&ok), sizeof ok), -1);
  EXPECT_EQ(errno, EINPROGRESS);
  EXPECT_NE(poll1(u, POLLOUT, 2000) & POLLOUT, 0);
  ASSERT_EQ(weft_getsockopt(u, SOL_SOCKET, SO_ERROR, &err, &el), 0);
  EXPECT_EQ(err, 0);
  EXPECT_EQ(weft_send(u, "hi", 2, 0), 2);
  weft_close(u);
  weft_close(l);
}

TEST_F(DaemonTest, BlockingConnectReportsRefusedAndTimedOut) {
  int s = tcp_socket();
  auto closed = sa(kAddr, 5998);
  EXPECT_EQ(weft_connect(s, reinterpret_cast<sockaddr*>(&closed), sizeof closed), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  weft_close(s);
  int t = tcp_socket();
  int one = 1;
  ASSERT_EQ(weft_setsockopt(t, IPPROTO_TCP, TCP_SYNCNT, &one, sizeof one), 0);
  auto nobody = sa("192.0.2.99", 81);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(weft_connect(t, reinterpret_cast<sockaddr*>(&nobody), sizeof nobody), -1);
  EXPECT_EQ(errno, ETIMEDOUT);
  // One SYN retry: 1 s + 2 s of RTO (RFC 6298 initial RTO 1 s), give or take.
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 2s);
  weft_close(t);
}

TEST_F(DaemonTest, ResetIsECONNRESETAndDistinctFromEndOfStream) {
  int l = tcp_listen(5003);
  int c = tcp_connect(5003);
  int a = weft_accept(l, nullptr, nullptr);
  ASSERT_GE(a, 0);
  linger lg{1, 0};
  ASSERT_EQ(weft_setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  weft_close(c);  // linger 0: RST
  char b[16];
  EXPECT_EQ(weft_recv(a, b, sizeof b, 0), -1);
  EXPECT_EQ(errno, ECONNRESET);
  EXPECT_EQ(weft_recv(a, b, sizeof b, 0), 0) << "reported once, then end of stream";
  EXPECT_EQ(weft_send(a, "x", 1, 0), -1);
  EXPECT_EQ(errno, EPIPE);
  weft_close(a);

  int c2 = tcp_connect(5003);
  int a2 = weft_accept(l, nullptr, nullptr);
  ASSERT_GE(a2, 0);
  weft_close(c2);  // graceful: FIN
  EXPECT_EQ(weft_recv(a2, b, sizeof b, 0), 0);
  weft_close(a2);
  weft_close(l);
}

TEST_F(DaemonTest, CloseWithUnreadDataResets) {
  int l = tcp_listen(5004);
  int c = tcp_connect(5004);
  int a = weft_accept(l, nullptr, nullptr);
  ASSERT_GE(a, 0);
  ASSERT_EQ(weft_send(c, "unread", 6, 0), 6);
  ASSERT_TRUE(eventually([&] { return poll1(a, POLLIN, 0) & POLLIN; }));
  weft_close(a);  // unread bytes: RST, as Linux
  char b[16];
  EXPECT_EQ(weft_recv(c, b, sizeof b, 0), -1);
  EXPECT_EQ(errno, ECONNRESET);
  weft_close(c);
  weft_close(l);
}

TEST_F(DaemonTest, QueuesCountBytesInTheSocketpairs) {
  int l = tcp_listen(5005);
  int c = tcp_connect(5005);
  int a = weft_accept(l, nullptr, nullptr);
  ASSERT_GE(a, 0);
  std::vector<char> data(100000, 'q');
  ASSERT_EQ(weft_send(c, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  // The reader stalls: every byte shows in its Recv-Q, wherever it sits.
  EXPECT_TRUE(eventually([&] {
    auto s = sockets_where([&](auto& j) { return j["state"] == "ESTABLISHED" && j["local"]["port"] == 5005; });
    return s.size() == 1 && s[0]["recv_q"] == 100000;
  })) << "accepted side's Recv-Q";
  // Fill everything: the sender's Send-Q then holds what the peer's window
  // and the pairs could not take.
  int fl = ::fcntl(c, F_GETFL);
  ::fcntl(c, F_SETFL, fl | O_NONBLOCK);
  std::size_t total = data.size();
  for (;;) {
    ssize_t n = weft_send(c, data.data(), data.size(), 0);
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN);
      if (poll1(c, POLLOUT, 300) == 0) break;
      continue;
    }
    total += static_cast<std::size_t>(n);
  }
  std::size_t rq = 0, sq = 0;
  EXPECT_TRUE(eventually([&] {
    auto r = sockets_where([&](auto& j) { return j["state"] == "ESTABLISHED" && j["local"]["port"] == 5005; });
    auto s = sockets_where(
        [&](auto& j) { return j["state"] == "ESTABLISHED" && !j["remote"].is_null() && j["remote"]["port"] == 5005; });
    if (r.size() != 1 || s.size() != 1) return false;
    rq = r[0]["recv_q"];
    sq = s[0]["send_q"];
    return rq + sq == total;
  })) << "Recv-Q "
      << rq << " + Send-Q " << sq << " != " << total << " bytes written";
  EXPECT_GT(sq, 0u);
  EXPECT_GT(rq, 100000u);
  for (int fd : {c, a, l}) weft_close(fd);
}

// A process that never reads: its connection backs up to the sender, and
// only that one; another transfer through the same daemon goes on.
TEST_F(DaemonTest, AReaderThatNeverReadsHarmsNoOneElse) {
  int l = tcp_listen(5012);
  int stalled_tx = tcp_connect(5012);
  int stalled_rx = weft_accept(l, nullptr, nullptr);
  ASSERT_GE(stalled_rx, 0);
  int fl = ::fcntl(stalled_tx, F_GETFL);
  ::fcntl(stalled_tx, F_SETFL, fl | O_NONBLOCK);
  std::vector<char> junk(65536, 'j');
  while (weft_send(stalled_tx, junk.data(), junk.size(), 0) > 0 || poll1(stalled_tx, POLLOUT, 200) != 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
  int c = tcp_connect(5012);
  int a = weft_accept(l, nullptr, nullptr);
  ASSERT_GE(a, 0);
  constexpr std::size_t kLen = 4 << 20;
  std::thread writer([&] {
    std::vector<char> out(kLen, 'w');
    std::size_t off = 0;
    while (off < kLen) {
      ssize_t n = weft_send(c, out.data() + off, kLen - off, 0);
      ASSERT_GT(n, 0);
      off += static_cast<std::size_t>(n);
    }
    weft_shutdown(c, SHUT_WR);
  });
  std::size_t got = 0;
  std::vector<char> buf(65536);
  for (;;) {
    ssize_t n = weft_recv(a, buf.data(), buf.size(), 0);
    ASSERT_GE(n, 0);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  writer.join();
  EXPECT_EQ(got, kLen);
  for (int x : {stalled_tx, stalled_rx, c, a, l}) weft_close(x);
}

TEST_F(DaemonTest, NetstatShowsStatesAndOwners) {
  auto opens = counter("tcp", "active_opens"), passive = counter("tcp", "passive_opens");
  int l = tcp_listen(5006);
  int c = tcp_connect(5006);
  EXPECT_EQ(counter("tcp", "active_opens"), opens + 1);
  EXPECT_EQ(counter("tcp", "passive_opens"), passive + 1);
  int a = weft_accept(l, nullptr, nullptr);
  ASSERT_GE(a, 0);
  auto state_of = [&](bool local_side) {
    auto s = sockets_where([&](auto& j) {
      return j["state"] != "LISTEN" &&
             (local_side ? j["local"]["port"] == 5006 : (!j["remote"].is_null() && j["remote"]["port"] == 5006));
    });
    return s.size() == 1 ? s[0]["state"].get<std::string>() : std::string("?");
  };
  EXPECT_EQ(state_of(true), "ESTABLISHED");
  EXPECT_EQ(state_of(false), "ESTABLISHED");
  auto mine = sockets_where([&](auto& j) { return has_port(j, 5006); });
  ASSERT_EQ(mine.size(), 3u);
  for (auto& s : mine) {
    ASSERT_FALSE(s["owner"].is_null());
    EXPECT_EQ(s["owner"]["pid"], ::getpid());
    EXPECT_EQ(s["owner"]["uid"], ::getuid());
    // As net-tools names it: argv[0], cut to its base name when absolute.
    std::ifstream self("/proc/self/cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(self)), std::istreambuf_iterator<char>());
    EXPECT_EQ(s["owner"]["program"], netstat_program_name(cmdline));
    EXPECT_NE(s["owner"]["program"], "");
  }
  // c shuts down writing: c FIN_WAIT2, a CLOSE_WAIT.
  ASSERT_EQ(weft_shutdown(c, SHUT_WR), 0);
  EXPECT_TRUE(eventually([&] { return state_of(false) == "FIN_WAIT2" && state_of(true) == "CLOSE_WAIT"; }));
  // a closes: c TIME_WAIT, no owner once closed, as the kernel shows it.
  weft_close(a);
  weft_close(c);
  EXPECT_TRUE(eventually([&] {
    auto s = sockets_where([&](auto& j) { return j["state"] == "TIME_WAIT" && has_port(j, 5006); });
    return s.size() == 1 && s[0]["owner"].is_null();
  }));
  weft_close(l);
}

TEST_F(DaemonTest, BindErrorsAreThePosixOnes) {
  int a = tcp_socket();
  auto p = sa(kAddr, 5007);
  ASSERT_EQ(weft_bind(a, reinterpret_cast<sockaddr*>(&p), sizeof p), 0);
  int b = tcp_socket();
  EXPECT_EQ(weft_bind(b, reinterpret_cast<sockaddr*>(&p), sizeof p), -1);
  EXPECT_EQ(errno, EADDRINUSE);
  auto other = sa("192.0.2.77", 5007);
  EXPECT_EQ(weft_bind(b, reinterpret_cast<sockaddr*>(&other), sizeof other), -1);
  EXPECT_EQ(errno, EADDRNOTAVAIL);
  // SO_REUSEADDR on both does not let a second socket share a listener's
  // port (regression: `weft cat -l` twice on one port both listened).
  int one = 1;
  int l1 = tcp_socket(), l2 = tcp_socket();
  auto lp = sa("0.0.0.0", 5013);
  ASSERT_EQ(weft_setsockopt(l1, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
  ASSERT_EQ(weft_setsockopt(l2, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
  ASSERT_EQ(weft_bind(l1, reinterpret_cast<sockaddr*>(&lp), sizeof lp), 0);
  ASSERT_EQ(weft_listen(l1, 4), 0);
  EXPECT_EQ(weft_bind(l2, reinterpret_cast<sockaddr*>(&lp), sizeof lp), -1);
  EXPECT_EQ(errno, EADDRINUSE);
  weft_close(l1);
  weft_close(l2);
  EXPECT_EQ(weft_bind(12345, reinterpret_cast<sockaddr*>(&p), sizeof p), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(weft_bind(0, reinterpret_cast<sockaddr*>(&p), sizeof p), -1);
  EXPECT_EQ(errno, ENOTSOCK);
  EXPECT_EQ(weft_socket(AF_INET6, SOCK_STREAM, 0), -1);
  EXPECT_EQ(errno, EAFNOSUPPORT);
  weft_close(a);
  weft_close(b);
}

// A forked child running as another uid: what the daemon believes is what
// SO_PEERCRED says, whatever the process claims.
TEST_F(DaemonTest, PortsBelow1024NeedUidZero) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to run a child as another uid";
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  auto child = std::make_unique<Child>(::fork());
  if (child->pid() == 0) {
    ::close(pipefd[0]);
    int results[3] = {-1, -1, -1};
    if (::setgid(65534) == 0 && ::setuid(65534) == 0) {
      int s = weft_socket(AF_INET, SOCK_STREAM, 0);
      auto p80 = sa(kAddr, 80);
      results[0] = weft_bind(s, reinterpret_cast<sockaddr*>(&p80), sizeof p80) == 0 ? 0 : errno;
      auto p8080 = sa(kAddr, 5080);
      results[1] = weft_bind(s, reinterpret_cast<sockaddr*>(&p8080), sizeof p8080) == 0 ? 0 : errno;
      int u = weft_socket(AF_INET, SOCK_DGRAM, 0);
      auto p53 = sa(kAddr, 53);
      results[2] = weft_bind(u, reinterpret_cast<sockaddr*>(&p53), sizeof p53) == 0 ? 0 : errno;
    }
    (void)!::write(pipefd[1], results, sizeof results);
    ::_exit(0);
  }
  ::close(pipefd[1]);
  int results[3];
  ASSERT_EQ(::read(pipefd[0], results, sizeof results), static_cast<ssize_t>(sizeof results));
  ::close(pipefd[0]);
  child->wait();
  EXPECT_EQ(results[0], EACCES);
  EXPECT_EQ(results[1], 0);
  EXPECT_EQ(results[2], EACCES);
  // A uid given to --allow-privileged-uid may.
  child = std::make_unique<Child>(::fork());
  if (child->pid() == 0) {
    int code = 2;
    if (::setgid(65533) == 0 && ::setuid(65533) == 0) {
      int s = weft_socket(AF_INET, SOCK_STREAM, 0);
      auto p81 = sa(kAddr, 81);
      code = weft_bind(s, reinterpret_cast<sockaddr*>(&p81), sizeof p81) == 0 ? 0 : 1;
    }
    ::_exit(code);
  }
  int status = child->wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "uid 65533 could not bind port 81";
  // And root may.
  int s = tcp_socket();
  auto p80 = sa(kAddr, 80);
  EXPECT_EQ(weft_bind(s, reinterpret_cast<sockaddr*>(&p80), sizeof p80), 0) << std::strerror(errno);
  weft_close(s);
}

// kill -9 of a client: its connections end at the peer (FIN when it had
// read everything, RST when it had not) and leave netstat at once.
TEST_F(DaemonTest, ADeadProcessLosesItsSockets) {
  auto orphaned = counter("daemon", "orphaned_closes");
  auto resets = counter("daemon", "resets_on_close");
  int l = tcp_listen(5008);
  for (bool unread : {false, true}) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    Child child(::fork());
    const pid_t pid = child.pid();
    if (pid == 0) {
      int c = weft_socket(AF_INET, SOCK_STREAM, 0);
      auto p = sa(kAddr, 5008);
      if (weft_connect(c, reinterpret_cast<sockaddr*>(&p), sizeof p) != 0) ::_exit(1);
      weft_send(c, "hello", 5, 0);
      char x = 1;
      (void)!::write(ready[1], &x, 1);
      ::pause();
      ::_exit(0);
    }
    ::close(ready[1]);
    char x;
    ASSERT_EQ(::read(ready[0], &x, 1), 1);
    ::close(ready[0]);
    int a = weft_accept(l, nullptr, nullptr);
    ASSERT_GE(a, 0);
    char b[8];
    ASSERT_EQ(weft_recv(a, b, 5, MSG_WAITALL), 5);
    if (unread) {
      ASSERT_EQ(weft_send(a, "unread", 6, 0), 6);
      ASSERT_TRUE(eventually([&] {
        auto s = sockets_where([&](auto& j) { return !j["owner"].is_null() && j["owner"]["pid"] == pid; });
        return s.size() == 1 && s[0]["recv_q"] == 6;
      }));
    }
    auto t0 = std::chrono::steady_clock::now();
    ::kill(pid, SIGKILL);
    child.wait();
    ssize_t n = weft_recv(a, b, sizeof b, 0);
    if (unread) {
      EXPECT_EQ(n, -1);
      EXPECT_EQ(errno, ECONNRESET);
    } else {
      EXPECT_EQ(n, 0);
    }
    EXPECT_TRUE(eventually(
        [&] {
          auto s = sockets_where([&](auto& j) {
            return j["state"] == "ESTABLISHED" && (!j["owner"].is_null() && j["owner"]["pid"] == pid);
          });
          return s.empty();
        },
        1000ms));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    weft_close(a);
  }
  EXPECT_EQ(counter("daemon", "orphaned_closes"), orphaned + 2) << "one socket per dead child";
  EXPECT_EQ(counter("daemon", "resets_on_close"), resets + 1) << "only the child with unread data resets";
  weft_close(l);
}

TEST_F(DaemonTest, GarbageOnTheControlSocketGetsEPROTOAndAClosedConnection) {
  auto errors_before = counter("daemon", "protocol_errors");
  int l = tcp_listen(5009);
  int c = tcp_connect(5009);
  int a = weft_accept(l, nullptr, nullptr);
  for (std::string junk : {std::string("GET / HTTP/1.0\r\n\r\n"), std::string(40, '\xff'), std::string(4096, 'x')}) {
    int fd = raw_control();
    ASSERT_EQ(::send(fd, junk.data(), junk.size(), 0), static_cast<ssize_t>(junk.size()));
    control::Response r;
    ASSERT_EQ(::recv(fd, &r, sizeof r, 0), static_cast<ssize_t>(sizeof r));
    EXPECT_EQ(r.err, EPROTO);
    char more;
    EXPECT_EQ(::recv(fd, &more, 1, 0), 0) << "the daemon closes the connection";
    ::close(fd);
  }
  // A well-formed request before hello is refused too.
  int fd = raw_control();
  control::Request rq;
  rq.op = control::Op::socket;
  ASSERT_EQ(::send(fd, &rq, sizeof rq, 0), static_cast<ssize_t>(sizeof rq));
  control::Response r;
  ASSERT_EQ(::recv(fd, &r, sizeof r, 0), static_cast<ssize_t>(sizeof r));
  EXPECT_EQ(r.err, EPROTO);
  ::close(fd);
  EXPECT_EQ(counter("daemon", "protocol_errors"), errors_before + 4);
  // Others are unharmed.
  ASSERT_EQ(weft_send(c, "still", 5, 0), 5);
  char b[8];
  EXPECT_EQ(weft_recv(a, b, 5, MSG_WAITALL), 5);
  for (int x : {c, a, l}) weft_close(x);
}

TEST_F(DaemonTest, AnotherProtocolVersionIsRefusedClearly) {
  int fd = raw_control();
  control::Request rq;
  rq.op = control::Op::hello;
  rq.arg0 = 999;
  ASSERT_EQ(::send(fd, &rq, sizeof rq, 0), static_cast<ssize_t>(sizeof rq));
  control::Response r;
  ASSERT_EQ(::recv(fd, &r, sizeof r, 0), static_cast<ssize_t>(sizeof r));
  EXPECT_EQ(r.err, EPROTONOSUPPORT);
  EXPECT_EQ(r.value, static_cast<std::int64_t>(control::kVersion));
  ::close(fd);
}

TEST_F(DaemonTest, CppSocketApi) {
  using client::Socket;
  auto l = Socket::open(Socket::Type::tcp);
  ASSERT_TRUE(l.ok());
  Endpoint here{*Ipv4Addr::parse(kAddr), Port{5011}};
  ASSERT_TRUE(l.value().bind(here).ok());
  ASSERT_TRUE(l.value().listen(4).ok());
  auto c = Socket::open(Socket::Type::tcp);
  ASSERT_TRUE(c.value().connect(here).ok());
  Endpoint peer;
  auto a = l.value().accept(&peer);
  ASSERT_TRUE(a.ok()) << errc_message(a.error());
  EXPECT_EQ(peer, c.value().local_endpoint().value());
  EXPECT_EQ(a.value().remote_endpoint().value(), peer);
  const std::uint8_t msg[] = {1, 2, 3};
  EXPECT_EQ(c.value().send(msg).value(), 3u);
  std::uint8_t got[8];
  EXPECT_EQ(a.value().recv(std::span<std::uint8_t>(got, 3), MSG_WAITALL).value(), 3u);
  c.value().reset();
  EXPECT_EQ(a.value().recv(got).value(), 0u);  // end of stream
  auto d = Socket::open(Socket::Type::tcp);
  auto r = d.value().connect(Endpoint{*Ipv4Addr::parse(kAddr), Port{5997}});
  EXPECT_EQ(r.error(), std::errc::connection_refused);
}

TEST_F(DaemonTest, UdpSendtoRecvfromAndRefused) {
  int a = weft_socket(AF_INET, SOCK_DGRAM, 0);
  int b = weft_socket(AF_INET, SOCK_DGRAM, 0);
  auto pa = sa(kAddr, 6000), pb = sa(kAddr, 6001);
  ASSERT_EQ(weft_bind(a, reinterpret_cast<sockaddr*>(&pa), sizeof pa), 0);
  ASSERT_EQ(weft_bind(b, reinterpret_cast<sockaddr*>(&pb), sizeof pb), 0);
  for (int i = 0; i < 5; ++i) {
    std::string m = "datagram " + std::to_string(i);
    ASSERT_EQ(weft_sendto(a, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&pb), sizeof pb),
              static_cast<ssize_t>(m.size()));
  }
  for (int i = 0; i < 5; ++i) {
    char buf[64] = {};
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    ssize_t n = weft_recvfrom(b, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
    ASSERT_GT(n, 0) << std::strerror(errno);
    EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), "datagram " + std::to_string(i));
    EXPECT_EQ(ntohs(from.sin_port), 6000);
  }
  // A short buffer truncates the datagram and discards the rest; with
  // MSG_TRUNC the call returns its real length, as UDP on Linux does.
  for (int flags : {0, static_cast<int>(MSG_TRUNC)}) {
    std::string m(300, 'q');
    ASSERT_EQ(weft_sendto(a, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&pb), sizeof pb), 300);
    char small[10];
    EXPECT_EQ(weft_recvfrom(b, small, sizeof small, flags, nullptr, nullptr), flags ? 300 : 10);
    EXPECT_EQ(std::string(small, sizeof small), std::string(10, 'q'));
  }
  ASSERT_EQ(weft_sendto(a, "next", 4, 0, reinterpret_cast<sockaddr*>(&pb), sizeof pb), 4);
  char nb[16];
  EXPECT_EQ(weft_recvfrom(b, nb, sizeof nb, 0, nullptr, nullptr), 4) << "the truncated rest was discarded";
  std::vector<char> big(70000);
  EXPECT_EQ(weft_sendto(a, big.data(), big.size(), 0, reinterpret_cast<sockaddr*>(&pb), sizeof pb), -1);
  EXPECT_EQ(errno, EMSGSIZE);
  EXPECT_EQ(weft_send(a, "x", 1, 0), -1);
  EXPECT_EQ(errno, EDESTADDRREQ);
  // Connected to a port nobody holds: the ICMP port unreachable comes back
  // as ECONNREFUSED on the next receive.
  auto closed = sa(kAddr, 6999);
  ASSERT_EQ(weft_connect(a, reinterpret_cast<sockaddr*>(&closed), sizeof closed), 0);
  ASSERT_EQ(weft_send(a, "x", 1, 0), 1);
  char buf[8];
  EXPECT_EQ(weft_recv(a, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  auto u = sockets_where([](auto& j) { return j["proto"] == "udp" && j["local"]["port"] == 6001; });
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0]["owner"]["pid"], ::getpid());
  weft_close(a);
  weft_close(b);
}

TEST_F(DaemonTest, PingSocketGetsEchoReplies) {
  int s = weft_socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
  ASSERT_GE(s, 0);
  auto self = sa(kAddr, 0);
  std::uint8_t req[8 + 32] = {8, 0, 0, 0, 0, 0, 0, 42};
  for (std::size_t i = 8; i < sizeof req; ++i) req[i] = static_cast<std::uint8_t>(i * 7);
  ASSERT_EQ(weft_sendto(s, req, sizeof req, 0, reinterpret_cast<sockaddr*>(&self), sizeof self),
            static_cast<ssize_t>(sizeof req));
  std::uint8_t rep[128];
  sockaddr_in from{};
  socklen_t fl = sizeof from;
  ssize_t n = weft_recvfrom(s, rep, sizeof rep, 0, reinterpret_cast<sockaddr*>(&from), &fl);
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof req)) << std::strerror(errno);
  EXPECT_EQ(rep[0], 0);  // echo reply
  EXPECT_EQ(rep[7], 42);
  // RFC 792: the reply carries the request's data back unchanged.
  EXPECT_EQ(std::vector<std::uint8_t>(rep + 8, rep + n), std::vector<std::uint8_t>(req + 8, req + sizeof req));
  EXPECT_EQ(from.sin_addr.s_addr, self.sin_addr.s_addr);
  EXPECT_GT(weft_last_ttl(s), 0);
  weft_close(s);
}

// SIGTERM: the daemon resets its connections and ends its clients' sockets;
// their calls fail at once with ECONNRESET or ENETDOWN, never hang.
TEST_F(DaemonTest, SigtermEndsEveryClientCallWithAnError) {
  int l = tcp_listen(5010);
  int c = tcp_connect(5010);
  int a = weft_accept(l, nullptr, nullptr);
  ASSERT_GE(a, 0);
  timeval tv{5, 0};
  ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::pthread_kill(g_thread.native_handle(), SIGTERM);
  g_thread.join();
  char b[8];
  EXPECT_EQ(weft_recv(c, b, sizeof b, 0), -1);
  EXPECT_TRUE(errno == ECONNRESET || errno == ENETDOWN) << std::strerror(errno);
  EXPECT_EQ(weft_send(a, "x", 1, 0), -1);
  EXPECT_TRUE(errno == ECONNRESET || errno == ENETDOWN || errno == EPIPE) << std::strerror(errno);
  EXPECT_EQ(weft_socket(AF_INET, SOCK_STREAM, 0), -1);
  EXPECT_EQ(errno, ENETDOWN);
  EXPECT_NE(std::string(weft_last_detail()), "");
  struct stat st {};
  EXPECT_NE(::stat(control::control_socket_path("t")->c_str(), &st), 0) << "the control socket is removed";
  for (int x : {c, a, l}) weft_close(x);
}

// WEFT_TCP_ECN (client/weft.h) makes a connect request ECN (RFC 3168); the
// host's own listener accepts it, so both ends negotiate. Once connected,
// the option is refused with EISCONN.
TEST_F(DaemonTest, WeftTcpEcnRequestsEcnOnConnect) {
  const auto before = counter("tcp", "ecn_negotiated");
  int l = tcp_listen(5011);
  int c = tcp_socket();
  int one = 1;
  ASSERT_EQ(weft_setsockopt(c, IPPROTO_TCP, WEFT_TCP_ECN, &one, sizeof one), 0) << std::strerror(errno);
  auto a = sa(kAddr, 5011);
  ASSERT_EQ(weft_connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  int acc = weft_accept(l, nullptr, nullptr);
  ASSERT_GE(acc, 0);
  EXPECT_EQ(counter("tcp", "ecn_negotiated"), before + 2) << "the active and the passive end";
  EXPECT_EQ(weft_setsockopt(c, IPPROTO_TCP, WEFT_TCP_ECN, &one, sizeof one), -1);
  EXPECT_EQ(errno, EISCONN);
  // Without the option (and without --ecn) a connect does not request it.
  int d = tcp_connect(5011);
  int acc2 = weft_accept(l, nullptr, nullptr);
  EXPECT_EQ(counter("tcp", "ecn_negotiated"), before + 2);
  for (int x : {c, acc, d, acc2, l}) weft_close(x);
}

// connect() to an address with no route (outside the host's prefix, no
// gateway) fails at once with ENETUNREACH through the C API.
TEST_F(DaemonTest, ConnectWithoutARouteIsEnetunreachAtOnce) {
  int c = tcp_socket();
  auto far = sa("203.0.113.1", 80);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(weft_connect(c, reinterpret_cast<sockaddr*>(&far), sizeof far), -1);
  EXPECT_EQ(errno, ENETUNREACH) << std::strerror(errno);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "not a timeout";
  weft_close(c);
}

}  // namespace
}  // namespace weft::dtest
