// TunLink against the real kernel. Each test forks a child that moves into a
// private network namespace (unshare(CLONE_NEWNET)), so nothing it creates
// or sends is visible outside, and the test process keeps its own namespace.
// The child reports through its exit status and a pipe carrying the reason.
#include "link/tun.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "link_packets.hpp"

using namespace weft;
using weft::wire::load_be16;
using weft::wire::load_be32;

namespace {

constexpr int kChildSkip = 77;  // the convention tests/net uses for SKIP

const Ipv4Addr kKernel(192, 0, 2, 1);
const Ipv4Addr kWeft(192, 0, 2, 2);

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// Why the environment cannot run the test, or "" when it can.
std::string tun_unavailable() {
  if (::geteuid() != 0) return "not root (TUN and unshare(CLONE_NEWNET) need CAP_NET_ADMIN)";
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) return "/dev/net/tun is missing or not accessible";
  return "";
}

// Runs `body` in a forked child inside a fresh network namespace. The body
// returns "" on success or a failure message.
struct ChildResult {
  int code;
  std::string message;
};

ChildResult run_in_netns(const std::function<std::string()>& body) {
  int fds[2];
  if (::pipe(fds) != 0) return {1, "pipe failed"};
  pid_t pid = ::fork();
  if (pid < 0) return {1, "fork failed"};
  if (pid == 0) {
    ::close(fds[0]);
    int code = 0;
    std::string msg;
    if (::unshare(CLONE_NEWNET) != 0) {
      code = kChildSkip;
      msg = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
    } else {
      msg = body();
      code = msg.empty() ? 0 : 1;
    }
    if (!msg.empty()) (void)!::write(fds[1], msg.data(), msg.size());
    // _exit: the child must not run gtest's or the sanitizer's exit hooks.
    ::_exit(code);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return {1, "child died: status " + std::to_string(status) + " " + msg};
  return {WEXITSTATUS(status), msg};
}

// Skips (or fails under CI=true) when the environment cannot run TUN tests.
#define REQUIRE_TUN()                                                    \
  do {                                                                   \
    std::string why = tun_unavailable();                                 \
    if (!why.empty()) {                                                  \
      if (in_ci()) FAIL() << "CI=true but TUN test cannot run: " << why; \
      GTEST_SKIP() << "TUN test skipped: " << why;                       \
    }                                                                    \
  } while (0)

#define EXPECT_CHILD_OK(r)                                                       \
  do {                                                                           \
    if ((r).code == kChildSkip) {                                                \
      if (in_ci()) FAIL() << "CI=true but child could not run: " << (r).message; \
      GTEST_SKIP() << (r).message;                                               \
    }                                                                            \
    EXPECT_EQ((r).code, 0) << (r).message;                                       \
  } while (0)

bool wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

sockaddr_in inet(Ipv4Addr a, std::uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  s.sin_addr.s_addr = htonl(a.value());
  return s;
}

// Opens wtest0 and configures the kernel side as 192.0.2.1/24.
std::string open_configured(std::unique_ptr<TunLink>& out) {
  auto r = TunLink::open("wtest0", 1500);
  if (!r) return "open: " + errc_message(r.error());
  out = std::move(r.value());
  if (out->name() != "wtest0") return "name is " + out->name();
  if (auto st = TunLink::set_mtu("wtest0", 1500); !st) return "set_mtu: " + errc_message(st.error());
  if (auto st = TunLink::add_address("wtest0", Ipv4Cidr{kKernel, 24}); !st)
    return "add_address: " + errc_message(st.error());
  if (auto st = TunLink::set_up("wtest0"); !st) return "set_up: " + errc_message(st.error());
  return "";
}

// Reads from the TUN until a packet satisfying `match` arrives. The kernel
// also emits IPv6 router solicitations and MLD reports on a fresh
// interface, so unrelated packets are skipped.
bool receive_matching(TunLink& tun, std::span<std::uint8_t> buf,
                      const std::function<bool(std::span<const std::uint8_t>)>& match) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!wait_readable(tun.poll_fd(), 100)) continue;
    while (std::size_t n = tun.receive(buf, Instant{})) {
      if (match(buf.first(n))) return true;
    }
  }
  return false;
}

}  // namespace

TEST(TunLink, OpenRejectsBadArgumentsWithoutTouchingTheKernel) {
  auto r = TunLink::open("a-name-longer-than-ifnamsiz", 1500);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::invalid_argument);
  EXPECT_EQ(TunLink::open("wtest0", 0).error(), std::errc::invalid_argument);
  EXPECT_EQ(TunLink::set_up("").error(), std::errc::invalid_argument);
  EXPECT_EQ(TunLink::add_address("wtest0", Ipv4Cidr{kKernel, 33}).error(), std::errc::invalid_argument);
}

TEST(TunKernel, ReceivesWhatTheKernelRoutesToTheDevice) {
  REQUIRE_TUN();
  auto r = run_in_netns([]() -> std::string {
    std::unique_ptr<TunLink> tun;
    if (auto err = open_configured(tun); !err.empty()) return err;

    int s = ::socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) return "socket failed";
    const char payload[] = "weft-tun-test";
    auto to = inet(kWeft, 9999);
    if (::sendto(s, payload, sizeof payload, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0)
      return std::string("sendto: ") + std::strerror(errno);

    std::vector<std::uint8_t> buf(65535);
    bool got = receive_matching(*tun, buf, [&](std::span<const std::uint8_t> p) {
      return p.size() >= 28 && (p[0] >> 4) == 4 && p[9] == 17 && Ipv4Addr{load_be32(&p[16])} == kWeft &&
             Ipv4Addr{load_be32(&p[12])} == kKernel && load_be16(&p[22]) == 9999 && p.size() == 28 + sizeof payload &&
             std::memcmp(p.data() + 28, payload, sizeof payload) == 0;
    });
    if (!got) return "no IPv4/UDP packet to 192.0.2.2:9999 arrived on the TUN";
    if (tun->counters().rx_packets == 0) return "rx_packets not counted";

    // A packet longer than the caller's buffer is dropped and counted, not
    // truncated.
    std::vector<std::uint8_t> big(1000, 0xab);
    if (::sendto(s, big.data(), big.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0)
      return "sendto big failed";
    std::uint8_t small[64];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (tun->counters().rx_too_big == 0 && std::chrono::steady_clock::now() < deadline) {
      if (wait_readable(tun->poll_fd(), 100)) {
        while (std::size_t n = tun->receive(small, Instant{})) {
          if (n > sizeof small) return "receive returned more than the buffer";
        }
      }
    }
    if (tun->counters().rx_too_big != 1) return "oversize packet was not counted as rx_too_big";
    ::close(s);
    return "";
  });
  EXPECT_CHILD_OK(r);
}

TEST(TunKernel, SendsHandCraftedUdpThatTheKernelDelivers) {
  REQUIRE_TUN();
  auto r = run_in_netns([]() -> std::string {
    std::unique_ptr<TunLink> tun;
    if (auto err = open_configured(tun); !err.empty()) return err;

    int s = ::socket(AF_INET, SOCK_DGRAM, 0);
    auto local = inet(kKernel, 7777);
    if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0)
      return std::string("bind 192.0.2.1:7777: ") + std::strerror(errno);

    const std::uint8_t payload[] = {'h', 'e', 'l', 'l', 'o'};
    auto pkt = weft::test::udp(kWeft, kKernel, 5555, 7777, payload);
    if (!tun->send(pkt, Instant{})) return "TunLink::send refused a valid packet";
    if (tun->counters().tx_packets != 1) return "tx_packets not counted";

    if (!wait_readable(s, 3000)) return "kernel socket on 192.0.2.1:7777 received nothing";
    char buf[64];
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    ssize_t n = ::recvfrom(s, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
    if (n != static_cast<ssize_t>(sizeof payload) || std::memcmp(buf, payload, sizeof payload) != 0)
      return "wrong payload received";
    if (ntohl(from.sin_addr.s_addr) != kWeft.value() || ntohs(from.sin_port) != 5555) return "wrong source address";

    // The same packet in parts (the IP header split, an empty part, the
    // UDP payload apart): one writev, one packet.
    const std::span<const std::uint8_t> whole(pkt);
    const std::span<const std::uint8_t> parts[] = {whole.first(10), {}, whole.subspan(10, 18), whole.subspan(28)};
    if (!tun->send(PacketParts(parts), Instant{})) return "TunLink::send refused a packet in parts";
    if (tun->counters().tx_packets != 2 || tun->counters().tx_bytes != 2 * pkt.size())
      return "parts not counted as one packet";
    if (!wait_readable(s, 3000)) return "the packet sent in parts was not delivered";
    n = ::recvfrom(s, buf, sizeof buf, 0, nullptr, nullptr);
    if (n != static_cast<ssize_t>(sizeof payload) || std::memcmp(buf, payload, sizeof payload) != 0)
      return "wrong payload received from the packet in parts";

    // Larger than the MTU: refused before write() and counted.
    std::vector<std::uint8_t> huge(1501, 0x45);
    if (tun->send(huge, Instant{})) return "send accepted a packet over the MTU";
    if (tun->counters().tx_too_big != 1) return "tx_too_big not counted";
    // Not IPv4/IPv6: the kernel rejects it (EINVAL) and we count an error.
    std::vector<std::uint8_t> junk(40, 0x00);
    if (tun->send(junk, Instant{})) return "send accepted a non-IP packet";
    if (tun->counters().tx_errors != 1) return "tx_errors not counted";
    ::close(s);
    return "";
  });
  EXPECT_CHILD_OK(r);
}
