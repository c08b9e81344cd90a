// Two whole Hosts joined by UdpTunnelLinks over 127.0.0.1, in one thread on
// the real monotonic clock: a 2 MB TCP transfer through the embedded socket
// API (listen/accept on one side, connect on the other) and a UDP echo
// (RFC 862) against the other host's services, every byte checked. The
// loop steps both hosts, then waits in poll() on both tunnel sockets until
// the earlier of their deadlines, as run_event_loop() does for one host.
#include <poll.h>

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "host/event_loop.hpp"
#include "host/host.hpp"
#include "link/udp_tunnel.hpp"
#include "link_packets.hpp"

using namespace weft;

namespace {

const Ipv4Addr kA(192, 0, 2, 10), kB(192, 0, 2, 20);
const Port kSinkPort{5001};
constexpr std::size_t kBytes = 2 * 1000 * 1000;
// A failure guard, not an expectation: the exchange takes well under a
// second on loopback.
constexpr Duration kDeadline = 30s;

std::vector<std::uint8_t> pattern(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  std::uint32_t x = 0x2545f491u;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::uint8_t>(x);
  }
  return v;
}

StackConfig config(Ipv4Addr a, std::uint64_t seed) {
  StackConfig c;
  c.address = Ipv4Cidr{a, 24};
  c.mtu = UdpTunnelLink::kDefaultMtu;
  c.seed = seed;
  return c;
}

bool would_block(std::errc e) { return e == std::errc::resource_unavailable_try_again; }

}  // namespace

TEST(UdpTunnelHosts, TcpTransferAndUdpEchoBetweenTwoHosts) {
  auto la = UdpTunnelLink::open({Ipv4Addr(127, 0, 0, 1), Port{0}}, {});
  auto lb = UdpTunnelLink::open({Ipv4Addr(127, 0, 0, 1), Port{0}}, {});
  ASSERT_TRUE(la && lb);
  UdpTunnelLink& a_link = *la.value();
  UdpTunnelLink& b_link = *lb.value();
  ASSERT_TRUE(a_link.add_peer({kB, b_link.local_endpoint()}));
  ASSERT_TRUE(b_link.add_peer({kA, a_link.local_endpoint()}));

  Host a(config(kA, 1), a_link), b(config(kB, 2), b_link);
  ServiceSet echo;
  echo.echo = true;
  ASSERT_TRUE(b.start_services(echo, [] { return std::string(); }));
  Instant now = monotonic_now();

  // B: a sink on port 5001 that reads until end of stream.
  TcpLayer& btcp = b.stack().tcp();
  SocketId listener = btcp.open();
  ASSERT_TRUE(btcp.bind(listener, {kB, kSinkPort}));
  ASSERT_TRUE(btcp.listen(listener, 4));
  std::optional<SocketId> conn;
  std::vector<std::uint8_t> received;
  bool eof = false;
  std::optional<std::errc> server_error;
  std::vector<std::uint8_t> rbuf(64 * 1024);

  // A: a client that sends kBytes, then shuts down its write side.
  TcpLayer& atcp = a.stack().tcp();
  const std::vector<std::uint8_t> out = pattern(kBytes);
  std::size_t sent = 0;
  bool shut = false;
  std::optional<std::errc> client_error;
  SocketId client = atcp.open();
  ASSERT_TRUE(atcp.connect(client, {kB, kSinkPort}, now));

  // A: one UDP datagram to B's echo service, resent every 200 ms until the
  // echo comes back.
  UdpLayer& audp = a.stack().udp();
  SocketId usock = audp.open();
  ASSERT_TRUE(audp.connect(usock, {kB, Port{7}}));
  const std::string ping = "hello through the tunnel";
  std::string echoed;
  Instant last_ping{};

  // Readiness is polled every round rather than tracked through
  // set_on_tcp_event: a few idle calls per round are cheap and cannot miss
  // an edge.
  auto pump = [&](Instant t) {
    if (atcp.events(client) & tcp_event::error) client_error = atcp.take_error(client);
    while (sent < out.size()) {
      auto r = atcp.send(client, std::span(out).subspan(sent), t);
      if (!r) {
        if (!would_block(r.error())) client_error = r.error();
        break;
      }
      sent += *r;
    }
    if (sent == out.size() && !shut) {
      EXPECT_TRUE(atcp.shutdown(client, Shutdown::write, t));
      shut = true;
    }
    if (!conn) {
      if (auto acc = btcp.accept(listener)) conn = acc->id;
    }
    while (conn && !eof) {
      auto r = btcp.recv(*conn, rbuf, t);
      if (!r) {
        if (!would_block(r.error())) server_error = r.error();
        break;
      }
      if (r->len == 0) {
        eof = true;
        break;
      }
      received.insert(received.end(), rbuf.begin(), rbuf.begin() + static_cast<std::ptrdiff_t>(r->len));
    }
    if (echoed.empty()) {
      std::vector<std::uint8_t> ubuf(2048);
      if (auto r = audp.recv_from(usock, ubuf); r) {
        echoed.assign(ubuf.begin(), ubuf.begin() + static_cast<std::ptrdiff_t>(r->len));
      } else if (t - last_ping >= 200ms) {
        EXPECT_TRUE(audp.send_to(usock, std::span(reinterpret_cast<const std::uint8_t*>(ping.data()), ping.size()),
                                 std::nullopt, t));
        last_ping = t;
      }
    }
  };

  const Instant give_up = now + kDeadline;
  auto done = [&] { return (eof && !echoed.empty()) || client_error || server_error; };
  while (!done() && now < give_up) {
    a.step(now);
    b.step(now);
    pump(now);
    a.step(now);  // send what pump() queued without waiting for a wakeup
    b.step(now);
    std::optional<Instant> d = a.next_deadline();
    if (auto db = b.next_deadline(); db && (!d || *db < *d)) d = db;
    // Wake at least every 10 ms: the UDP resend above has no deadline of
    // its own in the hosts.
    Duration wait = 10ms;
    if (d) wait = std::clamp(*d - monotonic_now(), Duration::zero(), wait);
    pollfd fds[2] = {{a_link.poll_fd(), POLLIN, 0}, {b_link.poll_fd(), POLLIN, 0}};
    ::poll(fds, 2, static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count()));
    now = monotonic_now();
  }

  EXPECT_FALSE(client_error) << errc_message(*client_error);
  EXPECT_FALSE(server_error) << errc_message(*server_error);
  ASSERT_TRUE(eof) << "sent " << sent << ", received " << received.size() << " before the deadline";
  ASSERT_EQ(received.size(), out.size());
  EXPECT_TRUE(received == out);
  EXPECT_EQ(echoed, ping);

  // Nothing on the tunnel was malformed or from a stranger, and nothing was
  // sent to an address without a peer.
  for (const UdpTunnelLink* l : {&a_link, &b_link}) {
    EXPECT_EQ(l->counters().rx_unknown_source, 0u);
    EXPECT_EQ(l->counters().rx_malformed, 0u);
    EXPECT_EQ(l->counters().tx_no_peer, 0u);
    EXPECT_EQ(l->counters().tx_too_big, 0u);
  }
  EXPECT_GT(b_link.counters().rx_bytes, kBytes);
  // Every packet the host handed over and the link took became one datagram.
  EXPECT_EQ(a.link_counters().tx_packets, a_link.counters().tx_packets);
}

// An event loop passes step() whether its poll saw the link readable. Told
// "not readable", the host still reads what is left of a burst larger than
// one step takes (Host::kRxBatch): the kernel socket still holds it, and the
// link may hold part of it already fetched. Nothing is left behind.
TEST(UdpTunnelHosts, AStepToldTheLinkIsQuietStillTakesWhatIsLeftOfABurst) {
  auto la = UdpTunnelLink::open({Ipv4Addr(127, 0, 0, 1), Port{0}}, {});
  auto lb = UdpTunnelLink::open({Ipv4Addr(127, 0, 0, 1), Port{0}}, {});
  ASSERT_TRUE(la && lb);
  ASSERT_TRUE(la.value()->add_peer({kB, lb.value()->local_endpoint()}));
  ASSERT_TRUE(lb.value()->add_peer({kA, la.value()->local_endpoint()}));
  Host a(config(kA, 1), *la.value());
  constexpr int kBurst = Host::kRxBatch + 44;
  const std::uint8_t payload[4] = {1, 2, 3, 4};
  for (int i = 0; i < kBurst; ++i) {
    auto p = test::udp(kB, kA, 4000, 9, payload, static_cast<std::uint16_t>(i));
    ASSERT_TRUE(lb.value()->send(p, Instant{}));
  }
  // Loopback delivery is done when sendto() returns on Linux; the pause is
  // only a margin.
  ::poll(nullptr, 0, 50);
  Instant now = monotonic_now();
  a.step(now, true);
  EXPECT_EQ(a.stack().ip_counters().in_receives, static_cast<std::uint64_t>(Host::kRxBatch));
  ASSERT_TRUE(a.next_deadline());
  EXPECT_LE(*a.next_deadline(), now) << "a backlog is work due now";
  a.step(now, false);
  EXPECT_EQ(a.stack().ip_counters().in_receives, static_cast<std::uint64_t>(kBurst));
  EXPECT_EQ(la.value()->counters().rx_packets, static_cast<std::uint64_t>(kBurst));
  // Quiet now: a step told so makes no read, and has nothing to read anyway.
  a.step(now, false);
  EXPECT_EQ(a.stack().ip_counters().in_receives, static_cast<std::uint64_t>(kBurst));
}
