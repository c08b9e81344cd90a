// weft ping: ICMP echo from the weft host (WEFT_HOST), through an ICMP
// socket as Linux ping sockets work (we write type 8 + sequence + data, the
// host fills in the identifier; replies come back as type 0 + sequence +
// data, the TTL from weft_last_ttl). Output and statistics as iputils ping:
//
//   PING 192.0.2.20 (192.0.2.20) 56(84) bytes of data.
//   64 bytes from 192.0.2.20: icmp_seq=1 ttl=64 time=0.412 ms
//
//   --- 192.0.2.20 ping statistics ---
//   3 packets transmitted, 3 received, 0% packet loss, time 2003ms
//   rtt min/avg/max/mdev = 0.301/0.412/0.530/0.093 ms
//
// Without -c it runs until SIGINT, which (like the end of -c) prints the
// statistics. Exit 0 if any reply came, 1 if none; 2 for bad arguments.
#include <netinet/in.h>
#include <poll.h>
#include <sys/time.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <memory>
#include <vector>

#include "cli.hpp"
#include "client/weft.h"
#include "client_util.hpp"

namespace weft::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct PingOptions {
  long count = 0;  // 0: until SIGINT
  double interval = 1;
  long size = 56;
  double timeout = 10;  // -W: wait for replies after the last request
  std::string host;
};

volatile std::sig_atomic_t g_interrupted = 0;
void on_sigint(int) { g_interrupted = 1; }

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// iputils' rounding: 3 significant-ish digits, fewer decimals as it grows.
std::string format_rtt(long long us) {
  if (us >= 100000 - 50) return fmt::format("{}", (us + 500) / 1000);
  if (us >= 10000 - 5) return fmt::format("{}.{:01}", (us + 50) / 1000, ((us + 50) % 1000) / 100);
  if (us >= 1000) return fmt::format("{}.{:02}", (us + 5) / 1000, ((us + 5) % 1000) / 10);
  return fmt::format("{}.{:03}", us / 1000, us % 1000);
}

std::string ms3(long long us) { return fmt::format("{}.{:03}", us / 1000, us % 1000); }

struct Stats {
  long transmitted = 0, received = 0, duplicates = 0, errors = 0;
  long long tmin = 0, tmax = 0, tsum = 0, tsum2 = 0;  // microseconds, over replies and duplicates
  void add_rtt(long long us) {
    long n = received + duplicates;  // already counted this one
    if (n == 1 || us < tmin) tmin = us;
    if (n == 1 || us > tmax) tmax = us;
    tsum += us;
    tsum2 += us * us;
  }
};

void print_summary(const std::string& host, const Stats& st, Clock::duration elapsed) {
  std::printf("\n--- %s ping statistics ---\n", host.c_str());
  std::string line = fmt::format("{} packets transmitted, {} received", st.transmitted, st.received);
  if (st.duplicates) line += fmt::format(", +{} duplicates", st.duplicates);
  if (st.errors) line += fmt::format(", +{} errors", st.errors);
  if (st.transmitted) {
    char loss[32];
    std::snprintf(loss, sizeof loss, "%g", static_cast<float>((st.transmitted - st.received) * 100.0 / st.transmitted));
    auto ms = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
    line += fmt::format(", {}% packet loss, time {}ms", loss, (ms + 500) / 1000);
  }
  std::printf("%s\n", line.c_str());
  if (st.received) {
    long long total = st.received + st.duplicates;
    long long avg = st.tsum / total;
    // iputils' order of operations, which keeps small times exact.
    long long var = (st.tsum2 - st.tsum * st.tsum / total) / total;
    auto mdev = static_cast<long long>(std::sqrt(static_cast<double>(var > 0 ? var : 0)));
    std::printf("rtt min/avg/max/mdev = %s/%s/%s/%s ms\n", ms3(st.tmin).c_str(), ms3(avg).c_str(), ms3(st.tmax).c_str(),
                ms3(mdev).c_str());
  }
  std::fflush(stdout);
}

int run_ping(const PingOptions& o, bool count_given) {
  if (count_given && o.count < 1) usage_error(fmt::format("-c: {} is not a count >= 1", o.count));
  if (!(o.interval >= 0.001 && o.interval <= 1e6))
    usage_error(fmt::format("-i: {} is not an interval >= 0.001 s", o.interval));
  if (o.size < 0 || o.size > 65507) usage_error(fmt::format("-s: {} is not a size 0-65507", o.size));
  if (!(o.timeout > 0 && o.timeout <= 1e6))
    usage_error(fmt::format("-W: {} is not a number of seconds > 0", o.timeout));
  in_addr dst = parse_ipv4_arg("HOST", o.host);
  sockaddr_in to = make_sockaddr(dst, 0);
  std::string host = addr_string(dst);

  // SIGINT ends the run with the statistics. It is blocked except inside
  // ppoll, so it cannot slip in between the check and the wait.
  sigset_t block, waitmask;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  ::sigprocmask(SIG_BLOCK, &block, &waitmask);
  sigdelset(&waitmask, SIGINT);
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  ::sigaction(SIGINT, &sa, nullptr);

  ensure_std_fds();
  int fd = weft_socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, IPPROTO_ICMP);
  if (fd < 0) socket_fail(errno);
  WeftFd sock(fd);

  std::printf("PING %s (%s) %ld(%ld) bytes of data.\n", host.c_str(), host.c_str(), o.size, o.size + 28);
  std::fflush(stdout);

  // The request: header, then (as iputils) the send time and a byte pattern.
  std::vector<std::uint8_t> req(8 + static_cast<std::size_t>(o.size));
  req[0] = 8;  // echo request; code, checksum and identifier are the host's
  for (std::size_t i = 8 + sizeof(timeval); i < req.size(); ++i) req[i] = static_cast<std::uint8_t>(i - 8);
  std::vector<std::uint8_t> rep(8 + 65536);
  // RTT comes from this table of send times rather than from the timestamp
  // echoed in the data: a reply's data is the peer's to corrupt, the table
  // is ours. The data is still checked against what was sent, as iputils
  // does, so a peer that garbles it is seen.
  struct Slot {
    Clock::time_point sent{};
    bool outstanding = false;  // sent, no reply yet
    bool used = false;         // sent at all (later replies are duplicates)
  };
  std::vector<Slot> slots(65536);

  Stats st;
  auto start = Clock::now();
  auto last_send = start;
  auto next_send = start;
  long outstanding = 0;
  for (;;) {
    if (g_interrupted) break;
    auto now = Clock::now();
    bool more = !o.count || st.transmitted < o.count;
    if (more && now >= next_send) {
      auto seq = static_cast<std::uint16_t>(st.transmitted + 1);
      req[6] = static_cast<std::uint8_t>(seq >> 8);
      req[7] = static_cast<std::uint8_t>(seq);
      if (req.size() >= 8 + sizeof(timeval)) {
        timeval tv{};
        ::gettimeofday(&tv, nullptr);
        std::memcpy(req.data() + 8, &tv, sizeof tv);
      }
      Slot& s = slots[seq];
      if (s.outstanding) --outstanding;  // 65536 requests ago, never answered
      s = Slot{now, true, true};
      ++outstanding;
      ++st.transmitted;
      last_send = now;
      next_send += seconds(o.interval);
      if (next_send < now) next_send = now;  // we fell behind (a stopped process): no burst
      if (weft_sendto(fd, req.data(), req.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) < 0) {
        std::fprintf(stderr, "weft ping: sendto %s: %s\n", host.c_str(), std::strerror(errno));
        ++st.errors;
      }
      more = !o.count || st.transmitted < o.count;
    }
    // After the last request: until every one is answered, or -W has passed.
    Clock::time_point wake = next_send;
    if (!more) {
      if (outstanding == 0) break;
      wake = last_send + seconds(o.timeout);
      if (now >= wake) break;
    }
    auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(wake - Clock::now());
    if (left.count() < 0) left = left.zero();
    timespec ts{static_cast<time_t>(left.count() / 1000000000), static_cast<long>(left.count() % 1000000000)};
    pollfd p{fd, POLLIN, 0};
    int n = ::ppoll(&p, 1, &ts, &waitmask);
    if (n < 0 && errno != EINTR) sys_fail("poll", errno);
    if (n <= 0) continue;
    for (;;) {
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      ssize_t len = weft_recvfrom(fd, rep.data(), rep.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl);
      auto got = Clock::now();
      if (len < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == ENETDOWN) sys_fail("recv", errno);  // the host went away
        // An error the host reports for one of our requests (no route ...).
        std::fprintf(stderr, "weft ping: %s: %s\n", host.c_str(), std::strerror(errno));
        ++st.errors;
        continue;
      }
      if (len < 8 || rep[0] != 0) continue;
      auto seq = static_cast<std::uint16_t>((rep[6] << 8) | rep[7]);
      Slot& s = slots[seq];
      if (!s.used) continue;  // not a sequence number we sent
      bool dup = !s.outstanding;
      if (dup) {
        ++st.duplicates;
      } else {
        s.outstanding = false;
        --outstanding;
        ++st.received;
      }
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(got - s.sent).count();
      st.add_rtt(us);
      std::printf("%zd bytes from %s: icmp_seq=%u ttl=%d time=%s ms%s\n", len, addr_string(from.sin_addr).c_str(),
                  static_cast<unsigned>(seq), weft_last_ttl(fd), format_rtt(us).c_str(), dup ? " (DUP!)" : "");
      // RFC 792: the echoer returns the data unchanged. The pattern after
      // the timestamp must come back as sent (the timestamp itself is the
      // sequence's own and not compared).
      for (std::size_t i = 8 + sizeof(timeval); i < req.size() && i < static_cast<std::size_t>(len); ++i) {
        if (rep[i] != req[i]) {
          std::printf("wrong data byte #%zu should be 0x%x but was 0x%x\n", i - 8, static_cast<unsigned>(req[i]),
                      static_cast<unsigned>(rep[i]));
          break;
        }
      }
      std::fflush(stdout);
    }
  }
  print_summary(host, st, last_send - start);
  return st.received > 0 ? 0 : 1;
}

}  // namespace

Command add_ping_command(CLI::App& root) {
  auto o = std::make_shared<PingOptions>();
  auto count_given = std::make_shared<bool>(false);
  CLI::App* app = root.add_subcommand("ping", "ICMP echo from the weft host (WEFT_HOST)");
  app->add_option("-c,--count", o->count, "stop after COUNT requests (default: until SIGINT)")
      ->each([count_given](const std::string&) { *count_given = true; });
  app->add_option("-i,--interval", o->interval, "seconds between requests (default 1)");
  app->add_option("-s,--size", o->size, "data bytes per request (default 56)");
  app->add_option("-W,--timeout", o->timeout, "seconds to wait for replies after the last request (default 10)");
  app->add_option("host", o->host, "the address to ping (dotted IPv4)")->required();
  return Command{app, [o, count_given] { return run_ping(*o, *count_given); }};
}

}  // namespace weft::cli
