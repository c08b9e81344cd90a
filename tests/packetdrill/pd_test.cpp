// The packetdrill adapter as packetdrill loads it (see pd_fixture.hpp):
// the table, exports, the virtual clock, opens and blocking calls, flags.
#include "pd_fixture.hpp"

extern "C" int pd_layout_members(void);  // pd_layout.c: the C view of the table

using namespace weft;
using namespace weft::pd_test;

namespace {

TEST(PacketdrillAdapter, TableHasTheToolsLayout) {
  EXPECT_EQ(pd_layout_members(), 33);  // and pd_layout.c checked each offset at compile time
  EXPECT_EQ(sizeof(packetdrill_interface), 33 * sizeof(void*));
}

TEST(PacketdrillAdapter, ExportsOnlyTheInitFunction) {
  Pd pd;
  EXPECT_NE(dlsym(pd.handle(), "packetdrill_interface_init"), nullptr);
  // weft's own symbols (linked in statically) are hidden.
  EXPECT_EQ(dlsym(pd.handle(), "_ZN4weft4wire17internet_checksumESt4spanIKhLm18446744073709551615EE"), nullptr);
  EXPECT_EQ(dlsym(pd.handle(), "_ZN4weft5StackC1ENS_11StackConfigE"), nullptr);
}

TEST(PacketdrillAdapter, ClockMovesOnlyWhenToldTo) {
  Pd pd("local_ip=192.168.0.1 start_usecs=5000000");
  const long long t0 = pd.now();
  EXPECT_EQ(t0, 5'000'000);
  EXPECT_EQ(pd.now(), t0 + 1);  // each reading: +1 us
  pd.usleep(2500);
  EXPECT_EQ(pd.now(), t0 + 2 + 2500);
}

TEST(PacketdrillAdapter, PassiveOpenDataAckAndClose) {
  Pd pd;
  const int lfd = pd.socket();
  ASSERT_EQ(lfd, 3);
  ASSERT_EQ(pd.setint(lfd, SOL_SOCKET, SO_REUSEADDR, 1), 0);
  ASSERT_EQ(pd.bind(lfd, kLocal, kLocalPort), 0);
  ASSERT_EQ(pd->listen(pd.u(), lfd, 1), 0);

  // Blocking accept in the system-call thread.
  sockaddr_in peer{};
  socklen_t peer_len = sizeof peer;
  BlockingCall acc(pd, [&] { return pd->accept(pd.u(), lfd, reinterpret_cast<sockaddr*>(&peer), &peer_len); });
  ASSERT_TRUE(acc.wait_blocked());

  pd.usleep(1000);
  const long long t_syn = pd.now() + 1;
  pd.inject(in_seg(1000, 0, flag::syn, {}, kMss));
  const Seg sa = pd.receive();
  EXPECT_EQ(sa.src, kLocal);
  EXPECT_EQ(sa.dst, kRemote);
  EXPECT_EQ(sa.sport, kLocalPort);
  EXPECT_EQ(sa.dport, kRemotePort);
  EXPECT_EQ(sa.flags, flag::syn | flag::ack);
  EXPECT_EQ(sa.ack, 1001u);
  ASSERT_TRUE(sa.options.mss.has_value());
  EXPECT_EQ(*sa.options.mss, kMss);
  EXPECT_EQ(sa.at, t_syn);  // answered at once, in virtual time
  EXPECT_FALSE(acc.done());
  const std::uint32_t isn = sa.seq;

  pd.usleep(10'000);
  const long long t_ack = pd.now() + 1;
  pd.inject(in_seg(1001, isn + 1, flag::ack));
  EXPECT_EQ(acc.join(), 4);
  EXPECT_EQ(acc.end_time(), t_ack);  // accept returned when the ACK arrived
  EXPECT_EQ(peer_len, sizeof(sockaddr_in));
  EXPECT_EQ(ntohl(peer.sin_addr.s_addr), kRemote.value());
  EXPECT_EQ(ntohs(peer.sin_port), kRemotePort);
  const int fd = 4;
  EXPECT_EQ(pd.getint(fd, IPPROTO_TCP, TCP_MAXSEG), kMss);

  // Data in: a blocked read gets it; the ACK goes at once (the
  // connection's first data: quick-ACK, as on Linux).
  char buf[100] = {};
  BlockingCall rd(pd, [&] { return static_cast<long>(pd->read(pd.u(), fd, buf, sizeof buf)); });
  ASSERT_TRUE(rd.wait_blocked());
  pd.usleep(5000);
  const long long t_data = pd.now() + 1;
  pd.inject(in_seg(1001, isn + 1, flag::psh | flag::ack, "hello"));
  EXPECT_EQ(rd.join(), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_EQ(rd.end_time(), t_data);
  const Seg dack = pd.receive();
  EXPECT_EQ(dack.flags, flag::ack);
  EXPECT_TRUE(dack.payload.empty());
  EXPECT_EQ(dack.seq, isn + 1);
  EXPECT_EQ(dack.ack, 1006u);
  EXPECT_EQ(dack.at, t_data);

  // Data out: the write is sent at once.
  pd.usleep(1000);
  const long long t_write = pd.now() + 1;
  EXPECT_EQ(pd.write(fd, "world!"), 6);
  const Seg out = pd.receive();
  EXPECT_TRUE(has(out, flag::ack));
  EXPECT_EQ(out.payload, "world!");
  EXPECT_EQ(out.seq, isn + 1);
  EXPECT_EQ(out.ack, 1006u);
  EXPECT_EQ(out.at, t_write);
  pd.inject(in_seg(1006, isn + 7, flag::ack));

  // Close: FIN out, ACK in, FIN in, ACK out.
  pd.usleep(1000);
  const long long t_close = pd.now() + 1;
  EXPECT_EQ(pd->close(pd.u(), fd), 0);
  const Seg fin = pd.receive();
  EXPECT_EQ(fin.flags, flag::fin | flag::ack);
  EXPECT_EQ(fin.seq, isn + 7);
  EXPECT_EQ(fin.ack, 1006u);
  EXPECT_EQ(fin.at, t_close);
  pd.inject(in_seg(1006, isn + 8, flag::ack));
  pd.usleep(1000);
  const long long t_fin = pd.now() + 1;
  pd.inject(in_seg(1006, isn + 8, flag::fin | flag::ack));
  const Seg last = pd.receive();
  EXPECT_EQ(last.flags, flag::ack);
  EXPECT_EQ(last.seq, isn + 8);
  EXPECT_EQ(last.ack, 1007u);
  EXPECT_EQ(last.at, t_fin);
  EXPECT_EQ(pd->close(pd.u(), lfd), 0);
}

TEST(PacketdrillAdapter, BlockingSendWaitsForAcks) {
  Pd pd("local_ip=192.168.0.1,sndbuf=4096");
  const int lfd = pd.listener();
  Conn c = established(pd, lfd);
  std::string data(20000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  BlockingCall wr(pd, [&] { return static_cast<long>(pd.write(c.fd, data)); });
  std::string got;
  while (got.size() < data.size()) {
    const Seg s = pd.receive();
    ASSERT_TRUE(has(s, flag::ack));
    ASSERT_FALSE(s.payload.empty()) << "flags " << s.flags;
    ASSERT_EQ(s.seq, static_cast<std::uint32_t>(c.isn + 1 + got.size()));
    ASSERT_LE(s.payload.size(), kMss);
    got += s.payload;
    pd.usleep(100);
    pd.inject(in_seg(c.peer_nxt, c.isn + 1 + static_cast<std::uint32_t>(got.size()), flag::ack));
  }
  EXPECT_EQ(wr.join(), static_cast<long>(data.size()));
  EXPECT_EQ(got, data);
}

TEST(PacketdrillAdapter, FdsAreLowestFreeFromThree) {
  Pd pd;
  EXPECT_EQ(pd.socket(), 3);
  EXPECT_EQ(pd.socket(), 4);
  EXPECT_EQ(pd.socket(), 5);
  EXPECT_EQ(pd->close(pd.u(), 4), 0);
  EXPECT_EQ(pd.socket(), 4);
  EXPECT_EQ(pd->close(pd.u(), 3), 0);
  EXPECT_EQ(pd->close(pd.u(), 5), 0);
  EXPECT_EQ(pd.socket(), 3);
  EXPECT_EQ(pd.socket(), 5);
  errno = 0;
  EXPECT_EQ(pd->close(pd.u(), 3), 0);
  EXPECT_EQ(pd->close(pd.u(), 3), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(pd.socket(SOCK_STREAM | SOCK_NONBLOCK), 3);
  EXPECT_EQ(pd->fcntl(pd.u(), 3, F_GETFL), O_RDWR | O_NONBLOCK);
}

TEST(PacketdrillAdapter, NonBlockingConnect) {
  Pd pd;
  const int fd = pd.socket();
  ASSERT_EQ(fd, 3);
  EXPECT_EQ(pd->fcntl(pd.u(), fd, F_GETFL), O_RDWR);
  EXPECT_EQ(pd->fcntl(pd.u(), fd, F_SETFL, O_RDWR | O_NONBLOCK), 0);
  EXPECT_EQ(pd->fcntl(pd.u(), fd, F_GETFL), O_RDWR | O_NONBLOCK);
  const long long t = pd.now() + 1;
  errno = 0;
  EXPECT_EQ(pd.connect(fd, kRemote, 80), -1);
  EXPECT_EQ(errno, EINPROGRESS);
  const Seg syn = pd.receive();
  EXPECT_EQ(syn.flags, flag::syn);
  EXPECT_EQ(syn.src, kLocal);
  EXPECT_EQ(syn.dst, kRemote);
  EXPECT_EQ(syn.dport, 80);
  EXPECT_EQ(syn.at, t);
  ASSERT_TRUE(syn.options.mss.has_value());
  EXPECT_EQ(*syn.options.mss, kMss);
  EXPECT_EQ(pd.poll1(fd, POLLOUT), 0);
  errno = 0;
  EXPECT_EQ(pd.connect(fd, kRemote, 80), -1);
  EXPECT_EQ(errno, EALREADY);

  pd.usleep(20'000);
  pd.inject(ip_tcp(kRemote, kLocal, 80, syn.sport, 5000, syn.seq + 1, flag::syn | flag::ack, {}, kMss));
  const Seg ack = pd.receive();
  EXPECT_EQ(ack.flags, flag::ack);
  EXPECT_EQ(ack.ack, 5001u);
  EXPECT_EQ(pd.getint(fd, SOL_SOCKET, SO_ERROR), 0);
  EXPECT_EQ(pd.poll1(fd, POLLOUT), POLLOUT);
  errno = 0;
  EXPECT_EQ(pd.connect(fd, kRemote, 80), -1);
  EXPECT_EQ(errno, EISCONN);
  // Nothing to read yet: EAGAIN, not a block.
  char b[8];
  errno = 0;
  EXPECT_EQ(pd->read(pd.u(), fd, b, sizeof b), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST(PacketdrillAdapter, SynIsRetransmittedAfterTheInitialRto) {
  Pd pd;
  const int fd = pd.socket(SOCK_STREAM | SOCK_NONBLOCK);
  EXPECT_EQ(pd.connect(fd, kRemote, 80), -1);
  const Seg syn1 = pd.receive();
  const Seg syn2 = pd.receive();  // nothing queued: the clock runs to the RTO
  EXPECT_EQ(syn2.flags, flag::syn);
  EXPECT_EQ(syn2.seq, syn1.seq);
  EXPECT_EQ(syn2.at, syn1.at + 1'000'000);  // RFC 6298 initial RTO
}

TEST(PacketdrillAdapter, ConnectRefusedBySoError) {
  Pd pd;
  const int fd = pd.socket(SOCK_STREAM | SOCK_NONBLOCK);
  EXPECT_EQ(pd.connect(fd, kRemote, 80), -1);
  const Seg syn = pd.receive();
  pd.inject(ip_tcp(kRemote, kLocal, 80, syn.sport, 0, syn.seq + 1, flag::rst | flag::ack));
  EXPECT_EQ(pd.poll1(fd, POLLOUT) & POLLERR, POLLERR);
  EXPECT_EQ(pd.getint(fd, SOL_SOCKET, SO_ERROR), ECONNREFUSED);
  EXPECT_EQ(pd.getint(fd, SOL_SOCKET, SO_ERROR), 0);  // read once
}

TEST(PacketdrillAdapter, BlockingConnectWaitsForTheHandshake) {
  Pd pd;
  const int fd = pd.socket();
  pd.usleep(1);  // this thread is the tool's main thread: it moves the clock
  BlockingCall con(pd, [&] { return static_cast<long>(pd.connect(fd, kRemote, 80)); });
  const Seg syn = pd.receive();
  EXPECT_EQ(syn.flags, flag::syn);
  ASSERT_TRUE(con.wait_blocked());
  pd.usleep(30'000);
  const long long t = pd.now() + 1;
  pd.inject(ip_tcp(kRemote, kLocal, 80, syn.sport, 9000, syn.seq + 1, flag::syn | flag::ack, {}, kMss));
  EXPECT_EQ(con.join(), 0);
  EXPECT_EQ(con.end_time(), t);

  // And a refused one: -1 with ECONNREFUSED.
  const int fd2 = pd.socket();
  BlockingCall con2(pd, [&] { return static_cast<long>(pd.connect(fd2, kRemote, 81)); });
  Seg syn2 = pd.receive();
  while (syn2.dport != 81) syn2 = pd.receive();  // skip the ACK of the first connection
  ASSERT_TRUE(con2.wait_blocked());
  pd.inject(ip_tcp(kRemote, kLocal, 81, syn2.sport, 0, syn2.seq + 1, flag::rst | flag::ack));
  EXPECT_EQ(con2.join(), -1);
  EXPECT_EQ(con2.err(), ECONNREFUSED);
}

TEST(PacketdrillAdapter, BlockingCallAfterADelayWaitsForTheScript) {
  // `+.1...0.15 connect(...) = 0`: packetdrill's system-call thread sleeps
  // the .1 s itself (wait_for_event) and then blocks. Its sleep moves the
  // clock, but the call must then wait for the SYN-ACK the main thread
  // injects, not take the clock over and time out after the retries.
  Pd pd;
  const int fd = pd.socket();
  const long long t0 = pd.now() + 1;  // the main thread reads the clock first, as the tool does
  BlockingCall con(pd, [&] {
    pd.usleep(100'000);
    return static_cast<long>(pd.connect(fd, kRemote, 80));
  });
  ASSERT_TRUE(con.wait_blocked());
  const Seg syn = pd.receive();
  EXPECT_EQ(syn.flags, flag::syn);
  EXPECT_EQ(syn.at, t0 + 100'000);
  pd.usleep(50'000);
  const long long t = pd.now() + 1;
  pd.inject(ip_tcp(kRemote, kLocal, 80, syn.sport, 9000, syn.seq + 1, flag::syn | flag::ack, {}, kMss));
  EXPECT_EQ(con.join(), 0);
  EXPECT_EQ(con.end_time(), t);
  const Seg ack = pd.receive();
  EXPECT_EQ(ack.flags, flag::ack);
  EXPECT_EQ(ack.at, t);

  // The same for accept: it waits for the handshake the script sends.
  const int lfd = pd.listener();
  const long long t1 = pd.now() + 1;
  BlockingCall acc(pd, [&] {
    pd.usleep(100'000);
    return static_cast<long>(pd->accept(pd.u(), lfd, nullptr, nullptr));
  });
  ASSERT_TRUE(acc.wait_blocked());
  EXPECT_GE(pd.now(), t1 + 100'000);  // its sleep moved the clock
  pd.usleep(50'000);
  handshake(pd, 5000);
  EXPECT_EQ(acc.join(), 5);
}

TEST(PacketdrillAdapter, FlagsSetAddressAndDelayedAck) {
  Pd pd("local_ip=10.1.2.3, delayed_ack_ms=100 seed=7");
  const Ipv4Addr local(10, 1, 2, 3);
  const int lfd = pd.listener();
  pd.inject(in_seg(1000, 0, flag::syn, {}, kMss, kRemotePort, kLocalPort, local));
  const Seg sa = pd.receive();
  EXPECT_EQ(sa.src, local);
  EXPECT_EQ(sa.flags, flag::syn | flag::ack);
  pd.inject(in_seg(1001, sa.seq + 1, flag::ack, {}, std::nullopt, kRemotePort, kLocalPort, local));
  ASSERT_EQ(pd->accept(pd.u(), lfd, nullptr, nullptr), 4);
  // The first 16 data segments are ACKed at once (quick-ACK, as on Linux);
  // the delayed-ACK time shows from the 17th on.
  for (std::uint32_t i = 0; i < 16; ++i) {
    pd.inject(in_seg(1001 + i, sa.seq + 1, flag::ack, "y", std::nullopt, kRemotePort, kLocalPort, local));
    EXPECT_EQ(pd.receive().ack, 1002u + i);
  }
  const long long t = pd.now() + 1;
  pd.inject(in_seg(1017, sa.seq + 1, flag::psh | flag::ack, "z", std::nullopt, kRemotePort, kLocalPort, local));
  const Seg ack = pd.receive();
  EXPECT_EQ(ack.ack, 1018u);
  EXPECT_EQ(ack.at, t + 100'000);
}

TEST(PacketdrillAdapterDeathTest, BadFlagsStopWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(Pd("local_ip=192.168.0.1 colour=blue"), testing::ExitedWithCode(1), "unknown key 'colour'");
  EXPECT_EXIT(Pd("local_ip=300.1.1.1"), testing::ExitedWithCode(1), "bad value for local_ip");
}

}  // namespace
