// SimNetwork: routing by destination, each impairment on its own, and the
// promise that matters most for simulation tests: same seed, same run.
#include "link/sim.hpp"

#include <bit>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "link_packets.hpp"

using namespace weft;
using weft::test::numbered;
using weft::test::seq_of;

namespace {

const Ipv4Addr kA(192, 0, 2, 1);
const Ipv4Addr kB(192, 0, 2, 2);
const Ipv4Addr kC(192, 0, 2, 3);

Instant ms(std::int64_t n) { return Instant{std::chrono::milliseconds(n)}; }

struct Delivery {
  Instant at;
  std::vector<std::uint8_t> bytes;
  bool operator==(const Delivery&) const = default;
};

// Receives everything pending on `link`, each packet at exactly its delivery
// time (the deadline the link announces), the way a simulation driver would.
std::vector<Delivery> drain(Link& link) {
  std::vector<Delivery> out;
  std::vector<std::uint8_t> buf(65535);
  while (auto d = link.next_deadline()) {
    std::size_t n = link.receive(buf, *d);
    if (n == 0) break;  // only a too-small buffer could cause this
    out.push_back({*d, {buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n)}});
  }
  return out;
}

std::size_t hamming(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  std::size_t bits = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    bits += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(a[i] ^ b[i])));
  return bits;
}

}  // namespace

TEST(SimNetwork, DeliversToTheHostOwningTheDestination) {
  SimNetwork net(1);
  Link& a = net.attach(kA);
  Link& b = net.attach(kB);
  Link& c = net.attach(kC);
  auto p = numbered(kA, kB, 7);
  ASSERT_TRUE(a.send(p, ms(0)));
  std::vector<std::uint8_t> buf(65535);
  EXPECT_EQ(c.receive(buf, ms(0)), 0u);
  ASSERT_EQ(b.receive(buf, ms(0)), p.size());
  EXPECT_TRUE(std::equal(p.begin(), p.end(), buf.begin()));
  EXPECT_EQ(b.receive(buf, ms(0)), 0u);
  EXPECT_EQ(net.counters().sent, 1u);
  EXPECT_EQ(net.counters().delivered, 1u);
  EXPECT_EQ(b.name(), "sim:192.0.2.2");
  EXPECT_EQ(b.poll_fd(), -1);
}

TEST(SimNetwork, APacketInPartsArrivesJoined) {
  SimNetwork net(1);
  Link& a = net.attach(kA);
  Link& b = net.attach(kB);
  const auto p = numbered(kA, kB, 9);
  const std::span<const std::uint8_t> whole(p);
  const std::span<const std::uint8_t> parts[] = {whole.first(18), whole.subspan(18, 3), {}, whole.subspan(21)};
  ASSERT_TRUE(a.send(PacketParts(parts), ms(0)));
  std::vector<std::uint8_t> buf(65535);
  ASSERT_EQ(b.receive(buf, ms(0)), p.size());
  EXPECT_TRUE(std::equal(p.begin(), p.end(), buf.begin()));
}

TEST(PacketParts, ContiguousJoinsOnlyWhenItMustAndCopyPrefixGathers) {
  const std::vector<std::uint8_t> x{1, 2, 3}, y{4, 5};
  std::vector<std::uint8_t> scratch;
  const std::span<const std::uint8_t> one[] = {{}, std::span(x), {}};
  EXPECT_EQ(contiguous(PacketParts(one), scratch).data(), x.data()) << "one part: no copy";
  EXPECT_TRUE(scratch.empty());
  const std::span<const std::uint8_t> two[] = {std::span(x), {}, std::span(y)};
  auto joined = contiguous(PacketParts(two), scratch);
  EXPECT_EQ(std::vector<std::uint8_t>(joined.begin(), joined.end()), (std::vector<std::uint8_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(packet_size(PacketParts(two)), 5u);
  EXPECT_TRUE(contiguous(PacketParts(), scratch).empty());
  std::uint8_t head[4];
  EXPECT_EQ(copy_prefix(PacketParts(two), head), 4u);
  EXPECT_EQ(head[3], 4);
  std::uint8_t longer[8];
  EXPECT_EQ(copy_prefix(PacketParts(two), longer), 5u);
}

TEST(SimNetwork, UnroutableAndShortPacketsAreCountedAsNoRoute) {
  SimNetwork net(1);
  SimLink& a = net.attach(kA);
  net.attach(kB);
  EXPECT_FALSE(a.send(numbered(kA, Ipv4Addr(198, 51, 100, 99), 1), ms(0)));
  std::vector<std::uint8_t> runt(19, 0x45);
  EXPECT_FALSE(a.send(runt, ms(0)));
  EXPECT_EQ(net.counters().no_route, 2u);
  EXPECT_EQ(a.counters().no_route, 2u);
  EXPECT_FALSE(net.next_deadline());
}

TEST(SimNetwork, PacketsOverEitherMtuAreTooBig) {
  SimNetwork net(1);
  SimLink& a = net.attach(kA, 1500);
  SimLink& b = net.attach(kB, 576);
  EXPECT_FALSE(b.send(numbered(kB, kA, 1, 577), ms(0)));   // over the sender's MTU
  EXPECT_FALSE(a.send(numbered(kA, kB, 2, 1000), ms(0)));  // over the receiver's MTU
  EXPECT_TRUE(a.send(numbered(kA, kB, 3, 576), ms(0)));
  EXPECT_EQ(net.counters().too_big, 2u);
  EXPECT_EQ(drain(b).size(), 1u);
}

TEST(SimNetwork, AddRouteGivesALinkASecondAddress) {
  SimNetwork net(1);
  Link& a = net.attach(kA);
  Link& b = net.attach(kB);
  const Ipv4Addr extra(203, 0, 113, 7);
  net.add_route(extra, b);
  ASSERT_TRUE(a.send(numbered(kA, extra, 1), ms(0)));
  auto got = drain(b);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(seq_of(got[0].bytes), 1u);
}

TEST(SimNetwork, ABufferShorterThanThePacketDropsItWhole) {
  SimNetwork net(1);
  Link& a = net.attach(kA);
  SimLink& b = net.attach(kB);
  ASSERT_TRUE(a.send(numbered(kA, kB, 1, 200), ms(0)));
  ASSERT_TRUE(a.send(numbered(kA, kB, 2, 50), ms(0)));
  std::vector<std::uint8_t> small(100);
  ASSERT_EQ(b.receive(small, ms(0)), 50u);  // the 200-byte one was dropped, the next still comes
  EXPECT_EQ(seq_of(small), 2u);
  EXPECT_EQ(b.counters().rx_buffer_small, 1u);
}

TEST(SimNetwork, SimultaneousDeliveriesComeInSendOrder) {
  SimNetwork net(1, Impairments{.delay = std::chrono::milliseconds(5)});
  Link& a = net.attach(kA);
  Link& b = net.attach(kB);
  Link& c = net.attach(kC);
  for (std::uint32_t i = 0; i < 10; ++i) ASSERT_TRUE((i % 2 ? c : a).send(numbered(i % 2 ? kC : kA, kB, i), ms(0)));
  EXPECT_EQ(net.next_deadline(), ms(5));
  auto got = drain(b);
  ASSERT_EQ(got.size(), 10u);
  for (std::uint32_t i = 0; i < 10; ++i) EXPECT_EQ(seq_of(got[i].bytes), i);
}

TEST(SimNetwork, LossRateMatchesAndEveryPacketIsAccountedFor) {
  SimNetwork net(2024, Impairments{.loss = 0.1, .duplicate = 0.05});
  Link& a = net.attach(kA);
  SimLink& b = net.attach(kB);
  constexpr int kN = 100'000;
  auto p = numbered(kA, kB, 0);
  std::vector<std::uint8_t> buf(65535);
  std::uint64_t received = 0;
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(a.send(p, ms(i)));
    while (b.receive(buf, ms(i))) ++received;  // keep the queue short, as a host would
  }
  const auto& c = net.counters();
  EXPECT_EQ(c.sent, std::uint64_t{kN});
  EXPECT_NEAR(static_cast<double>(c.lost) / kN, 0.1, 0.01);
  EXPECT_NEAR(static_cast<double>(c.duplicated) / static_cast<double>(kN - c.lost), 0.05, 0.01);
  EXPECT_EQ(received, c.sent - c.lost + c.duplicated);
  EXPECT_EQ(b.counters().delivered, received);
}

TEST(SimNetwork, DuplicatesAreIdenticalCopies) {
  SimNetwork net(7, Impairments{.duplicate = 0.2});
  Link& a = net.attach(kA);
  Link& b = net.attach(kB);
  constexpr std::uint32_t kN = 5000;
  for (std::uint32_t i = 0; i < kN; ++i) ASSERT_TRUE(a.send(numbered(kA, kB, i), ms(i)));
  auto got = drain(b);
  const auto dups = net.counters().duplicated;
  EXPECT_NEAR(static_cast<double>(dups) / kN, 0.2, 0.03);
  ASSERT_EQ(got.size(), kN + dups);
  // With no delay variation a copy arrives right after its original.
  std::uint64_t pairs = 0;
  for (std::size_t i = 1; i < got.size(); ++i) pairs += got[i].bytes == got[i - 1].bytes;
  EXPECT_EQ(pairs, dups);
}

TEST(SimNetwork, CorruptionFlipsExactlyOneBitThatTheChecksumCatches) {
  SimNetwork net(11, Impairments{.corrupt = 0.3});
  Link& a = net.attach(kA);
  Link& b = net.attach(kB);
  constexpr std::uint32_t kN = 5000;
  std::vector<std::vector<std::uint8_t>> sent;
  for (std::uint32_t i = 0; i < kN; ++i) {
    sent.push_back(numbered(kA, kB, i));
    ASSERT_TRUE(a.send(sent.back(), ms(i)));
  }
  auto got = drain(b);
  ASSERT_EQ(got.size(), kN);  // corruption neither drops nor reorders
  std::uint64_t flipped = 0, header_hits = 0;
  for (std::size_t i = 0; i < kN; ++i) {
    const auto d = hamming(sent[i], got[i].bytes);
    ASSERT_LE(d, 1u) << "packet " << i;
    flipped += d;
    bool header_changed = !std::equal(sent[i].begin(), sent[i].begin() + 20, got[i].bytes.begin());
    if (header_changed) {
      ++header_hits;
      // Verifying a header that includes its checksum yields 0 only if intact.
      EXPECT_NE(wire::internet_checksum(std::span(got[i].bytes).first(20)), 0) << "packet " << i;
    }
  }
  EXPECT_EQ(flipped, net.counters().corrupted);
  EXPECT_NEAR(static_cast<double>(flipped) / kN, 0.3, 0.03);
  EXPECT_GT(header_hits, 0u);  // bits in headers are fair game too
}

TEST(SimNetwork, ReorderedPacketsAreOvertakenByLaterOnes) {
  SimNetwork net(5, Impairments{.reorder = 0.1,
                                .delay = std::chrono::milliseconds(1),
                                .reorder_extra_delay = std::chrono::milliseconds(20)});
  Link& a = net.attach(kA);
  Link& b = net.attach(kB);
  std::uint32_t seq = 0;
  for (; seq < 2000; ++seq) ASSERT_TRUE(a.send(numbered(kA, kB, seq), ms(seq)));
  // A tail without reordering, so every held packet has later ones to
  // overtake it.
  net.set_impairments(Impairments{.delay = std::chrono::milliseconds(1)});
  for (; seq < 2050; ++seq) ASSERT_TRUE(a.send(numbered(kA, kB, seq), ms(seq)));
  auto got = drain(b);
  ASSERT_EQ(got.size(), 2050u);
  std::uint64_t late = 0;
  std::uint32_t highest = 0;
  for (const auto& d : got) {
    const auto s = seq_of(d.bytes);
    if (s < highest) ++late;
    highest = std::max(highest, s);
  }
  EXPECT_GT(net.counters().reordered, 150u);
  EXPECT_EQ(late, net.counters().reordered);
}

TEST(SimNetwork, DelayIsExactAndJitterStaysWithinItsBound) {
  {
    SimNetwork net(3, Impairments{.delay = std::chrono::milliseconds(10)});
    Link& a = net.attach(kA);
    Link& b = net.attach(kB);
    for (std::uint32_t i = 0; i < 100; ++i) ASSERT_TRUE(a.send(numbered(kA, kB, i), ms(3 * i)));
    auto got = drain(b);
    ASSERT_EQ(got.size(), 100u);
    for (const auto& d : got) EXPECT_EQ(d.at, ms(3 * seq_of(d.bytes) + 10));
  }
  {
    SimNetwork net(3, Impairments{.delay = std::chrono::milliseconds(10), .jitter = std::chrono::milliseconds(2)});
    Link& a = net.attach(kA);
    Link& b = net.attach(kB);
    for (std::uint32_t i = 0; i < 1000; ++i) ASSERT_TRUE(a.send(numbered(kA, kB, i), ms(3 * i)));
    auto got = drain(b);
    ASSERT_EQ(got.size(), 1000u);
    Duration min_extra = Duration::max(), max_extra = Duration::min();
    for (const auto& d : got) {
      const Duration extra = d.at - ms(3 * seq_of(d.bytes) + 10);
      min_extra = std::min(min_extra, extra);
      max_extra = std::max(max_extra, extra);
    }
    EXPECT_GE(min_extra, Duration::zero());
    EXPECT_LE(max_extra, std::chrono::milliseconds(2));
    EXPECT_GT(max_extra - min_extra, std::chrono::milliseconds(1));  // jitter really varies
  }
}

TEST(SimNetwork, BandwidthSerializesPacketsAndTheQueueOverflows) {
  {
    SimNetwork net(1, Impairments{.bandwidth_bps = 1'000'000});
    Link& a = net.attach(kA);
    Link& b = net.attach(kB);
    for (std::uint32_t i = 0; i < 10; ++i) ASSERT_TRUE(a.send(numbered(kA, kB, i, 1000), ms(0)));
    auto got = drain(b);
    ASSERT_EQ(got.size(), 10u);
    // 1000 bytes at 1 Mbit/s: 8 ms each, back to back.
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].at, ms(8 * static_cast<std::int64_t>(i + 1)));
  }
  {
    SimNetwork net(1, Impairments{.bandwidth_bps = 1'000'000, .queue_limit_bytes = 5000});
    Link& a = net.attach(kA);
    Link& b = net.attach(kB);
    int accepted = 0;
    for (std::uint32_t i = 0; i < 10; ++i) accepted += a.send(numbered(kA, kB, i, 1000), ms(0));
    EXPECT_EQ(accepted, 5);
    EXPECT_EQ(net.counters().queue_drop, 5u);
    // Once the queue has drained, the link accepts again.
    EXPECT_TRUE(a.send(numbered(kA, kB, 99, 1000), ms(40)));
    EXPECT_EQ(drain(b).size(), 6u);
  }
}

TEST(SimNetwork, SameSeedSameRunDifferentSeedDifferentRun) {
  const Impairments imp{.loss = 0.05,
                        .duplicate = 0.05,
                        .reorder = 0.05,
                        .corrupt = 0.05,
                        .delay = std::chrono::milliseconds(20),
                        .jitter = std::chrono::milliseconds(5),
                        .reorder_extra_delay = std::chrono::milliseconds(30),
                        .bandwidth_bps = 10'000'000};
  auto run = [&](std::uint64_t seed) {
    SimNetwork net(seed, imp);
    Link& a = net.attach(kA);
    Link& b = net.attach(kB);
    for (std::uint32_t i = 0; i < 2000; ++i) {
      (void)a.send(numbered(kA, kB, i, 100 + i % 1000), ms(i));
      (void)b.send(numbered(kB, kA, i, 60), ms(i));
    }
    auto out = drain(b);
    auto back = drain(a);
    out.insert(out.end(), back.begin(), back.end());
    return out;
  };
  auto first = run(42);
  EXPECT_EQ(first, run(42));
  EXPECT_NE(first, run(43));
}
