// IPv4 reassembly (src/ip/reassembly.hpp): RFC 791 §3.2 with RFC 5722's
// overlap rule, bounded memory, table and time.
#include "ip/reassembly.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "base/counters.hpp"
#include "base/rng.hpp"

using namespace weft;
using namespace weft::ip;

namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr Instant t0 = Instant{} + 1000s;
constexpr std::size_t kMaxPayload = 65535 - 20;

FragmentKey key(std::uint16_t ident, std::uint8_t proto = 17, Ipv4Addr src = Ipv4Addr(192, 0, 2, 1),
                Ipv4Addr dst = Ipv4Addr(192, 0, 2, 2)) {
  return FragmentKey{src, dst, proto, ident};
}

Bytes random_bytes(Rng& rng, std::size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng.next());
  return b;
}

Bytes filled(std::size_t n, std::uint8_t v) { return Bytes(n, v); }

// A fragment as a test writes it: offset, MF, and a view of its bytes.
struct Frag {
  std::uint16_t offset;
  bool more;
  std::span<const std::uint8_t> data;
};

// Cuts payload at random multiples of 8 into at most max_pieces fragments,
// in offset order.
std::vector<Frag> random_split(Rng& rng, const Bytes& payload, std::size_t max_pieces) {
  std::vector<std::size_t> cuts;                       // interior cut points, multiples of 8
  const std::size_t slots = (payload.size() - 1) / 8;  // cut points 8, 16, ... < size
  const std::size_t want = slots == 0 ? 0 : rng.below(std::min(max_pieces, slots + 1));
  for (std::size_t i = 0; i < want; ++i) cuts.push_back(8 * (1 + rng.below(slots)));
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  cuts.push_back(payload.size());
  std::vector<Frag> out;
  std::size_t at = 0;
  for (std::size_t c : cuts) {
    out.push_back(Frag{static_cast<std::uint16_t>(at), c != payload.size(),
                       std::span<const std::uint8_t>(payload).subspan(at, c - at)});
    at = c;
  }
  return out;
}

void shuffle(Rng& rng, std::vector<Frag>& v) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

// Adds one fragment and copies out what completes, if anything.
std::optional<Bytes> add(Reassembler& r, const FragmentKey& k, const Frag& f, Instant now = t0) {
  auto out = r.add(FragmentInfo{k, f.offset, f.more, f.data}, now);
  if (!out) return std::nullopt;
  return Bytes(out->begin(), out->end());
}

std::optional<Bytes> add(Reassembler& r, const FragmentKey& k, std::uint16_t offset, bool more, const Bytes& data,
                         Instant now = t0) {
  return add(r, k, Frag{offset, more, data}, now);
}

// Feeds all fragments; expects only the last one to complete, and returns it.
std::optional<Bytes> feed(Reassembler& r, const FragmentKey& k, const std::vector<Frag>& frags, Instant now = t0) {
  std::optional<Bytes> last;
  for (std::size_t i = 0; i < frags.size(); ++i) {
    last = add(r, k, frags[i], now);
    if (i + 1 < frags.size()) {
      EXPECT_FALSE(last) << "completed early at fragment " << i;
    }
  }
  return last;
}

}  // namespace

TEST(Reassembler, CountersListEveryDropReason) {
  Reassembler r;
  CounterList list;
  collect_counters(r.counters(), "ip.frag.", list);
  std::vector<std::string> names;
  for (auto& [n, v] : list) names.push_back(n);
  for (const char* want :
       {"fragments_in", "reassembled", "duplicate", "timed_out", "overlap_drop", "oversize_drop", "misaligned_drop",
        "empty_drop", "end_mismatch", "too_many_fragments", "memory_drop", "table_full"})
    EXPECT_NE(std::find(names.begin(), names.end(), std::string("ip.frag.") + want), names.end()) << want;
}

TEST(Reassembler, RebuildsRandomPayloadsInOrderReverseAndShuffled) {
  Rng rng(1);
  std::vector<std::size_t> sizes = {1, 2, 7, 8, 9, 15, 16, 17, 552, 1480, 1481, 65512, 65513, kMaxPayload};
  for (int i = 0; i < 120; ++i) sizes.push_back(1 + rng.below(kMaxPayload));
  Reassembler r;
  std::uint16_t ident = 0;
  std::uint64_t done = 0;
  for (std::size_t size : sizes) {
    const Bytes payload = random_bytes(rng, size);
    for (int order = 0; order < 3; ++order) {
      auto frags = random_split(rng, payload, 64);
      if (order == 1) std::reverse(frags.begin(), frags.end());
      if (order == 2) shuffle(rng, frags);
      auto got = feed(r, key(++ident), frags);
      ASSERT_TRUE(got) << "size " << size << " order " << order << " fragments " << frags.size();
      ASSERT_EQ(*got, payload) << "size " << size << " order " << order;
      ++done;
      EXPECT_EQ(r.bytes_held(), 0u);
      EXPECT_EQ(r.datagrams(), 0u);
    }
  }
  EXPECT_EQ(r.counters().reassembled, done);
  EXPECT_EQ(r.counters().overlap_drop + r.counters().memory_drop + r.counters().too_many_fragments, 0u);
}

TEST(Reassembler, InOrderBytesHeldGrowsWithTheData) {
  Rng rng(2);
  const Bytes payload = random_bytes(rng, 4000);
  Reassembler r;
  EXPECT_FALSE(add(r, key(1), 0, true, Bytes(payload.begin(), payload.begin() + 1000)));
  EXPECT_EQ(r.bytes_held(), 1000u);
  EXPECT_FALSE(add(r, key(1), 1000, true, Bytes(payload.begin() + 1000, payload.begin() + 3000)));
  EXPECT_EQ(r.bytes_held(), 3000u);
  auto got = add(r, key(1), 3000, false, Bytes(payload.begin() + 3000, payload.end()));
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, payload);
  EXPECT_EQ(r.bytes_held(), 0u);
}

TEST(Reassembler, ALoneFinalFragmentAtOffsetZeroIsAWholeDatagram) {
  Reassembler r;
  const Bytes p = {1, 2, 3};
  auto got = add(r, key(1), 0, false, p);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, p);
}

TEST(Reassembler, ExactDuplicatesAreIgnoredAndCounted) {
  Rng rng(3);
  const Bytes payload = random_bytes(rng, 40);
  const std::span<const std::uint8_t> p(payload);
  const Frag a{0, true, p.subspan(0, 16)}, b{16, true, p.subspan(16, 16)}, c{32, false, p.subspan(32, 8)};
  Reassembler r;
  EXPECT_FALSE(add(r, key(1), c));
  EXPECT_FALSE(add(r, key(1), c));  // duplicate of the final fragment
  EXPECT_FALSE(add(r, key(1), a));
  EXPECT_FALSE(add(r, key(1), a));
  EXPECT_EQ(r.bytes_held(), 40u);
  auto got = add(r, key(1), b);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, payload);
  EXPECT_EQ(r.counters().duplicate, 2u);
  EXPECT_EQ(r.counters().overlap_drop, 0u);
  EXPECT_EQ(r.counters().reassembled, 1u);
}

// Each case: fragments of one datagram (offset, length, MF, fill byte); the
// last one covers some byte a second time and is not an exact duplicate.
struct OverlapCase {
  const char* name;
  std::vector<std::tuple<std::uint16_t, std::size_t, bool, std::uint8_t>> frags;
};

void PrintTo(const OverlapCase& c, std::ostream* os) { *os << c.name; }

class Overlap : public ::testing::TestWithParam<OverlapCase> {};

TEST_P(Overlap, DropsTheWholeDatagramAndCounts) {
  Reassembler r;
  const auto& frags = GetParam().frags;
  std::vector<Bytes> data;
  for (auto& [off, len, more, fill] : frags) data.push_back(filled(len, fill));
  for (std::size_t i = 0; i < frags.size(); ++i) {
    auto& [off, len, more, fill] = frags[i];
    EXPECT_FALSE(add(r, key(7), off, more, data[i]));
    if (i + 1 < frags.size()) {
      EXPECT_EQ(r.datagrams(), 1u) << "dropped before the overlap, at " << i;
    }
  }
  EXPECT_EQ(r.counters().overlap_drop, 1u);
  EXPECT_EQ(r.counters().duplicate, 0u);
  EXPECT_EQ(r.datagrams(), 0u);
  EXPECT_EQ(r.bytes_held(), 0u);

  // The earlier fragments are gone: re-sending them (all but the
  // overlapping last) starts a new datagram, neither completing from what
  // was dropped nor meeting a held copy (a duplicate or an overlap).
  for (std::size_t i = 0; i + 1 < frags.size(); ++i) {
    auto& [off, len, more, fill] = frags[i];
    EXPECT_FALSE(add(r, key(7), off, more, data[i]));
  }
  EXPECT_EQ(r.counters().duplicate, 0u);
  EXPECT_EQ(r.counters().overlap_drop, 1u);
  EXPECT_EQ(r.datagrams(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Reassembler, Overlap,
    ::testing::Values(
        OverlapCase{"partial_front", {{32, 8, false, 1}, {16, 16, true, 1}, {8, 16, true, 1}}},
        OverlapCase{"partial_back", {{32, 8, false, 1}, {0, 16, true, 1}, {8, 16, true, 2}}},
        OverlapCase{"new_contains_old", {{32, 8, false, 1}, {8, 8, true, 1}, {0, 24, true, 1}}},
        OverlapCase{"old_contains_new", {{32, 8, false, 1}, {0, 24, true, 1}, {8, 8, true, 1}}},
        OverlapCase{"spans_two", {{40, 8, false, 1}, {0, 8, true, 1}, {16, 8, true, 1}, {0, 24, true, 1}}},
        OverlapCase{"same_start_shorter", {{32, 8, false, 1}, {0, 16, true, 1}, {0, 8, true, 1}}},
        OverlapCase{"same_start_longer", {{32, 8, false, 1}, {0, 8, true, 1}, {0, 16, true, 1}}},
        OverlapCase{"same_end", {{32, 8, false, 1}, {0, 16, true, 1}, {8, 8, true, 1}}},
        OverlapCase{"same_range_different_data", {{32, 8, false, 1}, {0, 16, true, 1}, {0, 16, true, 2}}},
        OverlapCase{"partial_with_identical_bytes", {{32, 8, false, 1}, {0, 16, true, 1}, {8, 16, true, 1}}},
        OverlapCase{"same_range_different_mf", {{0, 16, true, 1}, {0, 16, false, 1}}},
        OverlapCase{"into_the_final_fragment", {{16, 16, false, 1}, {0, 8, true, 1}, {8, 16, true, 1}}},
        OverlapCase{"final_over_the_tail", {{0, 8, true, 1}, {8, 16, true, 1}, {16, 8, false, 1}}},
        // Teardrop, 8-aligned: the second fragment sits inside the first.
        OverlapCase{"teardrop", {{0, 48, true, 1}, {24, 8, true, 1}}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Reassembler, TeardropWithAShortFinalFragmentIsDroppedAsEndMismatch) {
  // Classic teardrop: a final fragment that ends inside data already held.
  Reassembler r;
  EXPECT_FALSE(add(r, key(1), 0, true, filled(48, 1)));
  EXPECT_FALSE(add(r, key(1), 24, false, filled(4, 1)));
  EXPECT_EQ(r.counters().end_mismatch, 1u);
  EXPECT_EQ(r.datagrams(), 0u);
  EXPECT_EQ(r.bytes_held(), 0u);
}

TEST(Reassembler, AcceptsADatagramEndingExactlyAtTheLimit) {
  Rng rng(4);
  const Bytes payload = random_bytes(rng, kMaxPayload);
  Reassembler r;
  EXPECT_FALSE(add(r, key(1), 0, true, Bytes(payload.begin(), payload.begin() + 65512)));
  auto got = add(r, key(1), 65512, false, Bytes(payload.begin() + 65512, payload.end()));  // ends at 65515
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, payload);
  EXPECT_EQ(r.counters().oversize_drop, 0u);
}

TEST(Reassembler, OversizeDropsTheFragmentAndItsDatagram) {
  Reassembler r;
  // New datagram: only the fragment goes.
  EXPECT_FALSE(add(r, key(1), 65512, false, filled(4, 1)));  // ends at 65516
  EXPECT_EQ(r.counters().oversize_drop, 1u);
  EXPECT_EQ(r.datagrams(), 0u);
  // Existing datagram: all of it goes.
  EXPECT_FALSE(add(r, key(2), 0, true, filled(1000, 1)));
  EXPECT_EQ(r.bytes_held(), 1000u);
  EXPECT_FALSE(add(r, key(2), 65528, true, filled(8, 1)));  // largest offset the field allows
  EXPECT_EQ(r.counters().oversize_drop, 2u);
  EXPECT_EQ(r.datagrams(), 0u);
  EXPECT_EQ(r.bytes_held(), 0u);
  // Non-final too: 65512 + 8 > 65515.
  EXPECT_FALSE(add(r, key(3), 65512, true, filled(8, 1)));
  EXPECT_EQ(r.counters().oversize_drop, 3u);
  EXPECT_EQ(r.datagrams(), 0u);
}

TEST(Reassembler, MisalignedFragmentsAreDropped) {
  Reassembler r;
  EXPECT_FALSE(add(r, key(1), 0, true, filled(12, 1)));  // non-final, 12 % 8 != 0
  EXPECT_EQ(r.counters().misaligned_drop, 1u);
  EXPECT_EQ(r.datagrams(), 0u);

  EXPECT_FALSE(add(r, key(2), 16, false, filled(8, 1)));
  EXPECT_FALSE(add(r, key(2), 0, true, filled(9, 1)));  // kills the datagram in progress
  EXPECT_EQ(r.counters().misaligned_drop, 2u);
  EXPECT_EQ(r.datagrams(), 0u);
  EXPECT_EQ(r.bytes_held(), 0u);

  EXPECT_FALSE(add(r, key(3), 4, false, filled(8, 1)));  // offset not a multiple of 8
  EXPECT_EQ(r.counters().misaligned_drop, 3u);

  // A final fragment may have any length.
  auto got = add(r, key(4), 0, true, filled(8, 1));
  EXPECT_FALSE(got);
  got = add(r, key(4), 8, false, filled(5, 2));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size(), 13u);
}

TEST(Reassembler, EmptyFragmentsAreDropped) {
  Reassembler r;
  EXPECT_FALSE(add(r, key(1), 0, true, filled(8, 1)));
  EXPECT_FALSE(add(r, key(1), 8, false, Bytes{}));
  EXPECT_EQ(r.counters().empty_drop, 1u);
  EXPECT_EQ(r.datagrams(), 0u);
}

TEST(Reassembler, ASecondFinalFragmentWithADifferentEndDropsTheDatagram) {
  Reassembler r;
  EXPECT_FALSE(add(r, key(1), 16, false, filled(8, 1)));  // ends at 24
  EXPECT_FALSE(add(r, key(1), 32, false, filled(8, 1)));  // ends at 40
  EXPECT_EQ(r.counters().end_mismatch, 1u);
  EXPECT_EQ(r.datagrams(), 0u);
  EXPECT_EQ(r.bytes_held(), 0u);
}

TEST(Reassembler, DataPastTheFinalEndDropsTheDatagram) {
  Reassembler r;
  // A non-final fragment after the end.
  EXPECT_FALSE(add(r, key(1), 16, false, filled(8, 1)));
  EXPECT_FALSE(add(r, key(1), 24, true, filled(8, 1)));
  EXPECT_EQ(r.counters().end_mismatch, 1u);
  EXPECT_EQ(r.datagrams(), 0u);
  // A final fragment that ends before data already held.
  EXPECT_FALSE(add(r, key(2), 32, true, filled(8, 1)));
  EXPECT_FALSE(add(r, key(2), 0, false, filled(16, 1)));
  EXPECT_EQ(r.counters().end_mismatch, 2u);
  EXPECT_EQ(r.datagrams(), 0u);
  EXPECT_EQ(r.bytes_held(), 0u);
}

TEST(Reassembler, TooManyFragmentsDropsTheDatagram) {
  Reassembler r(ReassemblyConfig{.max_fragments_per_datagram = 4});
  for (std::uint16_t i = 0; i < 4; ++i) EXPECT_FALSE(add(r, key(1), i * 8, true, filled(8, 1)));
  EXPECT_EQ(r.datagrams(), 1u);
  EXPECT_FALSE(add(r, key(1), 32, false, filled(8, 1)));  // the fifth
  EXPECT_EQ(r.counters().too_many_fragments, 1u);
  EXPECT_EQ(r.datagrams(), 0u);
  EXPECT_EQ(r.bytes_held(), 0u);

  // Duplicates do not count towards the limit: four distinct fragments
  // complete the datagram.
  for (std::uint16_t i = 0; i < 3; ++i) {
    EXPECT_FALSE(add(r, key(2), i * 8, true, filled(8, 1)));
    EXPECT_FALSE(add(r, key(2), i * 8, true, filled(8, 1)));
  }
  auto got = add(r, key(2), 24, false, filled(8, 1));
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, filled(32, 1));
  EXPECT_EQ(r.counters().too_many_fragments, 1u);
  EXPECT_EQ(r.counters().duplicate, 3u);
}

TEST(Reassembler, BytesHeldCountsTheGapBeforeASparseFragment) {
  Reassembler r;
  EXPECT_FALSE(add(r, key(1), 1000, true, filled(8, 1)));
  EXPECT_EQ(r.bytes_held(), 1008u);
  EXPECT_FALSE(add(r, key(1), 0, true, filled(8, 1)));
  EXPECT_EQ(r.bytes_held(), 1008u);
}

TEST(Reassembler, MemoryCapEvictsTheOldestOtherDatagram) {
  Reassembler r(ReassemblyConfig{.max_total_bytes = 3000});
  EXPECT_FALSE(add(r, key(1), 0, true, filled(1000, 1)));  // A, oldest
  EXPECT_FALSE(add(r, key(2), 0, true, filled(1000, 2)));  // B
  EXPECT_EQ(r.bytes_held(), 2000u);
  EXPECT_FALSE(add(r, key(3), 0, true, filled(1504, 3)));  // C: 3504 > 3000, A goes
  EXPECT_EQ(r.counters().memory_drop, 1u);
  EXPECT_EQ(r.bytes_held(), 2504u);
  EXPECT_EQ(r.datagrams(), 2u);
  auto got = add(r, key(2), 1000, false, filled(8, 2));  // B still completes
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, filled(1008, 2));
  EXPECT_FALSE(add(r, key(1), 1000, false, filled(8, 1)));  // A was evicted: starts anew
  EXPECT_EQ(r.datagrams(), 2u);
  EXPECT_LE(r.bytes_held(), 3000u);
}

TEST(Reassembler, MemoryCapNeverEvictsTheGrowingDatagramItself) {
  Reassembler r(ReassemblyConfig{.max_total_bytes = 3000});
  EXPECT_FALSE(add(r, key(1), 0, true, filled(1000, 1)));  // A, oldest
  EXPECT_FALSE(add(r, key(2), 0, true, filled(1000, 2)));  // B
  // A grows to 2008: 3008 > 3000. A is the oldest, but it is the one
  // growing, so B goes.
  EXPECT_FALSE(add(r, key(1), 2000, false, filled(8, 1)));
  EXPECT_EQ(r.counters().memory_drop, 1u);
  EXPECT_EQ(r.datagrams(), 1u);
  EXPECT_EQ(r.bytes_held(), 2008u);
  auto got = add(r, key(1), 1000, true, filled(1000, 1));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size(), 2008u);
}

TEST(Reassembler, ADatagramLargerThanTheCapIsDroppedAndEvictsNoOne) {
  Reassembler r(ReassemblyConfig{.max_total_bytes = 3000});
  EXPECT_FALSE(add(r, key(1), 0, true, filled(1000, 1)));
  // A new datagram needing 3008 bytes alone: dropped, key 1 stays.
  EXPECT_FALSE(add(r, key(2), 3000, false, filled(8, 2)));
  EXPECT_EQ(r.counters().memory_drop, 1u);
  EXPECT_EQ(r.datagrams(), 1u);
  EXPECT_EQ(r.bytes_held(), 1000u);
  // An existing datagram growing past the cap: dropped.
  EXPECT_FALSE(add(r, key(1), 2000, true, filled(1008, 1)));
  EXPECT_EQ(r.counters().memory_drop, 2u);
  EXPECT_EQ(r.datagrams(), 0u);
  EXPECT_EQ(r.bytes_held(), 0u);
}

TEST(Reassembler, ADatagramTooBigForTheCapDoesNotEvictForATableSlot) {
  Reassembler r(ReassemblyConfig{.max_total_bytes = 3000, .max_datagrams = 1});
  EXPECT_FALSE(add(r, key(1), 0, true, filled(8, 1)));
  EXPECT_FALSE(add(r, key(2), 3000, false, filled(8, 2)));  // needs 3008 alone
  EXPECT_EQ(r.counters().memory_drop, 1u);
  EXPECT_EQ(r.counters().table_full, 0u);
  ASSERT_TRUE(add(r, key(1), 8, false, filled(8, 1)));
}

TEST(Reassembler, TableFullEvictsTheOldestDatagram) {
  Reassembler r(ReassemblyConfig{.max_datagrams = 3});
  for (std::uint16_t id = 1; id <= 3; ++id) EXPECT_FALSE(add(r, key(id), 0, true, filled(8, std::uint8_t(id))));
  EXPECT_EQ(r.counters().table_full, 0u);
  EXPECT_FALSE(add(r, key(4), 0, true, filled(8, 4)));  // 1 goes
  EXPECT_EQ(r.counters().table_full, 1u);
  EXPECT_EQ(r.datagrams(), 3u);
  EXPECT_EQ(r.bytes_held(), 24u);
  ASSERT_TRUE(add(r, key(2), 8, false, filled(8, 2)));
  ASSERT_TRUE(add(r, key(3), 8, false, filled(8, 3)));
  EXPECT_FALSE(add(r, key(1), 8, false, filled(8, 1)));  // its first half is gone
  EXPECT_EQ(r.datagrams(), 2u);
  ASSERT_TRUE(add(r, key(4), 8, false, filled(8, 4)));
}

TEST(Reassembler, TimesOutAtExactlyTheTimeoutAndNotBefore) {
  Reassembler r;
  EXPECT_FALSE(r.next_deadline());
  EXPECT_FALSE(add(r, key(1), 0, true, filled(8, 1), t0));
  EXPECT_FALSE(add(r, key(1), 16, false, filled(8, 1), t0 + 20s));  // later fragments do not extend it
  ASSERT_TRUE(r.next_deadline());
  EXPECT_EQ(*r.next_deadline(), t0 + 30s);
  EXPECT_EQ(r.expire(t0 + 30s - 1ns), 0u);
  EXPECT_EQ(r.datagrams(), 1u);
  EXPECT_EQ(r.expire(t0 + 30s), 1u);
  EXPECT_EQ(r.counters().timed_out, 1u);
  EXPECT_EQ(r.datagrams(), 0u);
  EXPECT_EQ(r.bytes_held(), 0u);
  EXPECT_FALSE(r.next_deadline());
}

TEST(Reassembler, ExpiresInArrivalOrderAndForgetsCompletedDatagrams) {
  Reassembler r(ReassemblyConfig{.timeout = 10s});
  EXPECT_FALSE(add(r, key(1), 0, true, filled(8, 1), t0));
  EXPECT_FALSE(add(r, key(2), 0, true, filled(8, 2), t0 + 1s));
  EXPECT_FALSE(add(r, key(3), 0, true, filled(8, 3), t0 + 2s));
  EXPECT_EQ(*r.next_deadline(), t0 + 10s);
  ASSERT_TRUE(add(r, key(1), 8, false, filled(8, 1), t0 + 3s));  // completes: no longer pending
  EXPECT_EQ(*r.next_deadline(), t0 + 11s);
  EXPECT_EQ(r.expire(t0 + 11s), 1u);
  EXPECT_EQ(*r.next_deadline(), t0 + 12s);
  EXPECT_EQ(r.expire(t0 + 100s), 1u);
  EXPECT_EQ(r.counters().timed_out, 2u);
  EXPECT_FALSE(r.next_deadline());
}

TEST(Reassembler, ALateFragmentDoesNotCompleteATimedOutDatagram) {
  Reassembler r;
  EXPECT_FALSE(add(r, key(1), 0, true, filled(8, 1), t0));
  // No expire() call in between: add() retires it first.
  EXPECT_FALSE(add(r, key(1), 8, false, filled(8, 1), t0 + 30s));
  EXPECT_EQ(r.counters().timed_out, 1u);
  EXPECT_EQ(r.datagrams(), 1u);  // the late fragment starts a new one
  EXPECT_EQ(*r.next_deadline(), t0 + 60s);
  // Just before its timeout, it still completes.
  auto got = add(r, key(1), 0, true, filled(8, 1), t0 + 60s - 1ns);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size(), 16u);
}

TEST(Reassembler, SameIdentDifferentProtocolAreDifferentDatagrams) {
  Reassembler r;
  // The same range with different bytes would be an overlap in one datagram.
  EXPECT_FALSE(add(r, key(9, 6), 0, true, filled(8, 6)));
  EXPECT_FALSE(add(r, key(9, 17), 0, true, filled(8, 17)));
  EXPECT_EQ(r.datagrams(), 2u);
  auto tcp = add(r, key(9, 6), 8, false, filled(8, 6));
  ASSERT_TRUE(tcp);
  EXPECT_EQ(*tcp, filled(16, 6));
  auto udp = add(r, key(9, 17), 8, false, filled(8, 17));
  ASSERT_TRUE(udp);
  EXPECT_EQ(*udp, filled(16, 17));
  EXPECT_EQ(r.counters().overlap_drop, 0u);
}

TEST(Reassembler, InterleavedDatagramsAreKeptApartByTheirFullKey) {
  Rng rng(5);
  const Ipv4Addr a(192, 0, 2, 1), b(192, 0, 2, 2), c(198, 51, 100, 7);
  // Same ident everywhere except the last: protocol, source and destination
  // each make a different datagram.
  const std::vector<FragmentKey> keys = {key(42, 17, a, b), key(42, 6, a, b),  key(42, 1, a, b),
                                         key(42, 17, c, b), key(42, 17, a, c), key(43, 17, a, b)};
  std::vector<Bytes> payloads;
  for (std::size_t i = 0; i < keys.size(); ++i) payloads.push_back(random_bytes(rng, 2000 + rng.below(6000)));
  struct Tagged {
    std::size_t which;
    Frag f;
  };
  std::vector<Tagged> all;
  for (std::size_t i = 0; i < keys.size(); ++i)
    for (const Frag& f : random_split(rng, payloads[i], 20)) all.push_back({i, f});
  for (std::size_t i = all.size(); i > 1; --i) std::swap(all[i - 1], all[rng.below(i)]);

  Reassembler r;
  std::map<std::size_t, int> completions;
  for (const auto& t : all) {
    if (auto got = add(r, keys[t.which], t.f)) {
      EXPECT_EQ(*got, payloads[t.which]) << "datagram " << t.which;
      ++completions[t.which];
    }
  }
  EXPECT_EQ(completions.size(), keys.size());
  for (auto& [which, n] : completions) EXPECT_EQ(n, 1) << which;
  EXPECT_EQ(r.counters().overlap_drop, 0u);
  EXPECT_EQ(r.bytes_held(), 0u);
}

TEST(Reassembler, ReusesTheBufferOfACompletedDatagram) {
  Reassembler r;
  EXPECT_FALSE(add(r, key(1), 0, true, filled(4000, 1)));
  auto first = r.add(FragmentInfo{key(1), 4000, false, filled(8, 1)}, t0);
  ASSERT_TRUE(first);
  const std::uint8_t* where = first->data();
  EXPECT_FALSE(add(r, key(2), 0, true, filled(2000, 2)));
  const Bytes tail = filled(8, 2);
  auto second = r.add(FragmentInfo{key(2), 2000, false, tail}, t0);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->data(), where);  // the free list handed back the same buffer
  EXPECT_EQ(Bytes(second->begin(), second->end()), filled(2008, 2));
}

TEST(Reassembler, RandomFragmentsNeverCrashAndStayUnderTheCap) {
  Rng rng(6);
  const ReassemblyConfig cfg{.max_total_bytes = 256 << 10, .max_datagrams = 32, .timeout = 2s};
  Reassembler r(cfg);
  Instant now = t0;
  std::vector<Bytes> junk;
  for (int i = 0; i < 16; ++i) junk.push_back(random_bytes(rng, 9000));

  // Genuine datagrams under their own keys (protocol 99, fresh ident each),
  // interleaved with the noise: when one completes it must be exact.
  struct Genuine {
    FragmentKey key;
    Bytes payload;
    std::vector<Frag> frags;
    std::size_t next = 0;
  };
  std::vector<Genuine> genuine;
  std::uint16_t genuine_ident = 0;
  std::size_t genuine_done = 0, genuine_started = 0;

  std::size_t max_held = 0;
  for (int i = 0; i < 100000; ++i) {
    now += Duration{static_cast<std::int64_t>(rng.below(200'000))};  // up to 0.2 ms
    if (rng.chance(0.01)) {
      r.expire(now);
    }
    if (rng.chance(0.1)) {
      if (genuine.size() < 8) {
        Genuine g{key(++genuine_ident, 99), random_bytes(rng, 1 + rng.below(20000)), {}, 0};
        genuine.push_back(std::move(g));
        auto& gg = genuine.back();
        gg.frags = random_split(rng, gg.payload, 64);
        shuffle(rng, gg.frags);
        ++genuine_started;
      }
      const std::size_t gi = rng.below(genuine.size());
      auto& g = genuine[gi];
      auto got = r.add(FragmentInfo{g.key, g.frags[g.next].offset, g.frags[g.next].more, g.frags[g.next].data}, now);
      if (got) {
        ASSERT_EQ(got->size(), g.payload.size());
        ASSERT_TRUE(std::equal(got->begin(), got->end(), g.payload.begin()));
        ++genuine_done;
      }
      if (++g.next == g.frags.size()) genuine.erase(genuine.begin() + static_cast<std::ptrdiff_t>(gi));
    } else {
      // Noise: few keys so that fragments collide; any offset, length, MF.
      const FragmentKey k = key(static_cast<std::uint16_t>(rng.below(24)), rng.chance(0.5) ? 6 : 17,
                                Ipv4Addr(10, 0, 0, static_cast<std::uint8_t>(rng.below(2))));
      std::uint16_t off;
      switch (rng.below(4)) {
        case 0:
          off = static_cast<std::uint16_t>(rng.next());
          break;
        case 1:
          off = static_cast<std::uint16_t>(8 * rng.below(8192));
          break;
        default:
          off = static_cast<std::uint16_t>(8 * rng.below(64));
          break;
      }
      std::size_t len = rng.chance(0.5) ? 8 * rng.below(1100) : rng.below(9000);
      const Bytes& src = junk[rng.below(junk.size())];
      auto data = std::span<const std::uint8_t>(src).subspan(0, len);
      auto got = r.add(FragmentInfo{k, off, rng.chance(0.7), data}, now);
      if (got) {
        ASSERT_LE(got->size(), cfg.max_datagram_bytes);
      }
    }
    ASSERT_LE(r.bytes_held(), cfg.max_total_bytes);
    ASSERT_LE(r.datagrams(), cfg.max_datagrams);
    max_held = std::max(max_held, r.bytes_held());
    if (auto d = r.next_deadline()) {
      ASSERT_LE(*d, now + cfg.timeout);
    }
  }
  EXPECT_EQ(r.counters().fragments_in, 100000u);
  EXPECT_GT(genuine_done, 0u);
  EXPECT_GT(max_held, cfg.max_total_bytes / 2);  // the cap was actually pressed
  EXPECT_GT(r.counters().overlap_drop, 0u);
  EXPECT_GT(r.counters().memory_drop + r.counters().table_full, 0u);
  r.expire(now + cfg.timeout);
  EXPECT_EQ(r.datagrams(), 0u);
  EXPECT_EQ(r.bytes_held(), 0u);
  RecordProperty("genuine_started", static_cast<int>(genuine_started));
  RecordProperty("genuine_done", static_cast<int>(genuine_done));
}
