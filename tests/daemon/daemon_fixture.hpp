// The fixture of the daemon tests (daemon_test.cpp and the files beside
// it): the host daemon and libweft-client together, in one process: a Daemon
// runs in a thread on a link that carries nothing (a host alone), and the
// tests are its clients through the C API, talking to the host's own
// address (which loops back inside the host). Forked children are other
// processes: their deaths, their uids.
#pragma once

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "client/client.hpp"
#include "client/weft.h"
#include "control/control.hpp"
#include "host/daemon.hpp"
#include "host/event_loop.hpp"
#include "netstat/system_sockets.hpp"

namespace weft::dtest {

using namespace std::chrono_literals;

// A host alone: everything sent is lost, nothing arrives.
class NullLink final : public Link {
 public:
  using Link::send;
  bool send(PacketParts, Instant) override { return true; }
  std::size_t receive(std::span<std::uint8_t>, Instant) override { return 0; }
  std::size_t mtu() const override { return 1500; }
  std::string name() const override { return "null"; }
};

inline constexpr const char* kAddr = "192.0.2.10";
inline std::string g_dir;
inline std::thread g_thread;
inline std::atomic<bool> g_ready{false};
inline std::atomic<bool> g_failed{false};

inline sockaddr_in sa(const char* addr, std::uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  inet_pton(AF_INET, addr, &s.sin_addr);
  return s;
}

inline int tcp_socket(bool nonblock = false) {
  int fd = weft_socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
  EXPECT_GE(fd, 0) << std::strerror(errno) << " " << weft_last_detail();
  return fd;
}

inline int tcp_listen(std::uint16_t port, int backlog = 16) {
  int fd = tcp_socket();
  auto a = sa(kAddr, port);
  EXPECT_EQ(weft_bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  EXPECT_EQ(weft_listen(fd, backlog), 0) << std::strerror(errno);
  return fd;
}

inline int tcp_connect(std::uint16_t port) {
  int fd = tcp_socket();
  auto a = sa(kAddr, port);
  EXPECT_EQ(weft_connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  return fd;
}

inline int poll1(int fd, short events, int ms) {
  pollfd p{fd, events, 0};
  int n = ::poll(&p, 1, ms);
  return n <= 0 ? 0 : p.revents;
}

// The snapshot's sockets matching a predicate.
template <class P>
inline std::vector<nlohmann::json> sockets_where(P&& pred) {
  auto snap = client::netstat_snapshot("t");
  EXPECT_TRUE(snap.ok()) << errc_message(snap.error());
  std::vector<nlohmann::json> out;
  if (!snap) return out;
  for (auto& s : (*snap)["sockets"])
    if (pred(s)) out.push_back(s);
  return out;
}

inline std::uint64_t counter(const char* group, const char* name) {
  auto snap = client::netstat_snapshot("t");
  if (!snap) return ~std::uint64_t{0};
  return (*snap)["counters"][group][name].get<std::uint64_t>();
}

inline bool has_port(const nlohmann::json& s, std::uint16_t port) {
  return s["local"]["port"] == port || (!s["remote"].is_null() && s["remote"]["port"] == port);
}

// Polls `cond` every 10 ms for up to `limit`.
template <class C>
inline bool eventually(C&& cond, std::chrono::milliseconds limit = 3000ms) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return cond();
}

// The descriptors open in this process now.
inline std::set<int> open_fds() {
  std::set<int> out;
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return out;
  const int own = ::dirfd(d);
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::atoi(e->d_name);
    if (fd != own) out.insert(fd);
  }
  ::closedir(d);
  return out;
}

// A forked child that cannot outlive its test: killed and reaped when the
// test ends (an ASSERT returning early) before it was waited for. In the
// child itself (pid 0) it does nothing: the child leaves by _exit.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  // waitpid(2) for it; its status (0 when already reaped).
  int wait() {
    int status = 0;
    if (pid_ > 0) ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_;
};

// One daemon per test suite, on a host alone, served from a thread; a test
// that stops it (SIGTERM) gets it back for the next test in the same
// process. Each test's weft descriptors still open when it ends (an
// ASSERT returned early) are closed after it, so none leaks into the next.
class DaemonTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/weft-daemon-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    g_dir = tmpl;
    ::chmod(g_dir.c_str(), 0755);
    ::setenv("WEFT_RUNTIME_DIR", g_dir.c_str(), 1);
    ::setenv("WEFT_HOST", "t", 1);
    start_daemon();
  }
  static void TearDownTestSuite() {
    stop_daemon();
    std::string cmd = "rm -rf " + g_dir;
    (void)std::system(cmd.c_str());
  }

 protected:
  void SetUp() override {
    if (!g_thread.joinable()) start_daemon();
    ASSERT_FALSE(g_failed);
    before_ = open_fds();
  }
  void TearDown() override {
    // weft_close closes only what the client library handed out; the
    // daemon's own descriptors (it runs in this process) answer ENOTSOCK
    // and stay.
    for (int fd : open_fds())
      if (!before_.count(fd)) (void)weft_close(fd);
  }

  static void start_daemon() {
    g_ready = false;
    g_failed = false;
    g_thread = std::thread([] {
      // Its stop signal waits for its loop, even one sent the instant it
      // is ready (a short test's end).
      if (!block_loop_signals()) std::fprintf(stderr, "daemon: cannot block its signals\n");
      NullLink link;
      StackConfig cfg;
      cfg.address = *Ipv4Cidr::parse(std::string(kAddr) + "/24");
      cfg.seed = 7;
      Host host(cfg, link);
      DaemonConfig d;
      d.name = "t";
      d.runtime_dir = *control::runtime_dir();
      d.link_description = "null";
      d.privileged_uids = {65533};  // --allow-privileged-uid
      std::vector<std::string> notes;
      std::unique_ptr<Daemon> daemon;
      try {
        daemon = Daemon::start(host, d, notes);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "daemon: %s\n", e.what());
        g_failed = true;
        g_ready = true;
        return;
      }
      // Other processes (forked children running as nobody) must reach
      // it: the test opens the host's directory and socket to everyone
      // (a daemon never does, whatever --socket-group says).
      ::chmod((g_dir + "/t").c_str(), 0755);
      ::chmod(control::control_socket_path("t")->c_str(), 0666);
      g_ready = true;
      (void)daemon->run({});
    });
    while (!g_ready) std::this_thread::sleep_for(1ms);
  }
  static void stop_daemon() {
    if (g_thread.joinable()) {
      ::pthread_kill(g_thread.native_handle(), SIGTERM);
      g_thread.join();
    }
  }

 private:
  std::set<int> before_;
};

// A control connection of our own, without the client library.
inline int raw_control() {
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  auto path = *control::control_socket_path("t");
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

}  // namespace weft::dtest
