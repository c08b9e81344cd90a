// SackScoreboard: the sender's view of what the receiver holds (RFC 2018),
// D-SACK detection (RFC 2883) and the RFC 6675 loss-recovery queries.
#include "tcp/sack.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "base/rng.hpp"
#include "sack_range_print.hpp"

using namespace weft;
using namespace weft::tcp;

namespace {

SackRange blk(std::uint32_t l, std::uint32_t r) { return SackRange{SeqNum(l), SeqNum(r)}; }
std::optional<SackRange> seg(std::uint32_t l, std::uint32_t r) { return blk(l, r); }
SeqNum sq(std::uint32_t v) { return SeqNum(v); }

std::uint32_t ack(SackScoreboard& sb, std::uint32_t cum, std::vector<SackRange> blocks = {}) {
  return sb.on_ack(sq(cum), blocks);
}

constexpr std::uint32_t kSmss = 1000;
constexpr SeqNum kNoRxt(999);  // HighRxt = HighACK = SND.UNA - 1 when nothing is retransmitted

}  // namespace

TEST(SackScoreboard, EmptyBoardKnowsNothing) {
  SackScoreboard sb;
  sb.reset(sq(1000));
  EXPECT_TRUE(sb.empty());
  EXPECT_EQ(sb.highest_sacked(), sq(1000));
  EXPECT_EQ(sb.sacked_bytes(), 0u);
  EXPECT_FALSE(sb.is_sacked(sq(1500)));
  EXPECT_FALSE(sb.is_lost(sq(1000), kSmss));
  EXPECT_EQ(sb.pipe(sq(1000), sq(11000), kNoRxt, kSmss), 10000u);  // all in flight
  EXPECT_EQ(sb.next_seg(sq(1000), sq(11000), kNoRxt, kSmss, sq(10999)), std::nullopt);
}

TEST(SackScoreboard, CountsOnlyNewlySackedBytesAndMerges) {
  SackScoreboard sb;
  sb.reset(sq(1000));
  EXPECT_EQ(ack(sb, 1000, {blk(2000, 3000)}), 1000u);
  EXPECT_EQ(ack(sb, 1000, {blk(2000, 3000)}), 0u);                     // repeated
  EXPECT_EQ(ack(sb, 1000, {blk(3000, 3500), blk(2000, 3000)}), 500u);  // adjacent: merged
  EXPECT_EQ(sb.range_count(), 1u);
  EXPECT_EQ(ack(sb, 1000, {blk(5000, 6000), blk(2500, 4000)}), 1500u);
  EXPECT_EQ(sb.range_count(), 2u);
  EXPECT_EQ(sb.sacked_bytes(), 3000u);
  EXPECT_EQ(sb.highest_sacked(), sq(6000));
  EXPECT_TRUE(sb.is_sacked(sq(2000)));
  EXPECT_TRUE(sb.is_sacked(sq(3999)));
  EXPECT_FALSE(sb.is_sacked(sq(4000)));
  EXPECT_FALSE(sb.is_sacked(sq(1999)));
  EXPECT_FALSE(sb.last_ack_had_dsack());
}

TEST(SackScoreboard, CumulativeAckDropsAndTrimsRanges) {
  SackScoreboard sb;
  sb.reset(sq(1000));
  ack(sb, 1000, {blk(4000, 5000), blk(2000, 3000)});
  EXPECT_EQ(ack(sb, 3000), 0u);
  EXPECT_EQ(sb.range_count(), 1u);
  EXPECT_EQ(sb.sacked_bytes(), 1000u);
  ack(sb, 4500);  // into the middle of a range
  EXPECT_EQ(sb.sacked_bytes(), 500u);
  EXPECT_FALSE(sb.is_sacked(sq(4400)));
  ack(sb, 2000);  // an old, reordered ACK does not move SND.UNA back
  EXPECT_EQ(sb.sacked_bytes(), 500u);
  ack(sb, 5000);
  EXPECT_TRUE(sb.empty());
  EXPECT_EQ(sb.highest_sacked(), sq(5000));
}

TEST(SackScoreboard, ResetForgetsEverything) {
  SackScoreboard sb;
  sb.reset(sq(1000));
  ack(sb, 1000, {blk(2000, 3000)});
  sb.reset(sq(7000));
  EXPECT_TRUE(sb.empty());
  EXPECT_EQ(sb.sacked_bytes(), 0u);
  EXPECT_EQ(sb.highest_sacked(), sq(7000));
}

// RFC 2883 §5 (sender side of §4.1.1): the first block lies below the
// cumulative ACK.
TEST(SackScoreboardDsack, FirstBlockBelowCumulativeAck) {
  SackScoreboard sb;
  sb.reset(sq(3000));
  EXPECT_EQ(ack(sb, 4000, {blk(3000, 3500)}), 0u);
  EXPECT_TRUE(sb.last_ack_had_dsack());
  EXPECT_TRUE(sb.empty());
  // RFC 2883 §4.1.2: the D-SACK, then an ordinary block that counts.
  EXPECT_EQ(ack(sb, 4000, {blk(3000, 3500), blk(4500, 5000)}), 500u);
  EXPECT_TRUE(sb.last_ack_had_dsack());
  ack(sb, 4000, {blk(4500, 5000)});
  EXPECT_FALSE(sb.last_ack_had_dsack());  // per ACK, not sticky
}

// RFC 2883 §4.1.3: the first block lies within the second.
TEST(SackScoreboardDsack, FirstBlockInsideSecond) {
  SackScoreboard sb;
  sb.reset(sq(4000));
  ack(sb, 4000, {blk(4500, 5000)});
  EXPECT_EQ(ack(sb, 4000, {blk(4500, 5500)}), 500u);
  EXPECT_FALSE(sb.last_ack_had_dsack());
  EXPECT_EQ(ack(sb, 4000, {blk(5000, 5500), blk(4500, 5500)}), 0u);
  EXPECT_TRUE(sb.last_ack_had_dsack());
  EXPECT_EQ(sb.sacked_bytes(), 1000u);
}

TEST(SackScoreboardDsack, DsackAboveTheAckDoesNotCountEvenIfNew) {
  // A D-SACK reports a duplicate: whatever it covers is not newly SACKed
  // by it (the second block carries that news).
  SackScoreboard sb;
  sb.reset(sq(4000));
  EXPECT_EQ(ack(sb, 4000, {blk(5000, 5500), blk(4500, 6000)}), 1500u);
  EXPECT_TRUE(sb.last_ack_had_dsack());
}

TEST(SackScoreboard, LostByBytes) {
  // RFC 6675 §4 IsLost: more than (DupThresh - 1) * SMSS bytes SACKed above.
  SackScoreboard sb;
  sb.reset(sq(1000));
  ack(sb, 1000, {blk(2000, 4000)});
  EXPECT_FALSE(sb.is_lost(sq(1000), kSmss));  // exactly 2 * SMSS: not more
  ack(sb, 1000, {blk(2000, 4001)});
  EXPECT_TRUE(sb.is_lost(sq(1000), kSmss));
  EXPECT_TRUE(sb.is_lost(sq(1999), kSmss));
  // Only bytes strictly above seq count: from 2000, 2000 bytes remain above.
  EXPECT_FALSE(sb.is_lost(sq(2000), kSmss));
  EXPECT_FALSE(sb.is_lost(sq(1000), 1500));  // SMSS matters
}

TEST(SackScoreboard, LostByDiscontiguousRanges) {
  // RFC 6675 §4 IsLost: DupThresh discontiguous SACKed ranges above.
  SackScoreboard sb;
  sb.reset(sq(1000));
  ack(sb, 1000, {blk(2000, 2001), blk(3000, 3001)});
  EXPECT_FALSE(sb.is_lost(sq(1000), kSmss));
  ack(sb, 1000, {blk(4000, 4001)});
  EXPECT_TRUE(sb.is_lost(sq(1000), kSmss));
  EXPECT_TRUE(sb.is_lost(sq(1999), kSmss));
  EXPECT_FALSE(sb.is_lost(sq(2000), kSmss));  // only two above it
}

// Derived from RFC 6675 §5 with SMSS = 1000 and ten segments in flight,
// [1000, 11000), the first lost: the third SACKed segment marks it lost
// (the classic three duplicate ACKs), loss recovery retransmits it, and
// pipe follows §4 SetPipe.
TEST(SackScoreboard, Rfc6675FirstSegmentLost) {
  SackScoreboard sb;
  sb.reset(sq(1000));
  const SeqNum una = sq(1000), nxt = sq(11000);

  ack(sb, 1000, {blk(2000, 3000)});
  EXPECT_FALSE(sb.is_lost(una, kSmss));
  EXPECT_EQ(sb.pipe(una, nxt, kNoRxt, kSmss), 9000u);
  EXPECT_EQ(sb.next_lost_seg(una, nxt, kNoRxt, kSmss), std::nullopt);
  ack(sb, 1000, {blk(2000, 4000)});
  EXPECT_FALSE(sb.is_lost(una, kSmss));
  ack(sb, 1000, {blk(2000, 5000)});
  EXPECT_TRUE(sb.is_lost(una, kSmss));

  // Not lost: [5000, 11000) in flight; lost: [1000, 2000) is not.
  EXPECT_EQ(sb.pipe(una, nxt, kNoRxt, kSmss), 6000u);
  // Step 4.3: retransmit the first segment from HighACK + 1.
  EXPECT_EQ(sb.next_seg(una, nxt, kNoRxt, kSmss, sq(10999)), seg(1000, 2000));
  const SeqNum high_rxt = sq(1999);
  // SetPipe (b): the retransmission is in flight again.
  EXPECT_EQ(sb.pipe(una, nxt, high_rxt, kSmss), 7000u);
  // Nothing else to repair below the highest SACK; rule (2), new data, is next.
  EXPECT_EQ(sb.next_seg(una, nxt, high_rxt, kSmss, sq(10999)), std::nullopt);
  // Rule (4): with no new data, one rescue retransmission of the tail.
  EXPECT_EQ(sb.rescue_seg(una, nxt, kSmss, std::nullopt), seg(10000, 11000));

  // Further SACKs arrive for segments sent before the loss was repaired.
  ack(sb, 1000, {blk(2000, 7000)});
  EXPECT_EQ(sb.pipe(una, nxt, high_rxt, kSmss), 5000u);
  // The retransmission arrives: the cumulative ACK jumps over the SACKed data.
  ack(sb, 7000);
  EXPECT_TRUE(sb.empty());
  EXPECT_EQ(sb.pipe(sq(7000), nxt, high_rxt, kSmss), 4000u);
}

TEST(SackScoreboard, NextSegWalksLostHolesInOrder) {
  // Lost: [1000, 2000) and [3000, 4000); SACKed: [2000, 3000), [4000, 8000).
  SackScoreboard sb;
  sb.reset(sq(1000));
  ack(sb, 1000, {blk(4000, 8000), blk(2000, 3000)});
  const SeqNum una = sq(1000), nxt = sq(10000);
  EXPECT_TRUE(sb.is_lost(sq(1000), kSmss));
  EXPECT_TRUE(sb.is_lost(sq(3000), kSmss));
  EXPECT_FALSE(sb.is_lost(sq(8000), kSmss));  // nothing SACKed above it
  EXPECT_EQ(sb.next_seg(una, nxt, kNoRxt, kSmss, sq(9999)), seg(1000, 2000));
  EXPECT_EQ(sb.next_seg(una, nxt, sq(1999), kSmss, sq(9999)), seg(3000, 4000));
  EXPECT_EQ(sb.next_seg(una, nxt, sq(3999), kSmss, sq(9999)), std::nullopt);
  // A partial retransmission resumes right after HighRxt (rule 1.a).
  EXPECT_EQ(sb.next_seg(una, nxt, sq(1499), kSmss, sq(9999)), seg(1500, 2000));
  // pipe: [8000, 10000) in flight; lost holes out unless retransmitted.
  EXPECT_EQ(sb.pipe(una, nxt, kNoRxt, kSmss), 2000u);
  EXPECT_EQ(sb.pipe(una, nxt, sq(1999), kSmss), 3000u);
  EXPECT_EQ(sb.pipe(una, nxt, sq(3999), kSmss), 4000u);
}

TEST(SackScoreboard, PipeCountsHighRxtItselfAsRetransmitted) {
  // HighRxt is inclusive (RFC 6675 §2): one retransmitted octet at the very
  // start of a hole is in flight again (SetPipe step b).
  SackScoreboard sb;
  sb.reset(sq(1000));
  ack(sb, 1000, {blk(2000, 5000)});  // [1000, 2000) lost
  EXPECT_EQ(sb.pipe(sq(1000), sq(5000), sq(999), kSmss), 0u);
  EXPECT_EQ(sb.pipe(sq(1000), sq(5000), sq(1000), kSmss), 1u);
  EXPECT_EQ(sb.pipe(sq(1000), sq(5000), sq(1999), kSmss), 1000u);
  EXPECT_EQ(sb.pipe(sq(1000), sq(5000), sq(4999), kSmss), 1000u);  // SACKed octets never count
}

TEST(SackScoreboard, NextSegNeverCoversASackedByte) {
  SackScoreboard sb;
  sb.reset(sq(1000));
  ack(sb, 1000, {blk(1300, 5000)});
  const auto s = sb.next_seg(sq(1000), sq(6000), kNoRxt, kSmss, sq(5999));
  EXPECT_EQ(s, seg(1000, 1300));  // shorter than SMSS: stops at the SACKed block
  for (std::uint32_t v = 1000; v < 1300; ++v) EXPECT_FALSE(sb.is_sacked(sq(v)));
  // And a hole longer than SMSS yields SMSS.
  sb.reset(sq(1000));
  ack(sb, 1000, {blk(4000, 8000)});
  EXPECT_EQ(sb.next_seg(sq(1000), sq(9000), kNoRxt, kSmss, sq(8999)), seg(1000, 2000));
}

TEST(SackScoreboard, Rule3RetransmitsUnsackedDataNotYetLost) {
  // One SACKed segment above a hole: IsLost() is false, so rule (1) finds
  // nothing, but rule (3) offers the hole below the highest SACK to keep the
  // ACK clock going when no new data can be sent.
  SackScoreboard sb;
  sb.reset(sq(1000));
  ack(sb, 1000, {blk(5000, 6000)});
  const SeqNum una = sq(1000), nxt = sq(6000);
  EXPECT_EQ(sb.next_lost_seg(una, nxt, kNoRxt, kSmss), std::nullopt);
  EXPECT_EQ(sb.next_unsacked_seg(una, nxt, kNoRxt, kSmss), seg(1000, 2000));
  EXPECT_EQ(sb.next_seg(una, nxt, kNoRxt, kSmss, sq(5999)), seg(1000, 2000));
  EXPECT_EQ(sb.next_seg(una, nxt, sq(1999), kSmss, sq(5999)), seg(2000, 3000));
  EXPECT_EQ(sb.next_seg(una, nxt, sq(4499), kSmss, sq(5999)), seg(4500, 5000));
  EXPECT_EQ(sb.next_seg(una, nxt, sq(4999), kSmss, sq(5999)), std::nullopt);  // rule 1.b/3: below the highest SACK only
  // Rule (1) wins over rule (3) when both apply.
  ack(sb, 1000, {blk(7000, 8000), blk(9000, 9001)});
  EXPECT_EQ(sb.next_lost_seg(una, sq(10000), kNoRxt, kSmss), seg(1000, 2000));
}

TEST(SackScoreboard, RescueRetransmissionOncePerRecovery) {
  // RFC 6675 rule (4): the highest unSACKed octet, once until HighACK
  // passes RescueRxt.
  SackScoreboard sb;
  sb.reset(sq(1000));
  ack(sb, 1000, {blk(5500, 6000)});
  // Highest unSACKed octet is 5499: the segment ends there.
  EXPECT_EQ(sb.rescue_seg(sq(1000), sq(6000), kSmss, std::nullopt), seg(4500, 5500));
  const SeqNum rescue_rxt = sq(5999);  // RescueRxt = RecoveryPoint
  EXPECT_EQ(sb.rescue_seg(sq(1000), sq(6000), kSmss, rescue_rxt), std::nullopt);
  EXPECT_EQ(sb.rescue_seg(sq(6000), sq(6000), kSmss, rescue_rxt), std::nullopt);     // nothing outstanding
  EXPECT_EQ(sb.rescue_seg(sq(6001), sq(8000), kSmss, rescue_rxt), seg(7000, 8000));  // HighACK 6000 > 5999
  // A small hole bounds it.
  sb.reset(sq(1000));
  ack(sb, 1000, {blk(1200, 5000)});
  EXPECT_EQ(sb.rescue_seg(sq(1000), sq(5000), kSmss, std::nullopt), seg(1000, 1200));
  // Everything SACKed: nothing to rescue.
  sb.reset(sq(1000));
  EXPECT_EQ(sb.rescue_seg(sq(1000), sq(1000), kSmss, std::nullopt), std::nullopt);
}

TEST(SackScoreboard, WorksAcrossTheSequenceWrap) {
  SackScoreboard sb;
  const std::uint32_t base = 0xfffff000u;  // [base, base + 10000) crosses 2^32
  sb.reset(sq(base));
  EXPECT_EQ(ack(sb, base, {blk(base + 1000, base + 4096 + 1000)}), 4096u);
  EXPECT_EQ(sb.highest_sacked(), sq(base + 5096));
  EXPECT_TRUE(sb.is_sacked(sq(0)));
  EXPECT_TRUE(sb.is_lost(sq(base), kSmss));
  EXPECT_EQ(sb.next_seg(sq(base), sq(base + 10000), sq(base - 1), kSmss, sq(base + 9999)), seg(base, base + 1000));
  EXPECT_EQ(sb.pipe(sq(base), sq(base + 10000), sq(base - 1), kSmss), 10000u - 4096u - 1000u);
  ack(sb, base + 3000);
  EXPECT_EQ(sb.sacked_bytes(), 2096u);
  EXPECT_EQ(ack(sb, base + 3000, {blk(base + 1000, base + 2000)}), 0u);  // below the ACK: a D-SACK
  EXPECT_TRUE(sb.last_ack_had_dsack());
}

TEST(SackScoreboard, BoundedByDroppingTheHighestRange) {
  SackScoreboard sb;
  sb.reset(sq(0));
  for (std::uint32_t k = 0; k < SackScoreboard::kMaxRanges; ++k) ack(sb, 0, {blk(100 * (k + 1), 100 * (k + 1) + 10)});
  ASSERT_EQ(sb.range_count(), SackScoreboard::kMaxRanges);
  const SeqNum top = sb.highest_sacked();
  // A new range above all: dropped, counted as nothing.
  EXPECT_EQ(ack(sb, 0, {blk(100000, 100010)}), 0u);
  EXPECT_EQ(sb.highest_sacked(), top);
  // A new range lower down: kept; the highest goes.
  EXPECT_EQ(ack(sb, 0, {blk(50, 60)}), 10u);
  EXPECT_EQ(sb.range_count(), SackScoreboard::kMaxRanges);
  EXPECT_LT(sb.highest_sacked(), top);
  EXPECT_EQ(sb.sacked_bytes(), 10u * SackScoreboard::kMaxRanges);
  // Merging never needs room.
  EXPECT_EQ(ack(sb, 0, {blk(60, 100)}), 40u);
}

// Reference model: one bit per byte of a 64 KiB window, the RFC 6675
// definitions applied literally, octet by octet.
TEST(SackScoreboard, MatchesABitmapModel) {
  constexpr std::uint32_t kUnit = 520;  // unaligned to SMSS; at most 63 disjoint ranges
  constexpr std::uint32_t kUnits = 126;
  constexpr std::uint32_t kWin = kUnit * kUnits;  // 65520 bytes
  std::size_t dsacks = 0, rule1s = 0, rule3s = 0, lost_probes = 0;
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    Rng rng(seed);
    const SeqNum base(static_cast<std::uint32_t>(0xffffffffu - rng.below(2 * kWin)));  // crosses the wrap
    const SeqNum nxt = base + kWin;
    SackScoreboard sb;
    sb.reset(base);
    std::vector<std::uint8_t> sacked(kWin + 2, 0);
    std::uint32_t una = 0;                                                           // offset of SND.UNA from base
    std::vector<std::uint32_t> bytes_above(kWin + 1, 0), ranges_above(kWin + 1, 0);  // recomputed each ACK

    for (int step = 0; step < 300; ++step) {
      // The ACK: the cumulative point moves forward sometimes (or back, as a
      // reordered old ACK), blocks are unions of units above it.
      std::uint32_t cum = una;
      const auto r = rng.below(10);
      if (r < 3)
        cum = std::min(kWin, una + kUnit * static_cast<std::uint32_t>(rng.below(4)));
      else if (r == 3 && una > 0)
        cum = una - static_cast<std::uint32_t>(rng.below(una + 1));
      std::vector<SackRange> blocks;
      std::vector<std::pair<std::uint32_t, std::uint32_t>> offs;
      const std::uint32_t lo_unit = (std::max(cum, una) + kUnit - 1) / kUnit;
      for (std::size_t b = rng.below(5); b > 0 && lo_unit < kUnits; --b) {
        const std::uint32_t u = lo_unit + static_cast<std::uint32_t>(rng.below(kUnits - lo_unit));
        const std::uint32_t n = 1 + static_cast<std::uint32_t>(rng.below(std::min<std::uint32_t>(4, kUnits - u)));
        offs.emplace_back(u * kUnit, (u + n) * kUnit);
      }
      if (rng.chance(0.1) && cum >= kUnit) offs.insert(offs.begin(), {cum - kUnit, cum});  // D-SACK below the ACK
      for (auto [l, rr] : offs) blocks.push_back(SackRange{base + l, base + rr});

      // Model update.
      std::uint32_t expect_fresh = 0;
      const std::uint32_t new_una = std::max(una, cum);
      for (std::uint32_t k = una; k < new_una; ++k) sacked[k] = 0;
      una = new_una;
      bool dsack = false;
      if (!offs.empty()) {
        dsack = offs[0].first < cum ||
                (offs.size() > 1 && offs[1].first <= offs[0].first && offs[0].second <= offs[1].second);
      }
      for (std::size_t b = dsack ? 1 : 0; b < offs.size(); ++b)
        for (std::uint32_t k = std::max(offs[b].first, una); k < offs[b].second; ++k)
          if (!sacked[k]) sacked[k] = 1, ++expect_fresh;

      ASSERT_EQ(sb.on_ack(base + cum, blocks), expect_fresh) << "seed " << seed << " step " << step;
      ASSERT_EQ(sb.last_ack_had_dsack(), dsack);

      // Suffix counts: SACKed bytes strictly above each octet, and SACKed
      // runs with any byte above it (a run counts by its last byte).
      // Raw pointers: these per-octet loops dominate the run time under -O0
      // and ASan. sacked is padded so that sk[kWin] and sk[kWin + 1] read 0.
      const std::uint8_t* sk = sacked.data();
      std::uint32_t* ba = bytes_above.data();
      std::uint32_t* ra = ranges_above.data();
      for (std::uint32_t k = kWin; k-- > 0;) {
        ba[k] = ba[k + 1] + sk[k + 1];
        ra[k] = ra[k + 1] + (sk[k + 1] && !sk[k + 2]);
      }
      const std::uint32_t smss = 536 + static_cast<std::uint32_t>(rng.below(1000));
      auto lost = [&](std::uint32_t k) { return ranges_above[k] >= 3 || bytes_above[k] > 2 * smss; };
      std::uint32_t total = 0, highest = una;
      for (std::uint32_t k = una; k < kWin; ++k)
        if (sk[k]) ++total, highest = k + 1;
      ASSERT_EQ(sb.sacked_bytes(), total);
      ASSERT_EQ(sb.highest_sacked(), base + highest);
      ASSERT_EQ(sb.empty(), total == 0);
      for (int probe = 0; probe < 50; ++probe) {
        const std::uint32_t k = una + static_cast<std::uint32_t>(rng.below(kWin - una + (una == kWin)));
        if (k >= kWin) break;
        ASSERT_EQ(sb.is_sacked(base + k), bool(sacked[k])) << k;
        ASSERT_EQ(sb.is_lost(base + k, smss), lost(k)) << k;
        lost_probes += lost(k);
      }

      // HighRxt anywhere from "nothing yet" to the top of the window.
      const std::uint32_t rxt_end = una + static_cast<std::uint32_t>(rng.below(kWin - una + 1));  // one past HighRxt
      const SeqNum high_rxt = base + rxt_end - 1;
      std::uint64_t pipe = 0;
      for (std::uint32_t k = una; k < kWin; ++k) {
        if (sk[k]) continue;
        if (!(ra[k] >= 3 || ba[k] > 2 * smss)) ++pipe;
        if (k < rxt_end) ++pipe;
      }
      ASSERT_EQ(sb.pipe(base + una, nxt, high_rxt, smss), pipe) << "seed " << seed << " step " << step;

      // NextSeg rules (1) and (3), octet by octet.
      std::optional<SackRange> rule1, rule3;
      for (std::uint32_t k = std::max(una, rxt_end); k < highest; ++k) {
        if (sk[k]) continue;
        auto extent = [&] {
          std::uint32_t e = k;
          while (e < kWin && !sacked[e] && e - k < smss) ++e;
          return SackRange{base + k, base + e};
        };
        if (!rule3) rule3 = extent();
        if (lost(k)) {
          rule1 = extent();
          break;
        }
      }
      ASSERT_EQ(sb.next_lost_seg(base + una, nxt, high_rxt, smss), rule1) << "seed " << seed << " step " << step;
      ASSERT_EQ(sb.next_unsacked_seg(base + una, nxt, high_rxt, smss), rule3);
      ASSERT_EQ(sb.next_seg(base + una, nxt, high_rxt, smss, nxt - 1), rule1 ? rule1 : rule3);
      dsacks += dsack;
      rule1s += rule1.has_value();
      rule3s += !rule1 && rule3;
      if (una == kWin) break;
    }
  }
  EXPECT_GT(dsacks, 0u);
  EXPECT_GT(rule1s, 0u);
  EXPECT_GT(rule3s, 0u);
  EXPECT_GT(lost_probes, 0u);
}
