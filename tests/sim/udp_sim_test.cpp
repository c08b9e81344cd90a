// Two hosts on the simulated network exchange UDP through loss, duplication
// and reordering; every datagram that arrives must reach the right socket,
// intact, and the network's impairment counters must match its settings.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>
#include <vector>

#include "host/sim_driver.hpp"
#include "sim_util.hpp"

using namespace weft;

namespace {

StackConfig host_config(Ipv4Addr a, std::uint64_t seed) {
  StackConfig c;
  c.address = Ipv4Cidr{a, 24};
  c.seed = seed;
  return c;
}

// Payload: [client index u16][server port u16][seq u32][filler derived from all three].
std::vector<std::uint8_t> make_payload(std::uint16_t client, std::uint16_t port, std::uint32_t seq) {
  std::size_t len = 8 + (seq * 37 + client) % 600;
  std::vector<std::uint8_t> p(len);
  std::memcpy(&p[0], &client, 2);
  std::memcpy(&p[2], &port, 2);
  std::memcpy(&p[4], &seq, 4);
  for (std::size_t i = 8; i < len; ++i) p[i] = static_cast<std::uint8_t>(i * 31 + seq * 7 + client * 3 + port);
  return p;
}

struct Decoded {
  std::uint16_t client, port;
  std::uint32_t seq;
  bool intact;
};
// Reads the header back and checks the rest against what was sent.
Decoded decode(std::span<const std::uint8_t> got) {
  Decoded d{};
  if (got.size() < 8) return d;
  std::memcpy(&d.client, &got[0], 2);
  std::memcpy(&d.port, &got[2], 2);
  std::memcpy(&d.seq, &got[4], 4);
  auto want = make_payload(d.client, d.port, d.seq);
  d.intact = got.size() == want.size() && std::memcmp(got.data(), want.data(), want.size()) == 0;
  return d;
}

}  // namespace

TEST(UdpSim, HundredThousandDatagramsThroughLossDuplicationReordering) {
  const int kDatagrams = 100000 / simtest::scale_divisor();
  Impairments imp;
  imp.loss = 0.10;
  imp.duplicate = 0.10;
  imp.reorder = 0.10;
  imp.delay = 2ms;
  imp.jitter = 1ms;
  SimDriver sim(7, imp);
  const Ipv4Addr a(192, 0, 2, 1), b(192, 0, 2, 2);
  Host& ha = sim.add_host(host_config(a, 1));
  Host& hb = sim.add_host(host_config(b, 2));

  // Four servers on B, on distinct ports; eight clients on A.
  const std::uint16_t ports[] = {7001, 7002, 7003, 53};
  std::map<SocketId, std::uint16_t> server_port;
  for (auto p : ports) {
    SocketId s = hb.stack().udp().open();
    ASSERT_TRUE(hb.stack().udp().bind(s, {Ipv4Addr::any(), Port(p)}));
    server_port[s] = p;
  }
  std::vector<SocketId> clients;
  for (int i = 0; i < 8; ++i) clients.push_back(ha.stack().udp().open());

  std::set<std::uint64_t> seen;  // (client, seq) that arrived at least once
  std::uint64_t arrivals = 0, wrong = 0;
  std::vector<std::uint8_t> buf(2048);
  hb.set_on_udp_readable([&](SocketId s, Instant) {
    while (auto r = hb.stack().udp().recv_from(s, buf)) {
      ++arrivals;
      auto d = decode(std::span<const std::uint8_t>(buf).first(r->len));
      bool right_socket = server_port.at(s) == d.port;
      bool right_source = d.client < clients.size() && r->from.addr == a &&
                          r->from.port == ha.stack().udp().local_endpoint(clients[d.client])->port;
      if (!d.intact || !right_socket || !right_source) ++wrong;
      seen.insert((std::uint64_t{d.client} << 32) | d.seq);
    }
  });

  // Paced: 100 datagrams per simulated millisecond.
  for (int sent = 0; sent < kDatagrams;) {
    for (int k = 0; k < 100 && sent < kDatagrams; ++k, ++sent) {
      std::uint16_t client = static_cast<std::uint16_t>(sent % clients.size());
      std::uint16_t port = ports[(sent / 8) % 4];
      auto p = make_payload(client, port, static_cast<std::uint32_t>(sent));
      ASSERT_TRUE(ha.stack().udp().send_to(clients[client], p, Endpoint{b, Port(port)}, sim.now()));
    }
    sim.run_for(1ms);
  }
  sim.run_for(1s);

  EXPECT_EQ(wrong, 0u);
  const double delivered = static_cast<double>(seen.size()) / kDatagrams;
  EXPECT_GE(delivered, 0.85) << seen.size() << " of " << kDatagrams;
  auto& c = sim.network().counters();
  const double n = static_cast<double>(c.sent);
  EXPECT_EQ(c.sent, static_cast<std::uint64_t>(kDatagrams));
  // Each rate within 1.5 percentage points at 100k (3 at the reduced 10k).
  const double tol = simtest::scale_divisor() == 1 ? 0.015 : 0.03;
  EXPECT_NEAR(c.lost / n, 0.10, tol);
  EXPECT_NEAR(c.duplicated / n, 0.10, tol);
  EXPECT_NEAR(c.reordered / n, 0.10, tol);
  EXPECT_EQ(c.corrupted, 0u);
  // What arrived at B is exactly what the network delivered.
  EXPECT_EQ(arrivals, c.delivered);
  EXPECT_EQ(hb.stack().udp().counters().in_datagrams, c.delivered);
  EXPECT_EQ(hb.stack().udp().counters().rcvbuf_errors, 0u);
}

TEST(UdpSim, CorruptedDatagramsAreCaughtByChecksums) {
  const int kDatagrams = 20000 / simtest::scale_divisor();
  Impairments imp;
  imp.corrupt = 0.2;
  SimDriver sim(11, imp);
  const Ipv4Addr a(192, 0, 2, 1), b(192, 0, 2, 2);
  Host& ha = sim.add_host(host_config(a, 1));
  Host& hb = sim.add_host(host_config(b, 2));
  SocketId srv = hb.stack().udp().open();
  ASSERT_TRUE(hb.stack().udp().bind(srv, {Ipv4Addr::any(), Port(9000)}));
  SocketId cli = ha.stack().udp().open();
  std::uint64_t good = 0, bad = 0;
  std::vector<std::uint8_t> buf(2048);
  hb.set_on_udp_readable([&](SocketId s, Instant) {
    while (auto r = hb.stack().udp().recv_from(s, buf)) {
      if (decode(std::span<const std::uint8_t>(buf).first(r->len)).intact)
        ++good;
      else
        ++bad;
    }
  });
  for (int sent = 0; sent < kDatagrams;) {
    for (int k = 0; k < 50 && sent < kDatagrams; ++k, ++sent)
      ASSERT_TRUE(ha.stack().udp().send_to(cli, make_payload(0, 9000, sent), Endpoint{b, Port(9000)}, sim.now()));
    sim.run_for(1ms);
  }
  sim.run_for(1s);
  auto& c = sim.network().counters();
  EXPECT_EQ(bad, 0u) << "a corrupted datagram reached the application";
  EXPECT_NEAR(static_cast<double>(c.corrupted) / kDatagrams, 0.2, 0.02);
  EXPECT_EQ(good + c.corrupted, static_cast<std::uint64_t>(kDatagrams)) << "only corrupted ones may be missing";
  // Every corrupted packet was dropped somewhere and counted: IP header
  // checksum, UDP checksum, or misdelivery (a flipped address/port).
  auto all = hb.all_counters();
  std::uint64_t dropped = 0;
  for (auto& [k, v] : all)
    if (k == "ip.in_bad_checksum" || k == "udp.bad_checksum" || k == "ip.in_bad_total_len" ||
        k == "ip.in_bad_header_len" || k == "ip.in_unsupported" || k == "ip.in_not_for_us" || k == "udp.bad_length" ||
        k == "ip.in_truncated" || k == "ip.in_martian" || k == "udp.no_ports" || k == "ip.in_unknown_protocol" ||
        k == "ip.in_fragments")
      dropped += v;
  std::uint64_t no_route = c.no_route;
  EXPECT_EQ(dropped + no_route, c.corrupted);
}

TEST(UdpSim, SameSeedSameOutcome) {
  auto run = [](std::uint64_t seed) {
    Impairments imp;
    imp.loss = 0.2;
    imp.reorder = 0.2;
    imp.delay = 1ms;
    imp.jitter = 500us;
    SimDriver sim(seed, imp);
    Host& ha = sim.add_host(host_config(Ipv4Addr(192, 0, 2, 1), seed));
    Host& hb = sim.add_host(host_config(Ipv4Addr(192, 0, 2, 2), seed + 1));
    SocketId srv = hb.stack().udp().open();
    EXPECT_TRUE(hb.stack().udp().bind(srv, {Ipv4Addr::any(), Port(9000)}));
    SocketId cli = ha.stack().udp().open();
    std::vector<std::uint32_t> order;
    std::vector<std::uint8_t> buf(2048);
    hb.set_on_udp_readable([&](SocketId s, Instant) {
      while (auto r = hb.stack().udp().recv_from(s, buf)) {
        std::uint32_t seq;
        std::memcpy(&seq, &buf[4], 4);
        order.push_back(seq);
      }
    });
    for (std::uint32_t i = 0; i < 2000; ++i) {
      EXPECT_TRUE(ha.stack().udp().send_to(cli, make_payload(0, 9000, i), Endpoint{Ipv4Addr(192, 0, 2, 2), Port(9000)},
                                           sim.now()));
      if (i % 20 == 0) sim.run_for(100us);
    }
    sim.run_for(1s);
    return order;
  };
  auto a = run(5), b = run(5), c = run(6);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_GT(a.size(), 1000u);
}
