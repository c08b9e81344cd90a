// Two hosts on the simulated network: a client on A uses the TCP services
// of B (echo, discard, daytime, chargen) through the embedded socket API,
// driven only by readiness events, and checks every byte.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "host/sim_driver.hpp"
#include "sim_util.hpp"

using namespace weft;

namespace {

const Ipv4Addr kA(192, 0, 2, 1), kB(192, 0, 2, 2);

StackConfig host_config(Ipv4Addr a, std::uint64_t seed) {
  StackConfig c;
  c.address = Ipv4Cidr{a, 24};
  c.seed = seed;
  return c;
}

std::vector<std::uint8_t> pattern(std::size_t n, std::uint32_t salt) {
  std::vector<std::uint8_t> v(n);
  std::uint32_t x = 0x9e3779b9u ^ salt;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::uint8_t>(x);
  }
  return v;
}

// RFC 864's pattern from its first line: character c of line l is ' ' + (l + c) % 95.
std::vector<std::uint8_t> chargen_prefix(std::size_t n) {
  std::vector<std::uint8_t> v;
  v.reserve(n);
  for (std::uint32_t line = 0; v.size() < n; ++line) {
    for (std::uint32_t c = 0; c < 72 && v.size() < n; ++c)
      v.push_back(static_cast<std::uint8_t>(' ' + (line + c) % 95));
    if (v.size() < n) v.push_back('\r');
    if (v.size() < n) v.push_back('\n');
  }
  return v;
}

// An event-driven client on one socket: sends `out` (then shuts down its
// write side if asked), reads everything into `in` until end of stream.
struct Client {
  Host& host;
  SocketId id;
  std::vector<std::uint8_t> out;
  std::size_t sent = 0;
  bool shut_after_send = true;
  bool reading = true;  // false: leave received bytes in the socket (backpressure)
  std::size_t read_limit = SIZE_MAX;
  std::vector<std::uint8_t> in;
  bool connected = false, eof = false, shut = false, closed = false;
  std::optional<std::errc> error;
  std::vector<std::uint8_t> buf = std::vector<std::uint8_t>(32 * 1024);

  Client(Host& h, Endpoint to, Instant now) : host(h), id(h.stack().tcp().open()) {
    EXPECT_TRUE(h.stack().tcp().connect(id, to, now));
  }
  TcpLayer& tcp() { return host.stack().tcp(); }
  void pump(Instant now) {
    if (closed) return;
    const auto ev = tcp().events(id);
    if (ev & tcp_event::error) error = tcp().take_error(id);
    if (ev & tcp_event::writable) connected = true;
    while (connected && sent < out.size()) {
      auto r = tcp().send(id, std::span<const std::uint8_t>(out).subspan(sent), now);
      if (!r) break;
      sent += *r;
    }
    if (connected && sent == out.size() && shut_after_send && !shut) {
      EXPECT_TRUE(tcp().shutdown(id, Shutdown::write, now));
      shut = true;
    }
    while (reading && !eof && in.size() < read_limit) {
      auto r = tcp().recv(id, buf, now);
      if (!r) {
        if (r.error() != std::errc::resource_unavailable_try_again) error = r.error();
        break;
      }
      if (r->len == 0) {
        eof = true;
        break;
      }
      in.insert(in.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r->len));
    }
  }
  void close(Instant now) {
    EXPECT_TRUE(tcp().close(id, now));
    closed = true;
  }
};

struct TwoHosts {
  SimDriver sim;
  Host& a;
  Host& b;
  Client* client = nullptr;
  explicit TwoHosts(Impairments imp = {}, std::uint64_t seed = 3)
      : sim(seed, imp), a(sim.add_host(host_config(kA, seed * 2))), b(sim.add_host(host_config(kB, seed * 2 + 1))) {
    ServiceSet all;
    all.echo = all.discard = all.daytime = all.chargen = true;
    EXPECT_TRUE(b.start_services(all, [] { return std::string("Tuesday, February 22, 1982 17:37:43-PST"); }));
    a.set_on_tcp_event([this](SocketId id, Instant now) {
      if (client && client->id == id) client->pump(now);
    });
  }
  const TcpServiceCounters& svc(Service s) const { return b.tcp_services()->counters(s); }
  bool run(const std::function<bool()>& done, Duration limit = 120s) {
    return sim.run_while_not(done, sim.now() + limit);
  }
  std::uint64_t counter(const Host& h, const std::string& name) const {
    for (auto& [k, v] : h.all_counters())
      if (k == name) return v;
    ADD_FAILURE() << "no counter " << name;
    return 0;
  }
};

}  // namespace

TEST(TcpServicesSim, EchoReturnsOneMegabyteIntactThenCloses) {
  TwoHosts t;
  Client c(t.a, {kB, Port(7)}, t.sim.now());
  c.out = pattern(1 << 20, 7);
  t.client = &c;
  ASSERT_TRUE(t.run([&] { return c.eof || c.error; }));
  EXPECT_FALSE(c.error);
  ASSERT_EQ(c.in.size(), c.out.size());
  EXPECT_TRUE(c.in == c.out);
  c.close(t.sim.now());
  t.sim.run_for(1s);
  const auto& k = t.svc(Service::echo);
  EXPECT_EQ(k.connections, 1u);
  EXPECT_EQ(k.bytes_in, 1u << 20);
  EXPECT_EQ(k.bytes_out, 1u << 20);
  EXPECT_EQ(k.closed, 1u);
  EXPECT_EQ(k.active, 0u);
  // B closed second (after A's FIN): no TIME-WAIT there, only the listeners remain.
  EXPECT_EQ(t.counter(t.b, "tcp.sockets"), 4u);
  EXPECT_EQ(t.counter(t.b, "tcp.time_wait"), 0u);
  EXPECT_EQ(t.counter(t.a, "tcp.time_wait"), 1u);
}

TEST(TcpServicesSim, EchoStopsReadingWhileItsSendBufferIsFull) {
  TwoHosts t;
  Client c(t.a, {kB, Port(7)}, t.sim.now());
  c.out = pattern(4 << 20, 8);
  c.reading = false;  // A does not read: B's send buffer fills
  t.client = &c;
  t.sim.run_for(5s);
  // Everything stalls with bytes held only in the four TCP rings (A's send
  // ring and receive ring, B's receive ring and send ring): 4 x 256 KiB.
  const std::size_t ring = t.b.stack().tcp().config().sndbuf;
  EXPECT_LT(c.sent, c.out.size());
  EXPECT_LE(c.sent, 4 * ring);
  const auto& k = t.svc(Service::echo);
  EXPECT_GT(k.bytes_out, 0u);
  EXPECT_LE(k.bytes_out, 2 * ring) << "echo queued more than B's send ring and A's receive ring hold";
  EXPECT_EQ(k.bytes_in, k.bytes_out) << "echo consumed bytes it did not send";
  // Now A reads: everything comes back, in order.
  c.reading = true;
  c.pump(t.sim.now());
  ASSERT_TRUE(t.run([&] { return c.eof || c.error; }));
  EXPECT_FALSE(c.error);
  EXPECT_TRUE(c.in == c.out) << c.in.size() << " of " << c.out.size();
}

TEST(TcpServicesSim, EchoThroughLossAndReordering) {
  Impairments imp;
  imp.loss = 0.02;
  imp.reorder = 0.02;
  imp.delay = 5ms;
  imp.jitter = 1ms;
  TwoHosts t(imp, 11);
  Client c(t.a, {kB, Port(7)}, t.sim.now());
  c.out = pattern((1 << 20) / static_cast<std::size_t>(simtest::scale_divisor()), 9);
  t.client = &c;
  ASSERT_TRUE(t.run([&] { return c.eof || c.error; }, 600s));
  EXPECT_FALSE(c.error);
  EXPECT_TRUE(c.in == c.out) << c.in.size() << " of " << c.out.size();
  // The impairments really happened, and TCP repaired them.
  EXPECT_GT(t.sim.network().counters().lost, 0u);
  EXPECT_GT(t.counter(t.a, "tcp.retrans_segs") + t.counter(t.b, "tcp.retrans_segs"), 0u);
  std::printf(
      "echo of %zu bytes through 2%% loss took %.1f simulated s; ip.out_too_big A %llu B %llu; rto_expired A %llu B "
      "%llu\n",
      c.out.size(), std::chrono::duration<double>(t.sim.now().time_since_epoch()).count(),
      (unsigned long long)t.counter(t.a, "ip.out_too_big"), (unsigned long long)t.counter(t.b, "ip.out_too_big"),
      (unsigned long long)t.counter(t.a, "tcp.rto_expired"), (unsigned long long)t.counter(t.b, "tcp.rto_expired"));
}

TEST(TcpServicesSim, EchoLetsGoOfAConnectionThePeerResets) {
  TwoHosts t;
  Client c(t.a, {kB, Port(7)}, t.sim.now());
  c.out = pattern(1 << 20, 12);
  c.shut_after_send = false;
  c.reading = false;  // keep echo busy: its send buffer fills
  t.client = &c;
  t.sim.run_for(2s);
  EXPECT_EQ(t.svc(Service::echo).active, 1u);
  ASSERT_TRUE(t.a.stack().tcp().abort(c.id, t.sim.now()));  // RST
  c.closed = true;
  t.sim.run_for(2s);
  const auto& k = t.svc(Service::echo);
  EXPECT_EQ(k.resets, 1u);
  EXPECT_EQ(k.active, 0u);
  EXPECT_EQ(t.counter(t.b, "tcp.sockets"), 4u) << "the reset connection is still held";
}

TEST(TcpServicesSim, DiscardAcceptsOneMegabyte) {
  TwoHosts t;
  Client c(t.a, {kB, Port(9)}, t.sim.now());
  c.out = pattern(1 << 20, 10);
  t.client = &c;
  ASSERT_TRUE(t.run([&] { return c.eof || c.error; }));
  EXPECT_FALSE(c.error);
  EXPECT_TRUE(c.in.empty());
  EXPECT_EQ(c.sent, c.out.size());
  const auto& k = t.svc(Service::discard);
  EXPECT_EQ(k.bytes_in, 1u << 20);
  EXPECT_EQ(k.bytes_out, 0u);
  EXPECT_EQ(k.closed, 1u);
}

TEST(TcpServicesSim, DaytimeSendsTheTimeThenCloses) {
  TwoHosts t;
  Client c(t.a, {kB, Port(13)}, t.sim.now());
  c.shut_after_send = false;
  t.client = &c;
  ASSERT_TRUE(t.run([&] { return c.eof || c.error; }));
  EXPECT_FALSE(c.error);
  EXPECT_EQ(std::string(c.in.begin(), c.in.end()), "Tuesday, February 22, 1982 17:37:43-PST\r\n");
  c.close(t.sim.now());
  t.sim.run_for(1s);
  EXPECT_EQ(t.svc(Service::daytime).connections, 1u);
  EXPECT_EQ(t.svc(Service::daytime).closed, 1u);
  // B closed first: its side waits in TIME-WAIT (2 MSL), then goes.
  EXPECT_EQ(t.counter(t.b, "tcp.time_wait"), 1u);
  t.sim.run_for(2 * t.b.stack().tcp().config().msl + 1s);
  EXPECT_EQ(t.counter(t.b, "tcp.time_wait"), 0u);
  EXPECT_EQ(t.counter(t.b, "tcp.sockets"), 4u);
}

TEST(TcpServicesSim, ChargenStreamsThePatternUntilTheClientCloses) {
  TwoHosts t;
  Client c(t.a, {kB, Port(19)}, t.sim.now());
  c.shut_after_send = false;
  c.read_limit = 100 * 1024;
  t.client = &c;
  ASSERT_TRUE(t.run([&] { return c.in.size() >= c.read_limit || c.error || c.eof; }));
  EXPECT_FALSE(c.error);
  EXPECT_FALSE(c.eof);
  const auto want = chargen_prefix(c.in.size());
  EXPECT_TRUE(c.in == want);
  // The client closes with bytes unread: a RST (RFC 2525 §2.17); chargen
  // sees the reset and lets go of the connection.
  c.close(t.sim.now());
  t.sim.run_for(2s);
  const auto& k = t.svc(Service::chargen);
  EXPECT_EQ(k.connections, 1u);
  EXPECT_EQ(k.active, 0u);
  EXPECT_EQ(k.resets, 1u);
  EXPECT_GE(k.bytes_out, c.in.size());
  EXPECT_EQ(t.counter(t.b, "tcp.sockets"), 4u);
}

TEST(TcpServicesSim, ManyClientsAtOnceEachGetTheirOwnBytes) {
  TwoHosts t;
  const int kClients = 50;
  std::vector<std::unique_ptr<Client>> cs;
  std::unordered_map<SocketId, Client*> by_id;
  for (int i = 0; i < kClients; ++i) {
    cs.push_back(std::make_unique<Client>(t.a, Endpoint{kB, Port(7)}, t.sim.now()));
    cs.back()->out = pattern(20000 + 1000 * static_cast<std::size_t>(i), static_cast<std::uint32_t>(100 + i));
    by_id[cs.back()->id] = cs.back().get();
  }
  t.a.set_on_tcp_event([&](SocketId id, Instant now) {
    if (auto it = by_id.find(id); it != by_id.end()) it->second->pump(now);
  });
  ASSERT_TRUE(t.run([&] {
    for (auto& c : cs)
      if (!c->eof && !c->error) return false;
    return true;
  }));
  for (auto& c : cs) {
    EXPECT_FALSE(c->error);
    EXPECT_TRUE(c->in == c->out);
  }
  EXPECT_EQ(t.svc(Service::echo).connections, static_cast<std::uint64_t>(kClients));
  EXPECT_EQ(t.svc(Service::echo).active, 0u);
}

// Known TCP bug (src/tcp, reported, not fixed on this branch): a full-size
// data segment that also carries SACK blocks is MSS data bytes plus a
// header of 20 + 12 (timestamps) + 12..28 (SACK) bytes, over the MTU. IP
// refuses it (DF set; ip.out_too_big), TcpLayer ignores send_ip's result
// and counts the segment as sent, so it is lost inside the host and only an
// RTO or a fast retransmit (which may carry SACK blocks again) repairs it.
// RFC 9293 §3.7.1 / RFC 6691: the data must shrink by the options' size.
// Enable once output.cpp subtracts the options actually sent.
TEST(TcpServicesSim, NoSegmentExceedsTheMtuWhenSackBlocksAreSent) {
  Impairments imp;
  imp.loss = 0.02;
  imp.delay = 5ms;
  TwoHosts t(imp, 11);
  Client c(t.a, {kB, Port(7)}, t.sim.now());
  c.out = pattern(1 << 20, 9);
  t.client = &c;
  ASSERT_TRUE(t.run([&] { return c.eof || c.error; }, 600s));
  EXPECT_TRUE(c.in == c.out);
  EXPECT_EQ(t.counter(t.a, "ip.out_too_big"), 0u);
  EXPECT_EQ(t.counter(t.b, "ip.out_too_big"), 0u);
}
