// The packetdrill adapter's test fixture: libweft_packetdrill.so driven the
// way packetdrill drives it: loaded with dlopen(RTLD_NOW | RTLD_DEEPBIND),
// called only through the table; the test's (main) thread injects and
// sniffs packets, sleeps and reads the clock, a second thread makes the
// blocking calls and reads the clock as soon as one returns (packetdrill's
// end_syscall()). Packets are built and parsed here with weft's wire views;
// the library under test has its own hidden copy. The tests are split by
// theme: pd_test.cpp (loading, the clock, opens and blocking calls),
// pd_io_test.cpp (reads, writes, poll, epoll, close) and
// pd_options_test.cpp (socket options, TCP_INFO, ioctl).
#pragma once

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <netinet/in.h>
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

namespace weft::pd_test {

using namespace weft;
namespace flag = wire::tcp_flag;

inline const Ipv4Addr kLocal(192, 168, 0, 1);  // packetdrill's default --local_ip
inline const Ipv4Addr kRemote(192, 0, 2, 1);   // and --remote_ip
inline constexpr std::uint16_t kLocalPort = 8080, kRemotePort = 40000;
inline constexpr std::uint16_t kMss = 1460;  // MTU 1500 - 40

inline std::vector<std::uint8_t> ip_tcp(Ipv4Addr src, Ipv4Addr dst, std::uint16_t sport, std::uint16_t dport,
                                        std::uint32_t seq, std::uint32_t ack, wire::TcpFlags flags,
                                        std::string_view payload = {}, std::optional<std::uint16_t> mss = std::nullopt,
                                        std::uint16_t window = 65535) {
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
inline std::vector<std::uint8_t> in_seg(std::uint32_t seq, std::uint32_t ack, wire::TcpFlags flags,
                                        std::string_view payload = {}, std::optional<std::uint16_t> mss = std::nullopt,
                                        std::uint16_t sport = kRemotePort, std::uint16_t dport = kLocalPort,
                                        Ipv4Addr dst = kLocal) {
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

inline sockaddr_in sin_of(Ipv4Addr a, std::uint16_t port) {
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
  int setint(int fd, int level, int name, int v) {
    return ifc_.setsockopt(ifc_.userdata, fd, level, name, &v, sizeof v);
  }
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

inline bool has(const Seg& s, wire::TcpFlags f) { return s.flags.has(f); }

// The handshake of a passive open: SYN in, SYN-ACK out, ACK in. Returns the
// stack's ISN.
inline std::uint32_t handshake(Pd& pd, std::uint32_t peer_isn, std::uint16_t sport = kRemotePort) {
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

inline Conn established(Pd& pd, int lfd, std::uint32_t peer_isn = 1000) {
  const std::uint32_t isn = handshake(pd, peer_isn);
  const int fd = pd->accept(pd.u(), lfd, nullptr, nullptr);  // queued: returns at once
  EXPECT_GE(fd, 3);
  return Conn{fd, isn, peer_isn + 1};
}

}  // namespace weft::pd_test
