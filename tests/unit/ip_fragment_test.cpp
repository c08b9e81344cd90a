// IPv4 fragmentation (src/ip/fragment.hpp), and the round trip through the
// reassembler.
#include "ip/fragment.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "base/rng.hpp"
#include "ip/reassembly.hpp"

using namespace weft;
using namespace weft::ip;

namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr Instant t0 = Instant{} + 5s;

Bytes random_bytes(Rng& rng, std::size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng.next());
  return b;
}

struct Chunk {
  std::uint16_t offset;
  bool more;
  std::span<const std::uint8_t> data;
};

std::vector<Chunk> split(std::span<const std::uint8_t> payload, std::size_t mtu, std::size_t ihl) {
  std::vector<Chunk> out;
  const std::size_t n =
      fragment_payload(payload, mtu, ihl, [&](std::uint16_t off, bool more, std::span<const std::uint8_t> c) {
        out.push_back({off, more, c});
      });
  EXPECT_EQ(n, out.size());
  return out;
}

}  // namespace

TEST(FragmentCount, MatchesTheRfcArithmetic) {
  EXPECT_EQ(fragment_count(1480, 1500, 20), 1u);  // fits exactly
  EXPECT_EQ(fragment_count(1481, 1500, 20), 2u);
  EXPECT_EQ(fragment_count(65515, 1500, 20), 45u);  // 44 * 1480 + 395
  EXPECT_EQ(fragment_count(1476, 1500, 24), 1u);
  EXPECT_EQ(fragment_count(1477, 1500, 24), 2u);  // 1476 rounds down to 1472 per fragment
  EXPECT_EQ(fragment_count(2944, 1500, 24), 2u);
  EXPECT_EQ(fragment_count(2945, 1500, 24), 3u);
  EXPECT_EQ(fragment_count(65515, 576, 20), 119u);  // 556 -> 552 per fragment
  EXPECT_EQ(fragment_count(100, 68, 60), 13u);      // RFC 791's minimum: 8 bytes per fragment
  EXPECT_EQ(fragment_count(0, 1500, 20), 1u);       // an empty datagram is one packet
}

TEST(FragmentCount, ZeroWhenTheDatagramCannotBeSent) {
  EXPECT_EQ(fragment_count(65516, 9000, 20), 0u);  // total length would exceed 65535
  EXPECT_EQ(fragment_count(65476, 65535, 60), 0u);
  EXPECT_EQ(fragment_count(100, 27, 20), 0u);  // 7 bytes per fragment: not even one unit of 8
  EXPECT_EQ(fragment_count(100, 10, 20), 0u);  // MTU below the header
  EXPECT_EQ(fragment_count(7, 27, 20), 1u);    // ...but a payload that fits needs no fragmenting
}

TEST(FragmentPayload, AFittingPayloadIsEmittedWholeWithoutCopying) {
  const Bytes p(1480, 7);
  auto chunks = split(p, 1500, 20);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].offset, 0);
  EXPECT_FALSE(chunks[0].more);
  EXPECT_EQ(chunks[0].data.data(), p.data());
  EXPECT_EQ(chunks[0].data.size(), p.size());
}

TEST(FragmentPayload, EmitsNothingWhenItCannotBeSent) {
  const Bytes p(100, 7);
  int calls = 0;
  EXPECT_EQ(fragment_payload(p, 27, 20, [&](std::uint16_t, bool, std::span<const std::uint8_t>) { ++calls; }), 0u);
  EXPECT_EQ(calls, 0);
}

TEST(FragmentPayload, ChunksAreAlignedFitTheMtuAndTileThePayload) {
  Rng rng(11);
  for (std::size_t mtu : {68, 576, 1280, 1500, 9000}) {
    for (std::size_t ihl : {20, 24, 60}) {
      std::vector<std::size_t> sizes = {1, 7, 8, mtu - ihl, mtu - ihl + 1, 2 * (mtu - ihl), 65535 - ihl};
      for (int i = 0; i < 20; ++i) sizes.push_back(1 + rng.below(65535 - ihl));
      for (std::size_t size : sizes) {
        const Bytes p = random_bytes(rng, size);
        auto chunks = split(p, mtu, ihl);
        ASSERT_EQ(chunks.size(), fragment_count(size, mtu, ihl)) << mtu << "/" << ihl << "/" << size;
        std::size_t at = 0;
        for (std::size_t i = 0; i < chunks.size(); ++i) {
          const auto& c = chunks[i];
          const bool last = i + 1 == chunks.size();
          EXPECT_EQ(c.offset, at);
          EXPECT_EQ(c.offset % 8, 0);
          EXPECT_EQ(c.more, !last);
          EXPECT_LE(c.data.size() + ihl, mtu);
          EXPECT_GT(c.data.size(), 0u);
          if (!last) {
            EXPECT_EQ(c.data.size() % 8, 0u);
          }
          EXPECT_EQ(c.data.data(), p.data() + at);  // views into the payload
          at += c.data.size();
        }
        EXPECT_EQ(at, size);
      }
    }
  }
}

TEST(FragmentPayload, RoundTripsThroughTheReassemblerAtCommonMtus) {
  Rng rng(12);
  // 65515 bytes over MTU 68 is 1365 fragments; FreeBSD caps at 16 and weft's
  // default at 64, so this test lifts the limit.
  Reassembler r(ReassemblyConfig{.max_fragments_per_datagram = 2048});
  std::uint16_t ident = 0;
  for (std::size_t mtu : {68, 576, 1500, 9000}) {
    std::vector<std::size_t> sizes = {1, mtu - 20, mtu - 19, 65515};
    for (int i = 0; i < 12; ++i) sizes.push_back(1 + rng.below(65515));
    for (std::size_t size : sizes) {
      const Bytes p = random_bytes(rng, size);
      auto chunks = split(p, mtu, 20);
      for (int order = 0; order < 2; ++order) {
        if (order == 1)
          for (std::size_t i = chunks.size(); i > 1; --i) std::swap(chunks[i - 1], chunks[rng.below(i)]);
        const FragmentKey k{Ipv4Addr(192, 0, 2, 1), Ipv4Addr(192, 0, 2, 2), 17, ++ident};
        std::optional<std::span<const std::uint8_t>> got;
        for (std::size_t i = 0; i < chunks.size(); ++i) {
          got = r.add(FragmentInfo{k, chunks[i].offset, chunks[i].more, chunks[i].data}, t0);
          if (i + 1 < chunks.size()) {
            ASSERT_FALSE(got) << "mtu " << mtu << " size " << size;
          }
        }
        ASSERT_TRUE(got) << "mtu " << mtu << " size " << size << " order " << order;
        ASSERT_EQ(Bytes(got->begin(), got->end()), p) << "mtu " << mtu << " size " << size;
      }
    }
  }
  EXPECT_EQ(r.bytes_held(), 0u);
  EXPECT_EQ(r.counters().overlap_drop + r.counters().misaligned_drop + r.counters().too_many_fragments, 0u);
}

TEST(FragmentPayload, AMaximalDatagramAt1500FitsTheDefaultLimits) {
  Rng rng(13);
  const Bytes p = random_bytes(rng, 65515);
  Reassembler r;
  std::optional<Bytes> got;
  fragment_payload(p, 1500, 20, [&](std::uint16_t off, bool more, std::span<const std::uint8_t> c) {
    auto out = r.add(FragmentInfo{FragmentKey{Ipv4Addr(192, 0, 2, 1), Ipv4Addr(192, 0, 2, 2), 6, 1}, off, more, c}, t0);
    if (out) got = Bytes(out->begin(), out->end());
  });
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, p);
}
