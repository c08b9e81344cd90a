// Whatever arrives from a link, the host neither crashes nor loses count:
// random bytes, truncations and bit-flipped real packets, 200,000 of them.
// TCP has its own such test, with live connections and a listener
// (stack_robustness_tcp_test.cpp).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "base/rng.hpp"
#include "stack/stack.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"
#include "wire/udp.hpp"

using namespace weft;

namespace {
std::vector<std::uint8_t> build(Rng& rng, Ipv4Addr src, Ipv4Addr dst) {
  const std::size_t len = rng.below(1600);
  std::vector<std::uint8_t> seg(8 + len);
  for (std::size_t i = 8; i < seg.size(); ++i) seg[i] = static_cast<std::uint8_t>(rng.next());
  std::uint8_t proto;
  if (rng.chance(0.5)) {
    wire::UdpRepr{Port(static_cast<std::uint16_t>(rng.below(4) + 7)), Port(static_cast<std::uint16_t>(rng.below(12))),
                  static_cast<std::uint16_t>(len)}
        .emit(seg, src, dst);
    proto = 17;
  } else {
    wire::IcmpRepr::echo_request(1, 2, len).emit(seg);
    proto = 1;
  }
  std::vector<std::uint8_t> p(20 + seg.size());
  std::memcpy(p.data() + 20, seg.data(), seg.size());
  wire::Ipv4Repr h;
  h.src = src;
  h.dst = dst;
  h.protocol = proto;
  h.payload_len = static_cast<std::uint16_t>(seg.size());
  h.ident = static_cast<std::uint16_t>(rng.next());
  if (rng.chance(0.2)) {  // a fragment of it
    h.more_fragments = rng.chance(0.5);
    h.frag_offset = static_cast<std::uint16_t>(rng.below(16) * 8);
  }
  h.emit(std::span<std::uint8_t>(p).first(20));
  return p;
}
}  // namespace

TEST(StackRobustness, RandomAndMutatedPacketsAreCountedNeverFatal) {
  StackConfig c;
  c.address = Ipv4Cidr{Ipv4Addr(192, 0, 2, 2), 24};
  c.gateway = Ipv4Addr(192, 0, 2, 1);
  c.seed = 3;
  Stack s(c);
  std::vector<SocketId> udp_ids;
  for (std::uint16_t p : {7, 8, 9}) {
    udp_ids.push_back(s.udp().open());
    ASSERT_TRUE(s.udp().bind(udp_ids.back(), {Ipv4Addr::any(), Port(p)}));
  }
  Rng rng(99);
  const int n = std::getenv("WEFT_SIM_SCALE") ? 50000 : 200000;
  std::uint64_t sent_out = 0;
  std::vector<std::uint8_t> scratch(65536);
  Instant now{};
  for (int i = 0; i < n; ++i) {
    std::vector<std::uint8_t> p;
    switch (rng.below(4)) {
      case 0:  // pure garbage
        p.resize(rng.below(200));
        for (auto& b : p) b = static_cast<std::uint8_t>(rng.next());
        break;
      case 1:  // a real packet, truncated
        p = build(rng, Ipv4Addr(192, 0, 2, 1), c.address.addr);
        p.resize(rng.below(p.size() + 1));
        break;
      case 2:  // a real packet with bits flipped
        p = build(rng, Ipv4Addr(192, 0, 2, 1), c.address.addr);
        for (int k = 1 + static_cast<int>(rng.below(3)); k > 0; --k) p[rng.below(p.size())] ^= 1u << rng.below(8);
        break;
      default:
        p = build(rng, Ipv4Addr(192, 0, 2, 1), c.address.addr);
        break;
    }
    s.receive(p, now);
    now += 10us;
    s.poll(now);
    s.drain([&](std::span<const std::uint8_t> out) {
      ++sent_out;
      // Everything the host sends must itself be well-formed.
      auto ip = wire::Ipv4View::parse(out);
      ASSERT_TRUE(ip) << "host emitted a malformed packet";
      EXPECT_LE(out.size(), c.mtu);
    });
    for (SocketId id : udp_ids)
      while (s.udp().recv_from(id, scratch)) {
      }
  }
  const auto& ip = s.ip_counters();
  EXPECT_EQ(ip.in_receives, static_cast<std::uint64_t>(n));
  const std::uint64_t drops = ip.in_unsupported + ip.in_truncated + ip.in_bad_header_len + ip.in_bad_total_len +
                              ip.in_bad_checksum + ip.in_not_for_us + ip.in_martian;
  // Every packet is dropped for a reason, held as a fragment, or delivered
  // (a reassembled datagram is delivered once for all its fragments).
  EXPECT_EQ(ip.in_receives, drops + ip.in_fragments + ip.in_delivered + ip.in_unknown_protocol - ip.reassembled);
  EXPECT_GT(drops, static_cast<std::uint64_t>(n / 4));
  EXPECT_GT(ip.in_delivered, static_cast<std::uint64_t>(n / 8));
  EXPECT_EQ(ip.out_transmits, sent_out);
}
