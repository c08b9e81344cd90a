// OutOfOrder: the receiver's record of what arrived beyond RCV.NXT
// (RFC 9293 §3.10.7.4) and the SACK blocks it reports (RFC 2018, RFC 2883).
#include "tcp/reassembly.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "base/rng.hpp"
#include "sack_range_print.hpp"
#include "tcp/byte_ring.hpp"

using namespace weft;
using namespace weft::tcp;

namespace {

SackRange blk(std::uint32_t l, std::uint32_t r) { return SackRange{SeqNum(l), SeqNum(r)}; }

// A receiver as the TCB drives one: add() each segment, move RCV.NXT by the
// advance, and report a D-SACK for whatever was a duplicate (RFC 2883).
struct Receiver {
  explicit Receiver(std::uint32_t rcv_nxt) : rcv_nxt(rcv_nxt) {}

  OutOfOrder::AddResult seg(std::uint32_t seq, std::uint32_t len) {
    auto res = ooo.add(rcv_nxt, SeqNum(seq), len);
    rcv_nxt += res.advance;
    return res;
  }
  // A segment with RFC 2883 reporting: the part below RCV.NXT is a duplicate
  // (examples 4 and 5 report only that part); so is a segment wholly held.
  void seg_dsack(std::uint32_t seq, std::uint32_t len) {
    const SeqNum before = rcv_nxt;
    const auto res = seg(seq, len);
    if (SeqNum(seq) < before)
      ooo.note_duplicate(SeqNum(seq), std::min(SeqNum(seq) + len, before));
    else if (res.duplicate)
      ooo.note_duplicate(SeqNum(seq), SeqNum(seq) + len);
  }
  std::vector<SackRange> sack(std::size_t max_blocks = 4) {
    std::vector<SackRange> out(8);
    out.resize(ooo.sack_blocks(out, max_blocks));
    return out;
  }

  OutOfOrder ooo;
  SeqNum rcv_nxt;
};

}  // namespace

TEST(OutOfOrder, InOrderSegmentAdvancesByItsLength) {
  Receiver rx(1000);
  const auto res = rx.seg(1000, 500);
  EXPECT_TRUE(res.stored);
  EXPECT_EQ(res.advance, 500u);
  EXPECT_FALSE(res.duplicate);
  EXPECT_FALSE(res.filled_hole);  // there was no hole
  EXPECT_TRUE(rx.ooo.empty());
  EXPECT_EQ(rx.rcv_nxt, SeqNum(1500));
  EXPECT_TRUE(rx.sack().empty());
}

TEST(OutOfOrder, GapIsHeldUntilFilled) {
  Receiver rx(1000);
  auto res = rx.seg(1500, 500);
  EXPECT_TRUE(res.stored);
  EXPECT_EQ(res.advance, 0u);
  EXPECT_FALSE(res.filled_hole);  // beyond everything held: opens a hole, fills none
  EXPECT_EQ(rx.ooo.range_count(), 1u);

  res = rx.seg(1000, 500);
  EXPECT_EQ(res.advance, 1000u);  // the gap and the range behind it
  EXPECT_TRUE(res.filled_hole);   // RFC 5681 §4.2: ACK at once
  EXPECT_TRUE(rx.ooo.empty());
  EXPECT_EQ(rx.rcv_nxt, SeqNum(2000));
}

TEST(OutOfOrder, ShrinkingAHoleCountsAsFilling) {
  Receiver rx(1000);
  rx.seg(2000, 100);
  rx.seg(3000, 100);
  auto res = rx.seg(1200, 100);  // inside the hole before the first range
  EXPECT_TRUE(res.filled_hole);
  EXPECT_EQ(res.advance, 0u);
  EXPECT_EQ(rx.ooo.range_count(), 3u);
  res = rx.seg(2500, 100);  // inside the hole between ranges
  EXPECT_TRUE(res.filled_hole);
  res = rx.seg(2100, 10);  // extends a range into the hole after it
  EXPECT_TRUE(res.filled_hole);
  res = rx.seg(3100, 10);  // extends the top range upwards: no hole below it
  EXPECT_FALSE(res.filled_hole);
}

TEST(OutOfOrder, OverlappingSegmentsMerge) {
  Receiver rx(1000);
  rx.seg(1500, 500);
  const auto res = rx.seg(1800, 500);
  EXPECT_TRUE(res.stored);
  EXPECT_FALSE(res.duplicate);  // brought 2000..2300
  EXPECT_FALSE(res.filled_hole);
  EXPECT_EQ(rx.sack(), (std::vector{blk(1500, 2300)}));
}

TEST(OutOfOrder, AdjacentSegmentsMergeIntoOneRange) {
  Receiver rx(1000);
  rx.seg(1100, 100);
  rx.seg(1300, 100);
  rx.seg(1200, 100);  // touches both
  EXPECT_EQ(rx.ooo.range_count(), 1u);
  EXPECT_EQ(rx.sack(), (std::vector{blk(1100, 1400)}));
}

TEST(OutOfOrder, DuplicatesAreFlagged) {
  Receiver rx(1000);
  rx.seg(1500, 500);
  auto res = rx.seg(1500, 500);  // exact repeat
  EXPECT_TRUE(res.stored);
  EXPECT_TRUE(res.duplicate);
  EXPECT_FALSE(res.filled_hole);
  EXPECT_EQ(res.advance, 0u);
  res = rx.seg(1600, 100);  // a subset
  EXPECT_TRUE(res.duplicate);
  res = rx.seg(1400, 200);  // partly new
  EXPECT_FALSE(res.duplicate);
  EXPECT_TRUE(res.filled_hole);

  rx.seg(1000, 400);
  EXPECT_EQ(rx.rcv_nxt, SeqNum(2000));
  res = rx.seg(1000, 500);  // wholly below RCV.NXT
  EXPECT_TRUE(res.duplicate);
  EXPECT_EQ(res.advance, 0u);
  res = rx.seg(1900, 200);  // straddles RCV.NXT: the new part is delivered
  EXPECT_FALSE(res.duplicate);
  EXPECT_EQ(res.advance, 100u);
}

TEST(OutOfOrder, SegmentSpanningSeveralHolesSwallowsTheirRanges) {
  Receiver rx(1000);
  rx.seg(1100, 100);
  rx.seg(1300, 100);
  rx.seg(1500, 100);
  ASSERT_EQ(rx.ooo.range_count(), 3u);
  auto res = rx.seg(1050, 600);
  EXPECT_TRUE(res.filled_hole);
  EXPECT_EQ(res.advance, 0u);
  EXPECT_EQ(rx.sack(), (std::vector{blk(1050, 1650)}));
  res = rx.seg(1000, 50);
  EXPECT_EQ(res.advance, 650u);
  EXPECT_TRUE(rx.ooo.empty());
}

TEST(OutOfOrder, ZeroLengthSegmentChangesNothing) {
  Receiver rx(1000);
  rx.seg(1500, 10);
  const auto res = rx.seg(1200, 0);
  EXPECT_TRUE(res.stored);
  EXPECT_EQ(res.advance, 0u);
  EXPECT_FALSE(res.duplicate);
  EXPECT_FALSE(res.filled_hole);
  EXPECT_EQ(rx.ooo.range_count(), 1u);
}

TEST(OutOfOrder, WorksAcrossTheSequenceWrap) {
  Receiver rx(0xffffff00u);
  auto res = rx.seg(0xffffff80u, 0x100);  // ends at 0x80, past the wrap
  EXPECT_TRUE(res.stored);
  EXPECT_EQ(rx.sack(), (std::vector{blk(0xffffff80u, 0x80)}));
  rx.seg(0x100, 0x10);
  EXPECT_EQ(rx.sack(), (std::vector{blk(0x100, 0x110), blk(0xffffff80u, 0x80)}));
  res = rx.seg(0xffffff00u, 0x80);
  EXPECT_EQ(res.advance, 0x180u);
  EXPECT_EQ(rx.rcv_nxt, SeqNum(0x80));
  EXPECT_EQ(rx.ooo.range_count(), 1u);
  res = rx.seg(0xfffffff0u, 0x10);  // below RCV.NXT across the wrap
  EXPECT_TRUE(res.duplicate);
}

TEST(OutOfOrder, RangeLimitRefusesOnlySegmentsNeedingANewRange) {
  Receiver rx(0);
  for (std::uint32_t k = 0; k < OutOfOrder::kMaxRanges; ++k) ASSERT_TRUE(rx.seg(100 + 20 * k, 10).stored);
  ASSERT_EQ(rx.ooo.range_count(), OutOfOrder::kMaxRanges);

  auto res = rx.seg(5000, 10);  // would be the 33rd range
  EXPECT_FALSE(res.stored);
  EXPECT_EQ(res.advance, 0u);
  EXPECT_FALSE(res.filled_hole);
  EXPECT_EQ(rx.ooo.range_count(), OutOfOrder::kMaxRanges);

  EXPECT_TRUE(rx.seg(105, 10).stored);  // extends a range: fine
  EXPECT_TRUE(rx.seg(110, 10).stored);  // bridges two ranges: frees one
  EXPECT_EQ(rx.ooo.range_count(), OutOfOrder::kMaxRanges - 1);
  EXPECT_TRUE(rx.seg(5000, 10).stored);

  res = rx.seg(0, 50);  // in order, touching nothing: never refused
  EXPECT_TRUE(res.stored);
  EXPECT_EQ(res.advance, 50u);
}

TEST(OutOfOrder, InOrderDataIsAcceptedEvenWhenFull) {
  Receiver rx(0);
  for (std::uint32_t k = 0; k < OutOfOrder::kMaxRanges; ++k) rx.seg(100 + 20 * k, 10);
  const auto res = rx.seg(0, 100);  // reaches the first range
  EXPECT_EQ(res.advance, 110u);
  EXPECT_EQ(rx.ooo.range_count(), OutOfOrder::kMaxRanges - 1);
}

TEST(OutOfOrder, ClearForgetsRangesAndPendingDsack) {
  Receiver rx(0);
  rx.seg(100, 10);
  rx.ooo.note_duplicate(SeqNum(100), SeqNum(110));
  rx.ooo.clear();
  EXPECT_TRUE(rx.ooo.empty());
  EXPECT_TRUE(rx.sack().empty());
}

// RFC 9293 §3.10.7.4 eighth step: a FIN beyond a gap is held beside the
// ranges and taken only when RCV.NXT reaches it, also across the wrap.
TEST(OutOfOrder, HeldFinIsTakenWhenRcvNxtReachesIt) {
  Receiver rx(0xFFFFFFF0u);
  rx.seg(0x00000010u, 16);  // beyond a gap that straddles the wrap
  rx.ooo.hold_fin(SeqNum(0x00000020u));
  EXPECT_FALSE(rx.ooo.take_fin(rx.rcv_nxt));
  rx.seg(0xFFFFFFF0u, 16);  // part of the gap: RCV.NXT moves to 0
  EXPECT_EQ(rx.rcv_nxt, SeqNum(0));
  EXPECT_FALSE(rx.ooo.take_fin(rx.rcv_nxt));
  EXPECT_EQ(rx.ooo.held_fin(), SeqNum(0x00000020u));
  EXPECT_EQ(rx.seg(0, 16).advance, 32u);  // the rest: RCV.NXT reaches the FIN
  EXPECT_TRUE(rx.ooo.take_fin(rx.rcv_nxt));
  EXPECT_EQ(rx.ooo.held_fin(), std::nullopt) << "taken once";
  EXPECT_FALSE(rx.ooo.take_fin(rx.rcv_nxt));
}

TEST(OutOfOrder, ClearForgetsAHeldFin) {
  Receiver rx(0);
  rx.ooo.hold_fin(SeqNum(100));
  rx.ooo.clear();
  EXPECT_EQ(rx.ooo.held_fin(), std::nullopt);
  rx.seg(0, 100);
  EXPECT_FALSE(rx.ooo.take_fin(rx.rcv_nxt));
}

// RFC 2018 §5, case 2: the first segment is dropped, the other seven
// arrive; each ACK carries one growing block.
TEST(OutOfOrderSack, Rfc2018Case2FirstSegmentDropped) {
  Receiver rx(5000);
  for (std::uint32_t s = 5500; s <= 8500; s += 500) {
    const auto res = rx.seg(s, 500);
    EXPECT_EQ(rx.rcv_nxt, SeqNum(5000));
    EXPECT_EQ(rx.sack(), (std::vector{blk(5500, s + 500)})) << "after " << s;
    EXPECT_FALSE(res.filled_hole);
  }
}

// RFC 2018 §5, case 3: the 2nd, 4th, 6th and 8th segments are dropped;
// the first block is always the newest, the rest by recency.
TEST(OutOfOrderSack, Rfc2018Case3AlternateSegmentsDropped) {
  Receiver rx(5000);
  rx.seg(5000, 500);
  EXPECT_EQ(rx.rcv_nxt, SeqNum(5500));
  EXPECT_TRUE(rx.sack().empty());
  rx.seg(6000, 500);
  EXPECT_EQ(rx.sack(), (std::vector{blk(6000, 6500)}));
  rx.seg(7000, 500);
  EXPECT_EQ(rx.sack(), (std::vector{blk(7000, 7500), blk(6000, 6500)}));
  rx.seg(8000, 500);
  EXPECT_EQ(rx.sack(), (std::vector{blk(8000, 8500), blk(7000, 7500), blk(6000, 6500)}));
  // The 4th segment arrives: its (merged) block goes first.
  auto res = rx.seg(6500, 500);
  EXPECT_TRUE(res.filled_hole);
  EXPECT_EQ(rx.rcv_nxt, SeqNum(5500));
  EXPECT_EQ(rx.sack(), (std::vector{blk(6000, 7500), blk(8000, 8500)}));
  // Then the 2nd: the ACK advances to 7500.
  res = rx.seg(5500, 500);
  EXPECT_EQ(res.advance, 2000u);
  EXPECT_EQ(rx.rcv_nxt, SeqNum(7500));
  EXPECT_EQ(rx.sack(), (std::vector{blk(8000, 8500)}));
}

TEST(OutOfOrderSack, BlockCountHonoursOptionSpace) {
  // 3 blocks fit beside timestamps, 4 without (RFC 2018 §3).
  Receiver rx(0);
  for (std::uint32_t k = 0; k < 5; ++k) rx.seg(100 * (k + 1), 10);
  EXPECT_EQ(rx.sack(3), (std::vector{blk(500, 510), blk(400, 410), blk(300, 310)}));
  EXPECT_EQ(rx.sack(4), (std::vector{blk(500, 510), blk(400, 410), blk(300, 310), blk(200, 210)}));
  std::vector<SackRange> two(2);
  EXPECT_EQ(rx.ooo.sack_blocks(two, 4), 2u);  // never beyond the span given
  EXPECT_EQ(two[0], blk(500, 510));
}

TEST(OutOfOrderSack, DuplicateSegmentMakesItsRangeTheMostRecent) {
  // RFC 2018 §4: the first block covers the segment that triggered the ACK.
  Receiver rx(0);
  rx.seg(100, 10);
  rx.seg(200, 10);
  rx.seg(300, 10);
  rx.seg(100, 10);
  EXPECT_EQ(rx.sack(), (std::vector{blk(100, 110), blk(300, 310), blk(200, 210)}));
}

// RFC 2883 §4.1.1, example 1: ACKs are lost, a duplicate below the
// cumulative ACK is reported as the only block.
TEST(OutOfOrderDsack, Rfc2883Example1DuplicateSegment) {
  Receiver rx(3000);
  rx.seg_dsack(3000, 500);
  rx.seg_dsack(3500, 500);
  EXPECT_TRUE(rx.sack().empty());
  rx.seg_dsack(3000, 500);
  EXPECT_EQ(rx.rcv_nxt, SeqNum(4000));
  EXPECT_EQ(rx.sack(), (std::vector{blk(3000, 3500)}));
  EXPECT_TRUE(rx.sack().empty());  // reported once (RFC 2883 §4 rule 2)
}

// RFC 2883 §4.1.2, example 2: an out-of-order segment and a duplicate.
TEST(OutOfOrderDsack, Rfc2883Example2OutOfOrderAndDuplicate) {
  Receiver rx(3000);
  rx.seg_dsack(3000, 500);
  rx.seg_dsack(3500, 500);
  rx.seg_dsack(4500, 500);  // 4000-4499 dropped
  EXPECT_EQ(rx.sack(), (std::vector{blk(4500, 5000)}));
  rx.seg_dsack(3000, 500);
  EXPECT_EQ(rx.sack(), (std::vector{blk(3000, 3500), blk(4500, 5000)}));
  EXPECT_EQ(rx.sack(), (std::vector{blk(4500, 5000)}));  // then plain SACK again
}

// RFC 2883 §4.1.3, example 3: a duplicate of an out-of-order segment; the
// block holding it comes second (§4 rule 4).
TEST(OutOfOrderDsack, Rfc2883Example3DuplicateOfOutOfOrderSegment) {
  Receiver rx(3500);
  rx.seg_dsack(3500, 500);
  rx.seg_dsack(4500, 500);  // 4000-4499 dropped
  EXPECT_EQ(rx.sack(), (std::vector{blk(4500, 5000)}));
  rx.seg_dsack(5000, 500);
  EXPECT_EQ(rx.sack(), (std::vector{blk(4500, 5500)}));
  rx.seg_dsack(5000, 500);
  EXPECT_EQ(rx.rcv_nxt, SeqNum(4000));
  EXPECT_EQ(rx.sack(), (std::vector{blk(5000, 5500), blk(4500, 5500)}));
  EXPECT_EQ(rx.sack(), (std::vector{blk(4500, 5500)}));
}

// RFC 2883 §4.2.1, example 4: a larger retransmission half of which is
// a duplicate; only that half is reported.
TEST(OutOfOrderDsack, Rfc2883Example4SingleDuplicateSubsegment) {
  Receiver rx(500);
  rx.seg_dsack(500, 500);
  rx.seg_dsack(2000, 500);  // 1000-1499 delayed, 1500-1999 dropped
  EXPECT_EQ(rx.sack(), (std::vector{blk(2000, 2500)}));
  rx.seg_dsack(1000, 500);  // the delayed one
  EXPECT_EQ(rx.rcv_nxt, SeqNum(1500));
  EXPECT_EQ(rx.sack(), (std::vector{blk(2000, 2500)}));
  rx.seg_dsack(1000, 1000);  // the 1000-byte retransmission
  EXPECT_EQ(rx.rcv_nxt, SeqNum(2500));
  EXPECT_EQ(rx.sack(), (std::vector{blk(1000, 1500)}));
}

// RFC 2883 §4.2.2, example 5: two non-contiguous duplicate subsegments;
// only the first is reported as the D-SACK.
TEST(OutOfOrderDsack, Rfc2883Example5TwoDuplicateSubsegments) {
  Receiver rx(500);
  rx.seg_dsack(500, 500);
  rx.seg_dsack(3000, 500);
  EXPECT_EQ(rx.sack(), (std::vector{blk(3000, 3500)}));
  rx.seg_dsack(1000, 500);
  EXPECT_EQ(rx.rcv_nxt, SeqNum(1500));
  EXPECT_EQ(rx.sack(), (std::vector{blk(3000, 3500)}));
  rx.seg_dsack(2000, 500);
  EXPECT_EQ(rx.sack(), (std::vector{blk(2000, 2500), blk(3000, 3500)}));
  rx.seg_dsack(1000, 1500);
  EXPECT_EQ(rx.rcv_nxt, SeqNum(2500));
  EXPECT_EQ(rx.sack(), (std::vector{blk(1000, 1500), blk(3000, 3500)}));
}

TEST(OutOfOrderDsack, OnlyTheLatestDuplicateIsKept) {
  // RFC 2883 §4 rule 1: a D-SACK reports the duplicate in the most recent packet.
  Receiver rx(1000);
  rx.ooo.note_duplicate(SeqNum(100), SeqNum(200));
  rx.ooo.note_duplicate(SeqNum(300), SeqNum(400));
  EXPECT_EQ(rx.sack(), (std::vector{blk(300, 400)}));
}

TEST(OutOfOrderDsack, KeptWhenThereIsNoRoomToSendIt) {
  Receiver rx(1000);
  rx.ooo.note_duplicate(SeqNum(100), SeqNum(200));
  EXPECT_TRUE(rx.sack(0).empty());
  EXPECT_EQ(rx.sack(1), (std::vector{blk(100, 200)}));
}

// Reference model: a bitmap over the stream, with the same bound on ranges.
// The received stream, reassembled through a ByteRing with write_at and
// commit, must equal what was sent.
TEST(OutOfOrder, MatchesABitmapModelAndReassemblesTheStream) {
  std::size_t refused = 0, dups = 0, fills = 0, advances = 0;
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    Rng rng(seed);
    constexpr std::size_t kLen = 40000;
    constexpr std::size_t kWindow = 4096;
    std::vector<std::uint8_t> stream(kLen);
    for (auto& b : stream) b = static_cast<std::uint8_t>(rng.next());
    const SeqNum isn(static_cast<std::uint32_t>(0xffffffffu - rng.below(20000)));  // crosses the wrap

    ByteRing ring(kWindow);
    OutOfOrder ooo;
    std::vector<std::uint8_t> held(kLen + 1, 0);  // out-of-order bytes, by stream offset
    std::size_t rcv = 0;
    std::vector<std::uint8_t> got;

    auto runs = [&] {
      std::vector<std::pair<std::size_t, std::size_t>> r;
      const std::uint8_t* h = held.data();  // raw: this loop dominates under -O0 and ASan
      for (std::size_t k = rcv; k < std::min(kLen, rcv + kWindow); ++k) {  // nothing is held beyond the window
        if (!h[k]) continue;
        if (!r.empty() && r.back().second == k)
          ++r.back().second;
        else
          r.emplace_back(k, k + 1);
      }
      return r;
    };

    std::vector<std::pair<std::size_t, std::size_t>> before;  // runs held, as of the last add()
    for (int step = 0; step < 4000 && rcv < kLen; ++step) {
      // The application reads now and then, opening the window.
      if (rng.chance(0.3)) {
        std::vector<std::uint8_t> out(rng.below(2000));
        out.resize(ring.read(out));
        got.insert(got.end(), out.begin(), out.end());
      }
      const std::size_t wnd_end = std::min(kLen, rcv + ring.free());
      const std::size_t s =
          rcv - std::min<std::size_t>(rcv, 300) + rng.below(wnd_end - rcv + std::min<std::size_t>(rcv, 300) + 1);
      // Short segments too, so that ranges pile up to the limit.
      std::size_t e =
          std::min(wnd_end, s + 1 + rng.below(rng.chance(0.15) ? 400 : 24));  // trimmed to the window by the caller
      if (e <= s) continue;
      // Half the time the bytes just past RCV.NXT are "lost": the front hole
      // stays open and ranges pile up behind it, up to the limit.
      if ((step / 200) % 2 == 0 && e > rcv && s < rcv + 64) continue;

      // Model.
      const std::size_t ss = std::max(s, rcv);
      bool dup = true;
      for (std::size_t k = ss; k < e; ++k) dup = dup && held[k] && k != rcv;
      if (e <= rcv) dup = true;
      bool touches = ss == rcv;
      for (std::size_t k = ss == 0 ? 0 : ss - 1; k <= e && k < kLen; ++k) touches = touches || held[k];
      const bool stored = dup || touches || before.size() < OutOfOrder::kMaxRanges;
      const std::size_t top = before.empty() ? rcv : before.back().second;
      bool fill = false;
      if (stored && !dup)
        for (std::size_t k = ss; k < e; ++k) fill = fill || (!held[k] && k < top);

      // Implementation, as the TCB uses it.
      const SeqNum rcv_nxt = isn + static_cast<std::uint32_t>(rcv);
      if (e > rcv) {
        ring.write_at(ss - rcv, std::span<const std::uint8_t>(stream.data() + ss, e - ss));
      }
      const auto res = ooo.add(rcv_nxt, isn + static_cast<std::uint32_t>(s), static_cast<std::uint32_t>(e - s));
      ASSERT_EQ(res.stored, stored) << "seed " << seed << " step " << step;
      ASSERT_EQ(res.duplicate, dup) << "seed " << seed << " step " << step;
      ASSERT_EQ(res.filled_hole, fill) << "seed " << seed << " step " << step;

      std::size_t adv = 0;
      if (stored && !dup) {
        for (std::size_t k = ss; k < e; ++k) held[k] = 1;
        while (rcv + adv < kLen && held[rcv + adv]) held[rcv + adv++] = 0;
      }
      ASSERT_EQ(res.advance, adv) << "seed " << seed << " step " << step;
      refused += !stored;
      dups += dup;
      fills += fill;
      advances += adv > 0;
      ring.commit(res.advance);
      rcv += adv;

      if (stored && !dup) before = runs();  // otherwise nothing changed
      const auto& after = before;
      ASSERT_EQ(ooo.range_count(), after.size());
      std::vector<SackRange> blocks(OutOfOrder::kMaxRanges);
      blocks.resize(ooo.sack_blocks(blocks, OutOfOrder::kMaxRanges));
      ASSERT_EQ(blocks.size(), after.size());
      std::sort(blocks.begin(), blocks.end(), [](SackRange a, SackRange b) { return a.left < b.left; });
      for (std::size_t k = 0; k < after.size(); ++k) {
        ASSERT_EQ(blocks[k].left, isn + static_cast<std::uint32_t>(after[k].first));
        ASSERT_EQ(blocks[k].right, isn + static_cast<std::uint32_t>(after[k].second));
      }
    }
    std::vector<std::uint8_t> out(ring.size());
    ring.read(out);
    got.insert(got.end(), out.begin(), out.end());
    ASSERT_EQ(got.size(), rcv);
    ASSERT_TRUE(std::equal(got.begin(), got.end(), stream.begin())) << "seed " << seed;
  }
  // The walk must have exercised every outcome, the range limit included.
  EXPECT_GT(refused, 0u);
  EXPECT_GT(dups, 0u);
  EXPECT_GT(fills, 0u);
  EXPECT_GT(advances, 0u);
}
