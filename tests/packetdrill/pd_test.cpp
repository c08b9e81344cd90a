// libweft_packetdrill.so driven the way packetdrill drives it: loaded with
// dlopen(RTLD_NOW | RTLD_DEEPBIND), called only through the table; this
// (main) thread injects and sniffs packets, sleeps and reads the clock, a
// second thread makes the blocking calls and reads the clock as soon as one
// returns (packetdrill's end_syscall()). Packets are built and parsed here
// with weft's wire views; the library under test has its own hidden copy.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "packetdrill_interface.h"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

extern "C" int pd_layout_members(void);  // pd_layout.c: the C view of the table

using namespace weft;
namespace flag = wire::tcp_flag;

namespace {

const Ipv4Addr kLocal(192, 168, 0, 1);   // packetdrill's default --local_ip
const Ipv4Addr kRemote(192, 0, 2, 1);    // and --remote_ip
constexpr std::uint16_t kLocalPort = 8080, kRemotePort = 40000;
constexpr std::uint16_t kMss = 1460;         // MTU 1500 - 40

std::vector<std::uint8_t> ip_tcp(Ipv4Addr src, Ipv4Addr dst, std::uint16_t sport, std::uint16_t dport, std::uint32_t seq,
                                 std::uint32_t ack, wire::TcpFlags flags, std::string_view payload = {},
                                 std::optional<std::uint16_t> mss = std::nullopt, std::uint16_t window = 65535) {
  wire::TcpRepr t;
  t.src_port = Port{sport};
  t.dst_port = Port{dport};
  t.seq = SeqNum{seq};
  t.ack = SeqNum{ack};
  t.flags = flags;
  t.window = window;
  t.options.mss = mss;
  std::vector<std::uint8_t> seg(t.header_len() + payload.size());
  std::memcpy(seg.data() + t.header_len(), payload.data(), payload.size());
  t.emit(seg, src, dst, payload.size());
  std::vector<std::uint8_t> p(20 + seg.size());
  std::memcpy(p.data() + 20, seg.data(), seg.size());
  wire::Ipv4Repr h;
  h.src = src;
  h.dst = dst;
  h.protocol = static_cast<std::uint8_t>(IpProto::tcp);
  h.payload_len = static_cast<std::uint16_t>(seg.size());
  h.ident = 7;
  h.emit(std::span<std::uint8_t>(p).first(20));
  return p;
}

// A segment from the remote peer to the stack.
std::vector<std::uint8_t> in_seg(std::uint32_t seq, std::uint32_t ack, wire::TcpFlags flags, std::string_view payload = {},
                                 std::optional<std::uint16_t> mss = std::nullopt, std::uint16_t sport = kRemotePort,
                                 std::uint16_t dport = kLocalPort, Ipv4Addr dst = kLocal) {
  return ip_tcp(kRemote, dst, sport, dport, seq, ack, flags, payload, mss);
}

struct Seg {
  Ipv4Addr src, dst;
  std::uint16_t sport = 0, dport = 0;
  std::uint32_t seq = 0, ack = 0;
  wire::TcpFlags flags{};
  std::uint16_t window = 0;
  wire::TcpOptions options;
  std::string payload;
  long long at = 0;  // time_usecs from netdev_receive
};

sockaddr_in sin_of(Ipv4Addr a, std::uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  s.sin_addr.s_addr = htonl(a.value());
  return s;
}

// One adapter instance, loaded as packetdrill loads it.
class Pd {
 public:
  explicit Pd(const char* flags = "local_ip=192.168.0.1") {
    handle_ = dlopen(WEFT_PD_SO, RTLD_NOW | RTLD_DEEPBIND);
    if (!handle_) throw std::runtime_error(dlerror());
    auto init = reinterpret_cast<packetdrill_interface_init_t>(dlsym(handle_, "packetdrill_interface_init"));
    if (!init) throw std::runtime_error("no packetdrill_interface_init");
    init(flags, &ifc_);
  }
  ~Pd() {
    ifc_.free(ifc_.userdata);
    dlclose(handle_);
  }
  Pd(const Pd&) = delete;
  Pd& operator=(const Pd&) = delete;

  packetdrill_interface* operator->() { return &ifc_; }
  void* u() { return ifc_.userdata; }
  void* handle() { return handle_; }

  // The clock as the tool reads it; each reading moves it on by 1 us, so
  // the current time after the call is the result + 1.
  long long now() {
    timeval tv{};
    EXPECT_EQ(ifc_.gettimeofday(ifc_.userdata, &tv, nullptr), 0);
    return static_cast<long long>(tv.tv_sec) * 1'000'000 + tv.tv_usec;
  }
  void usleep(useconds_t us) { EXPECT_EQ(ifc_.usleep(ifc_.userdata, us), 0); }
  void inject(const std::vector<std::uint8_t>& p) { ASSERT_EQ(ifc_.netdev_send(ifc_.userdata, p.data(), p.size()), 0); }
  Seg receive() {
    std::vector<std::uint8_t> buf(65536);
    std::size_t n = buf.size();
    long long at = -1;
    EXPECT_EQ(ifc_.netdev_receive(ifc_.userdata, buf.data(), &n, &at), 0);
    EXPECT_GT(n, 0u);
    buf.resize(n);
    Seg s;
    s.at = at;
    auto ip = wire::Ipv4View::parse(buf);
    if (!ip) {
      ADD_FAILURE() << "not an IPv4 packet";
      return s;
    }
    EXPECT_EQ(ip->protocol(), static_cast<std::uint8_t>(IpProto::tcp));
    s.src = ip->src();
    s.dst = ip->dst();
    auto t = wire::TcpView::parse(ip->payload(), ip->src(), ip->dst(), true);
    if (!t) {
      ADD_FAILURE() << "not a valid TCP segment (checksum?)";
      return s;
    }
    s.sport = t->src_port().value();
    s.dport = t->dst_port().value();
    s.seq = t->seq().value();
    s.ack = t->ack().value();
    s.flags = t->flags();
    s.window = t->window();
    s.options = t->options();
    s.payload.assign(t->payload().begin(), t->payload().end());
    return s;
  }

  int socket(int type = SOCK_STREAM) { return ifc_.socket(ifc_.userdata, AF_INET, type, 0); }
  int bind(int fd, Ipv4Addr a, std::uint16_t port) {
    const sockaddr_in s = sin_of(a, port);
    return ifc_.bind(ifc_.userdata, fd, reinterpret_cast<const sockaddr*>(&s), sizeof s);
  }
  int connect(int fd, Ipv4Addr a, std::uint16_t port) {
    const sockaddr_in s = sin_of(a, port);
    return ifc_.connect(ifc_.userdata, fd, reinterpret_cast<const sockaddr*>(&s), sizeof s);
  }
  int listener(std::uint16_t port = kLocalPort) {
    const int fd = socket();
    EXPECT_GE(fd, 3);
    EXPECT_EQ(bind(fd, Ipv4Addr::any(), port), 0);
    EXPECT_EQ(ifc_.listen(ifc_.userdata, fd, 16), 0);
    return fd;
  }
  int getint(int fd, int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    EXPECT_EQ(ifc_.getsockopt(ifc_.userdata, fd, level, name, &v, &len), 0);
    EXPECT_EQ(len, sizeof v);
    return v;
  }
  int setint(int fd, int level, int name, int v) { return ifc_.setsockopt(ifc_.userdata, fd, level, name, &v, sizeof v); }
  ssize_t write(int fd, std::string_view s) { return ifc_.write(ifc_.userdata, fd, s.data(), s.size()); }
  short poll1(int fd, short events, int timeout = 0) {
    pollfd p{fd, events, 0};
    const int r = ifc_.poll(ifc_.userdata, &p, 1, timeout);
    EXPECT_EQ(r, p.revents ? 1 : 0);
    return p.revents;
  }

 private:
  void* handle_ = nullptr;
  packetdrill_interface ifc_{};
};

// A blocking call made from a second thread, as packetdrill's system-call
// thread makes it: it reads the clock as soon as the call returns.
class BlockingCall {
 public:
  BlockingCall(Pd& pd, std::function<long()> call) : pd_(pd) {
    thread_ = std::thread([this, call] {
      tid_ = static_cast<pid_t>(::syscall(SYS_gettid));
      started_ = true;
      result_ = call();
      errno_ = errno;
      end_ = pd_.now();
      done_ = true;
    });
  }
  ~BlockingCall() {
    if (thread_.joinable()) thread_.join();
  }
  // packetdrill's is_thread_sleeping(): the thread sits in a futex wait.
  bool wait_blocked() {
    for (int i = 0; i < 2000; ++i) {
      if (done_) return false;
      if (started_) {
        std::ifstream f("/proc/self/task/" + std::to_string(tid_.load()) + "/stat");
        std::string line;
        std::getline(f, line);
        const auto rp = line.rfind(')');
        if (rp != std::string::npos && rp + 2 < line.size() && line[rp + 2] == 'S') return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }
  bool done() const { return done_; }
  long join() {
    thread_.join();
    return result_;
  }
  int err() const { return errno_; }
  long long end_time() const { return end_; }

 private:
  Pd& pd_;
  std::thread thread_;
  std::atomic<pid_t> tid_{0};
  std::atomic<bool> started_{false}, done_{false};
  long result_ = 0;
  int errno_ = 0;
  long long end_ = 0;
};

bool has(const Seg& s, wire::TcpFlags f) { return s.flags.has(f); }

// The handshake of a passive open: SYN in, SYN-ACK out, ACK in. Returns the
// stack's ISN.
std::uint32_t handshake(Pd& pd, std::uint32_t peer_isn, std::uint16_t sport = kRemotePort) {
  pd.inject(in_seg(peer_isn, 0, flag::syn, {}, kMss, sport));
  const Seg sa = pd.receive();
  EXPECT_EQ(sa.flags, flag::syn | flag::ack);
  EXPECT_EQ(sa.ack, peer_isn + 1);
  pd.inject(in_seg(peer_isn + 1, sa.seq + 1, flag::ack, {}, std::nullopt, sport));
  return sa.seq;
}

struct Conn {
  int fd;
  std::uint32_t isn;  // the stack's
  std::uint32_t peer_nxt;
};

Conn established(Pd& pd, int lfd, std::uint32_t peer_isn = 1000) {
  const std::uint32_t isn = handshake(pd, peer_isn);
  const int fd = pd->accept(pd.u(), lfd, nullptr, nullptr);  // queued: returns at once
  EXPECT_GE(fd, 3);
  return Conn{fd, isn, peer_isn + 1};
}

// --------------------------------------------------------------- tests

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
  EXPECT_EQ(ti.tcpi_rto, 200'000u);    // the handshake's RTT (0 in virtual time): the 200 ms floor
  EXPECT_EQ(ti.tcpi_unacked, 1u);      // one segment in flight
  EXPECT_EQ(ti.tcpi_retransmits, 0);
  EXPECT_EQ(ti.tcpi_total_retrans, 0u);
  EXPECT_GE(ti.tcpi_snd_cwnd, 2u);     // segments, not bytes
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
