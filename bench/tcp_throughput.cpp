// TCP throughput and 1-byte request/response: two weft hosts on the
// simulated network (no impairments, zero delay) in one process, beside the
// Linux kernel's loopback TCP on 127.0.0.1 measured in the same run.
//
//   build/bench_tcp_throughput     # plain tables, no arguments, ~25 s
//
// weft side: SimDriver is run as fast as it goes; the simulated clock only
// orders events. Times are wall-clock (steady_clock) and this thread's CPU
// time. Every byte received is checked against the deterministic pattern the
// sender sent. Each weft test runs twice: transport checksums computed
// (StackConfig::checksum_offload = false) and offloaded (= true).
//
// Kernel side, fixed methods:
//   bulk  `iperf3 -c 127.0.0.1 -p PORT -t 10 --json` against a child
//         `iperf3 -s -1 -B 127.0.0.1 -p PORT`; the receiver's bits_per_second
//         (end.sum_received). Without iperf3 the kernel column is skipped.
//   RR    a client and a server thread in this process over 127.0.0.1:
//         blocking send/recv of 1 byte each way, TCP_NODELAY on both.
//
// A benchmark that prints numbers, not a test: it exits 0 unless a weft
// transfer fails or delivers a wrong byte.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/rng.hpp"
#include "host/sim_driver.hpp"

using namespace weft;

namespace {

constexpr std::uint64_t kBulkMaxBytes = std::uint64_t{4} << 30;  // 4 GiB
constexpr double kBulkBudgetS = 8.0;                             // the sender stops queuing after this
constexpr double kRrBudgetS = 3.0;                               // per request/response run
constexpr int kIperfSeconds = 10;
const Ipv4Addr kA(192, 0, 2, 1), kB(192, 0, 2, 2);
constexpr Port kPort{5001};

// The byte pattern: P pseudo-random bytes repeating, P prime, so a byte
// delivered at the wrong offset differs from the expected one unless it is
// off by a multiple of P. Stored twice so any P bytes from any phase are
// contiguous.
constexpr std::size_t kP = 65537;
const std::vector<std::uint8_t>& pattern() {
  static const std::vector<std::uint8_t> v = [] {
    std::vector<std::uint8_t> p(2 * kP);
    Rng r(0x7470757421);
    for (std::size_t i = 0; i < kP; ++i) p[i] = p[i + kP] = static_cast<std::uint8_t>(r.next() >> 56);
    return p;
  }();
  return v;
}
std::span<const std::uint8_t> pattern_at(std::uint64_t off, std::size_t len) {
  return std::span<const std::uint8_t>(pattern()).subspan(off % kP, std::min(len, kP));
}

double wall_now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

StackConfig host_config(Ipv4Addr a, std::uint64_t seed, bool offload) {
  StackConfig c;
  c.address = Ipv4Cidr{a, 24};
  c.seed = seed;
  c.checksum_offload = offload;
  return c;
}

// With zero delay everything happens at one simulated instant, and
// SimDriver gives up after 100000 rounds at one instant (its guard against
// a livelock). Returning to the caller every 4096 rounds restarts that count;
// the transfer itself still makes progress each round or `stalled` says so.
void run_sim(SimDriver& sim, const std::function<bool()>& finished) {
  while (!finished()) {
    int rounds = 0;
    sim.run_while_not([&] { return finished() || ++rounds >= 4096; }, sim.now() + 3600s);
  }
}

struct Measured {
  std::uint64_t count = 0;  // bytes (bulk) or transactions (RR)
  double wall_s = 0, cpu_s = 0;
  std::uint64_t segs = 0;     // segments the sender (A) sent
  std::uint64_t retrans = 0;  // of which retransmissions
  double sim_s = 0;           // simulated time elapsed
  std::string error;          // empty: every byte checked and right
};
Measured failed(std::string e) {
  Measured m;
  m.error = std::move(e);
  return m;
}

// One connection A -> B: A sends pattern bytes until kBulkMaxBytes or the
// time budget, then shuts down; B reads, checks each byte, and sees EOF.
Measured weft_bulk(bool offload) {
  SimDriver sim(1);
  Host& ha = sim.add_host(host_config(kA, 11, offload));
  Host& hb = sim.add_host(host_config(kB, 12, offload));
  TcpLayer& ta = ha.stack().tcp();
  TcpLayer& tb = hb.stack().tcp();
  std::vector<std::uint8_t> buf(64 * 1024);

  Measured m;
  SocketId ca = 0, cb = 0;
  bool b_open = false, shut = false, eof = false;
  std::uint64_t sent = 0, received = 0;
  double t0 = 0, stop_at = 0;
  std::uint64_t limit = kBulkMaxBytes;

  auto fail = [&](std::string e) {
    if (m.error.empty()) m.error = std::move(e);
  };
  auto pump_send = [&](Instant now) {
    while (!shut && sent < limit) {
      auto s = ta.send(ca, pattern_at(sent, static_cast<std::size_t>(std::min<std::uint64_t>(limit - sent, kP))), now);
      if (!s) {
        if (s.error() != std::errc::resource_unavailable_try_again) fail("send: " + errc_message(s.error()));
        break;
      }
      sent += *s;
      if (wall_now() > stop_at) limit = sent;  // out of time: finish with what is queued
    }
    if (!shut && sent >= limit) {
      if (!ta.shutdown(ca, Shutdown::write, now)) fail("shutdown failed");
      shut = true;
    }
    if (auto e = ta.take_error(ca)) fail("A error: " + errc_message(*e));
  };
  auto pump_recv = [&](Instant now) {
    for (;;) {
      auto r = tb.recv(cb, buf, now);
      if (!r) {
        if (r.error() != std::errc::resource_unavailable_try_again) fail("recv: " + errc_message(r.error()));
        break;
      }
      if (r->len == 0) {
        eof = true;
        break;
      }
      // recv returns at most 64 KiB < kP, so one pattern_at span covers it.
      if (std::memcmp(buf.data(), pattern_at(received, r->len).data(), r->len) != 0)
        fail("wrong bytes in [" + std::to_string(received) + ", +" + std::to_string(r->len) + ")");
      received += r->len;
    }
  };

  const SocketId lis = tb.open();
  if (!tb.bind(lis, Endpoint{Ipv4Addr::any(), kPort}) || !tb.listen(lis, 8)) return failed("listen failed");
  hb.set_on_tcp_event([&](SocketId id, Instant now) {
    if (id == lis) {
      while (auto a = tb.accept(lis)) {
        cb = a->id;
        b_open = true;
        pump_recv(now);
      }
    } else if (b_open && id == cb) {
      pump_recv(now);
    }
  });
  ha.set_on_tcp_event([&](SocketId id, Instant now) {
    if (id == ca) pump_send(now);
  });

  t0 = wall_now();
  stop_at = t0 + kBulkBudgetS;
  const double c0 = cpu_now();
  ca = ta.open();
  if (auto s = ta.connect(ca, Endpoint{kB, kPort}, sim.now()); !s) return failed("connect: " + errc_message(s.error()));
  run_sim(sim, [&] { return eof || !m.error.empty() || wall_now() > stop_at + 30; });
  m.wall_s = wall_now() - t0;
  m.cpu_s = cpu_now() - c0;
  m.count = received;
  m.segs = ta.counters().out_segs;
  m.retrans = ta.counters().retrans_segs;
  m.sim_s = static_cast<double>(to_micros(sim.now())) / 1e6;
  if (m.error.empty() && !eof) m.error = "no end of stream";
  if (m.error.empty() && received != sent)
    m.error = "received " + std::to_string(received) + " of " + std::to_string(sent);
  return m;
}

// A sends one pattern byte, B echoes it, A checks it and sends the next.
Measured weft_rr(bool offload) {
  SimDriver sim(2);
  Host& ha = sim.add_host(host_config(kA, 21, offload));
  Host& hb = sim.add_host(host_config(kB, 22, offload));
  TcpLayer& ta = ha.stack().tcp();
  TcpLayer& tb = hb.stack().tcp();

  Measured m;
  SocketId ca = 0, cb = 0;
  bool b_open = false, connected = false, done = false;
  std::uint64_t txn = 0, echoed = 0;  // transactions completed; bytes B echoed
  double t0 = 0;
  auto fail = [&](std::string e) {
    if (m.error.empty()) m.error = std::move(e);
  };
  auto send1 = [&](TcpLayer& t, SocketId s, std::uint8_t byte, Instant now) {
    auto r = t.send(s, std::span<const std::uint8_t>(&byte, 1), now);
    if (!r || *r != 1) fail("send failed");
  };

  const SocketId lis = tb.open();
  if (!tb.bind(lis, Endpoint{Ipv4Addr::any(), kPort}) || !tb.listen(lis, 8)) return failed("listen failed");
  hb.set_on_tcp_event([&](SocketId id, Instant now) {
    if (id == lis) {
      while (auto a = tb.accept(lis)) {
        cb = a->id;
        b_open = true;
        (void)tb.set_nodelay(cb, true, now);
      }
      return;
    }
    if (!b_open || id != cb) return;
    std::uint8_t byte = 0;
    for (;;) {
      auto r = tb.recv(cb, std::span<std::uint8_t>(&byte, 1), now);
      if (!r) {
        if (r.error() != std::errc::resource_unavailable_try_again) fail("B recv: " + errc_message(r.error()));
        break;
      }
      if (r->len == 0) break;
      if (byte != pattern()[echoed % kP]) fail("B got a wrong byte");
      ++echoed;
      send1(tb, cb, byte, now);
    }
  });
  ha.set_on_tcp_event([&](SocketId id, Instant now) {
    if (id != ca || done) return;
    if (!connected) {
      if ((ta.events(ca) & tcp_event::writable) == 0) return;
      connected = true;
      (void)ta.set_nodelay(ca, true, now);
      send1(ta, ca, pattern()[0], now);
    }
    std::uint8_t byte = 0;
    for (;;) {
      auto r = ta.recv(ca, std::span<std::uint8_t>(&byte, 1), now);
      if (!r) {
        if (r.error() != std::errc::resource_unavailable_try_again) fail("A recv: " + errc_message(r.error()));
        break;
      }
      if (r->len == 0) {
        fail("A: unexpected end of stream");
        break;
      }
      if (byte != pattern()[txn % kP]) fail("A got a wrong byte");
      ++txn;
      if ((txn & 255) == 0 && wall_now() - t0 > kRrBudgetS) {
        done = true;
        break;
      }
      send1(ta, ca, pattern()[txn % kP], now);
    }
  });

  t0 = wall_now();
  const double c0 = cpu_now();
  ca = ta.open();
  if (auto s = ta.connect(ca, Endpoint{kB, kPort}, sim.now()); !s) return failed("connect: " + errc_message(s.error()));
  run_sim(sim, [&] { return done || !m.error.empty() || wall_now() - t0 > kRrBudgetS + 30; });
  m.wall_s = wall_now() - t0;
  m.cpu_s = cpu_now() - c0;
  m.count = txn;
  m.segs = ta.counters().out_segs;
  m.retrans = ta.counters().retrans_segs;
  m.sim_s = static_cast<double>(to_micros(sim.now())) / 1e6;
  if (m.error.empty() && !done) m.error = "stalled after " + std::to_string(txn) + " transactions";
  return m;
}

// ---- kernel --------------------------------------------------------------

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// A port free on 127.0.0.1 at the moment of asking.
std::uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) close(fd);
    return 5201;
  }
  close(fd);
  return ntohs(a.sin_port);
}

struct Iperf {
  std::optional<double> bps;  // receiver's bits per second
  double host_cpu_pct = 0, remote_cpu_pct = 0;
  std::string note;
};

bool have_iperf3() { return std::system("command -v iperf3 >/dev/null 2>&1") == 0; }

Iperf kernel_iperf3() {
  Iperf out;
  if (!have_iperf3()) {
    out.note = "iperf3 not found (apt-get install iperf3): kernel bulk column skipped";
    return out;
  }
  const std::uint16_t port = free_port();
  const std::string port_s = std::to_string(port);
  const pid_t server = fork();
  if (server < 0) {
    out.note = "fork failed: kernel bulk column skipped";
    return out;
  }
  if (server == 0) {
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    execlp("iperf3", "iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", port_s.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // The server needs a moment to listen; a client that cannot connect
  // fails at once without reaching it, so retry.
  const std::string cmd =
      "iperf3 -c 127.0.0.1 -p " + port_s + " -t " + std::to_string(kIperfSeconds) + " --json 2>/dev/null";
  std::string text;
  for (int attempt = 0; attempt < 50; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    text.clear();
    if (std::FILE* p = popen(cmd.c_str(), "r")) {
      char chunk[4096];
      std::size_t n;
      while ((n = std::fread(chunk, 1, sizeof chunk, p)) > 0) text.append(chunk, n);
      const int rc = pclose(p);
      if (rc == 0) break;
    }
    int st = 0;
    if (waitpid(server, &st, WNOHANG) == server) break;  // the server is gone
  }
  try {
    const auto j = nlohmann::json::parse(text);
    if (j.contains("error")) {
      out.note = "iperf3: " + j["error"].get<std::string>();
    } else {
      out.bps = j.at("end").at("sum_received").at("bits_per_second").get<double>();
      const auto& cpu = j.at("end").at("cpu_utilization_percent");
      out.host_cpu_pct = cpu.value("host_total", 0.0);
      out.remote_cpu_pct = cpu.value("remote_total", 0.0);
    }
  } catch (const std::exception& e) {
    out.note = std::string("iperf3 output not understood: ") + e.what();
  }
  // -1: the server exits after its one test; make sure of it.
  for (int i = 0; i < 30; ++i) {
    int st = 0;
    if (waitpid(server, &st, WNOHANG) != 0) return out;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill(server, SIGTERM);
  waitpid(server, nullptr, 0);
  return out;
}

void set_nodelay_fd(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Blocking 1-byte ping-pong over 127.0.0.1: client in this thread, server
// in another.
Measured kernel_rr() {
  Measured m;
  const int lfd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  if (lfd < 0 || bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(lfd, 1) != 0 ||
      getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (lfd >= 0) close(lfd);
    m.error = std::string("listen: ") + std::strerror(errno);
    return m;
  }
  std::thread server([lfd] {
    const int fd = accept(lfd, nullptr, nullptr);
    if (fd < 0) return;
    set_nodelay_fd(fd);
    std::uint8_t b;
    while (recv(fd, &b, 1, 0) == 1)
      if (send(fd, &b, 1, 0) != 1) break;
    close(fd);
  });
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    m.error = std::string("connect: ") + std::strerror(errno);
  } else {
    set_nodelay_fd(fd);
    const double t0 = wall_now();
    const double c0 = cpu_now();
    std::uint64_t n = 0;
    for (;;) {
      const std::uint8_t out = pattern()[n % kP];
      std::uint8_t in = 0;
      if (send(fd, &out, 1, 0) != 1 || recv(fd, &in, 1, MSG_WAITALL) != 1) {
        m.error = std::string("send/recv: ") + std::strerror(errno);
        break;
      }
      if (in != out) {
        m.error = "wrong byte echoed";
        break;
      }
      ++n;
      if ((n & 1023) == 0 && wall_now() - t0 > kRrBudgetS) break;
    }
    m.wall_s = wall_now() - t0;
    m.cpu_s = cpu_now() - c0;  // the client thread only
    m.count = n;
  }
  if (fd >= 0) close(fd);  // the server sees EOF and ends
  server.join();
  close(lfd);
  return m;
}

std::string ratio(double weft, std::optional<double> kernel) {
  if (!kernel || *kernel <= 0) return "n/a";
  char s[32];
  std::snprintf(s, sizeof s, "%.3f", weft / *kernel);
  return s;
}

}  // namespace

int main() {
  signal(SIGPIPE, SIG_IGN);
  int failures = 0;

  std::printf("weft bulk A->B, up to %llu MiB or %.0f s each ...\n",
              static_cast<unsigned long long>(kBulkMaxBytes >> 20), kBulkBudgetS);
  std::fflush(stdout);
  const Measured bulk_c = weft_bulk(false);
  const Measured bulk_o = weft_bulk(true);
  std::printf("kernel bulk: iperf3 -c 127.0.0.1 -t %d ...\n", kIperfSeconds);
  std::fflush(stdout);
  const Iperf ip = kernel_iperf3();
  std::printf("weft 1-byte request/response, %.0f s each ...\n", kRrBudgetS);
  std::fflush(stdout);
  const Measured rr_c = weft_rr(false);
  const Measured rr_o = weft_rr(true);
  std::printf("kernel 1-byte request/response over 127.0.0.1, %.0f s ...\n\n", kRrBudgetS);
  std::fflush(stdout);
  const Measured rr_k = kernel_rr();

  const std::optional<double> kbps = ip.bps;
  std::printf("Bulk throughput (weft: one process, both hosts, simulated network, no impairments, MTU 1500)\n\n");
  std::printf(
      "| weft checksums | MiB moved | wall s | CPU s | weft Gbit/s | Gbit/s per CPU s | kernel Gbit/s | weft/kernel | "
      "bytes verified |\n");
  std::printf(
      "| -------------- | --------- | ------ | ----- | ----------- | ---------------- | ------------- | ----------- | "
      "-------------- |\n");
  for (const auto* r : {&bulk_c, &bulk_o}) {
    const bool off = r == &bulk_o;
    const double gbps = r->wall_s > 0 ? static_cast<double>(r->count) * 8 / r->wall_s / 1e9 : 0;
    const double per_cpu = r->cpu_s > 0 ? static_cast<double>(r->count) * 8 / r->cpu_s / 1e9 : 0;
    char kcol[32] = "n/a";
    if (kbps) std::snprintf(kcol, sizeof kcol, "%.2f", *kbps / 1e9);
    std::printf("| %-14s | %9.1f | %6.2f | %5.2f | %11.3f | %16.3f | %13s | %11s | %-14s |\n",
                off ? "offloaded" : "computed", static_cast<double>(r->count) / (1 << 20), r->wall_s, r->cpu_s, gbps,
                per_cpu, kcol, ratio(gbps * 1e9, kbps).c_str(), r->error.empty() ? "yes" : "FAILED");
    if (!r->error.empty()) {
      std::printf("  %s: %s\n", off ? "offloaded" : "computed", r->error.c_str());
      ++failures;
    }
  }
  for (const auto* r : {&bulk_c, &bulk_o})
    std::printf("weft %s: A sent %llu segments (%llu retransmitted), %.1f bytes/segment; simulated time %.3f s\n",
                r == &bulk_o ? "offloaded" : "computed ", static_cast<unsigned long long>(r->segs),
                static_cast<unsigned long long>(r->retrans),
                r->segs ? static_cast<double>(r->count) / static_cast<double>(r->segs) : 0.0, r->sim_s);
  if (kbps)
    std::printf(
        "\nkernel: iperf3 receiver %.2f Gbit/s over %d s; CPU: client %.0f%%, server %.0f%% (iperf3's "
        "cpu_utilization_percent); lo MTU is the kernel's (usually 65536)\n",
        *kbps / 1e9, kIperfSeconds, ip.host_cpu_pct, ip.remote_cpu_pct);
  if (!ip.note.empty()) std::printf("\nNOTE: %s\n", ip.note.c_str());

  std::optional<double> ktps;
  if (rr_k.error.empty() && rr_k.wall_s > 0) ktps = static_cast<double>(rr_k.count) / rr_k.wall_s;
  std::printf("\n1-byte request/response (nodelay on both ends)\n\n");
  std::printf(
      "| weft checksums | transactions | wall s | CPU s | weft trans/s | kernel trans/s | weft/kernel | bytes verified "
      "|\n");
  std::printf(
      "| -------------- | ------------ | ------ | ----- | ------------ | -------------- | ----------- | -------------- "
      "|\n");
  for (const auto* r : {&rr_c, &rr_o}) {
    const bool off = r == &rr_o;
    const double tps = r->wall_s > 0 ? static_cast<double>(r->count) / r->wall_s : 0;
    char kcol[32] = "n/a";
    if (ktps) std::snprintf(kcol, sizeof kcol, "%.0f", *ktps);
    std::printf("| %-14s | %12llu | %6.2f | %5.2f | %12.0f | %14s | %11s | %-14s |\n", off ? "offloaded" : "computed",
                static_cast<unsigned long long>(r->count), r->wall_s, r->cpu_s, tps, kcol, ratio(tps, ktps).c_str(),
                r->error.empty() ? "yes" : "FAILED");
    if (!r->error.empty()) {
      std::printf("  %s: %s\n", off ? "offloaded" : "computed", r->error.c_str());
      ++failures;
    }
  }
  for (const auto* r : {&rr_c, &rr_o})
    std::printf("weft %s: A sent %llu segments (%llu retransmitted); simulated time %.3f s\n",
                r == &rr_o ? "offloaded" : "computed ", static_cast<unsigned long long>(r->segs),
                static_cast<unsigned long long>(r->retrans), r->sim_s);
  if (ktps)
    std::printf(
        "\nkernel: %llu transactions in %.2f s, client thread CPU %.2f s (blocking send/recv, TCP_NODELAY, "
        "client and server threads)\n",
        static_cast<unsigned long long>(rr_k.count), rr_k.wall_s, rr_k.cpu_s);
  else
    std::printf("\nNOTE: kernel request/response failed: %s\n", rr_k.error.c_str());
  return failures == 0 ? 0 : 1;
}
