#include "tcp/sack.hpp"

#include <algorithm>
#include <limits>

namespace weft::tcp {

void SackScoreboard::reset(SeqNum snd_una) {
  n_ = 0;
  snd_una_ = snd_una;
  sacked_ = 0;
  last_dsack_ = false;
}

void SackScoreboard::erase(std::size_t first, std::size_t last) {
  std::copy(ranges_.begin() + static_cast<std::ptrdiff_t>(last), ranges_.begin() + static_cast<std::ptrdiff_t>(n_),
            ranges_.begin() + static_cast<std::ptrdiff_t>(first));
  n_ -= last - first;
}

void SackScoreboard::drop_below(SeqNum cum_ack) {
  std::size_t k = 0;
  while (k < n_ && ranges_[k].right <= cum_ack) sacked_ -= ranges_[k++].length();
  erase(0, k);
  if (n_ > 0 && ranges_[0].left < cum_ack) {
    sacked_ -= seq_len(ranges_[0].left, cum_ack);
    ranges_[0].left = cum_ack;
  }
}

std::uint32_t SackScoreboard::insert(SeqNum l, SeqNum r) {
  // Ranges [i, j) overlap or touch [l, r) and merge with it.
  std::size_t i = 0;
  while (i < n_ && ranges_[i].right < l) ++i;
  std::size_t j = i;
  std::uint32_t already = 0;
  while (j < n_ && ranges_[j].left <= r) {
    const SeqNum a = std::max(l, ranges_[j].left), b = std::min(r, ranges_[j].right);
    if (a < b) already += seq_len(a, b);
    ++j;
  }
  const std::uint32_t fresh = seq_len(l, r) - already;

  if (i == j) {
    if (n_ == kMaxRanges) {
      // Full. Keep the lowest ranges: recovery repairs holes from SND.UNA
      // upwards, and forgetting SACK state is safe (RFC 2018 §8). The
      // receiver repeats its most recent blocks, so the highest come back.
      if (i == n_) return 0;
      --n_;
      sacked_ -= ranges_[n_].length();
    }
    std::copy_backward(ranges_.begin() + static_cast<std::ptrdiff_t>(i),
                       ranges_.begin() + static_cast<std::ptrdiff_t>(n_),
                       ranges_.begin() + static_cast<std::ptrdiff_t>(n_ + 1));
    ++n_;
    ranges_[i] = SackRange{l, r};
  } else {
    ranges_[i] = SackRange{std::min(l, ranges_[i].left), std::max(r, ranges_[j - 1].right)};
    erase(i + 1, j);
  }
  sacked_ += fresh;
  return fresh;
}

std::uint32_t SackScoreboard::on_ack(SeqNum cum_ack, std::span<const SackRange> blocks) {
  last_dsack_ = false;
  if (cum_ack > snd_una_) {
    snd_una_ = cum_ack;
    drop_below(cum_ack);
  }
  std::size_t first = 0;
  if (!blocks.empty()) {
    // RFC 2883 §5: the first block is a D-SACK if it reports data the
    // cumulative ACK already covers, or data inside the second block (the
    // receiver puts the larger block holding the duplicate second, §4
    // rule 4).
    const SackRange& b0 = blocks[0];
    const bool below_ack = b0.left < cum_ack;
    const bool inside_second = blocks.size() > 1 && blocks[1].left <= b0.left && b0.right <= blocks[1].right;
    if (below_ack || inside_second) {
      last_dsack_ = true;
      first = 1;
    }
  }
  std::uint32_t fresh = 0;
  for (std::size_t k = first; k < blocks.size(); ++k) {
    // Anything at or below the cumulative ACK is already acknowledged.
    const SeqNum l = std::max(blocks[k].left, snd_una_);
    const SeqNum r = blocks[k].right;
    if (l < r) fresh += insert(l, r);
  }
  return fresh;
}

bool SackScoreboard::is_sacked(SeqNum seq) const {
  for (std::size_t k = 0; k < n_; ++k) {
    if (seq < ranges_[k].left) return false;
    if (seq < ranges_[k].right) return true;
  }
  return false;
}

SackScoreboard::Above SackScoreboard::above(SeqNum seq) const {
  Above a;
  const SeqNum from = seq + 1;
  for (std::size_t k = n_; k-- > 0;) {
    if (ranges_[k].right <= from) break;  // sorted: nothing lower is above seq
    a.bytes += seq_len(std::max(ranges_[k].left, from), ranges_[k].right);
    ++a.ranges;
  }
  return a;
}

bool SackScoreboard::is_lost(SeqNum seq, std::uint32_t smss) const { return lost(above(seq), smss); }

std::uint32_t SackScoreboard::pipe(SeqNum snd_una, SeqNum snd_nxt, SeqNum high_rxt, std::uint32_t smss) const {
  // Walk the holes (unSACKed runs) of [snd_una, snd_nxt) instead of every
  // octet: within one hole the SACKed ranges above an octet are the same
  // for every octet, so IsLost() is constant across the hole.
  std::uint64_t pipe = 0;
  auto account = [&](SeqNum a, SeqNum b) {
    if (!lost(above(a), smss)) pipe += seq_len(a, b);                  // (a) not lost: still in flight
    if (a <= high_rxt) pipe += seq_len(a, std::min(b, high_rxt + 1));  // (b) retransmitted: in flight again
  };
  SeqNum cur = snd_una;
  for (std::size_t k = 0; k < n_ && cur < snd_nxt; ++k) {
    const SeqNum hole_end = std::min(ranges_[k].left, snd_nxt);
    if (cur < hole_end) account(cur, hole_end);
    cur = std::max(cur, ranges_[k].right);
  }
  if (cur < snd_nxt) account(cur, snd_nxt);
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(pipe, std::numeric_limits<std::uint32_t>::max()));
}

std::optional<SackRange> SackScoreboard::first_hole_from(SeqNum from, SeqNum snd_nxt) const {
  SeqNum cur = from;
  for (std::size_t k = 0; k < n_; ++k) {
    if (ranges_[k].right <= cur) continue;
    if (ranges_[k].left <= cur) {
      cur = ranges_[k].right;
      continue;
    }
    // cur is unSACKed and a SACKed octet lies above it (rule 1.b).
    const SeqNum end = std::min(ranges_[k].left, snd_nxt);
    if (cur < end) return SackRange{cur, end};
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<SackRange> SackScoreboard::next_lost_seg(SeqNum snd_una, SeqNum snd_nxt, SeqNum high_rxt,
                                                       std::uint32_t smss) const {
  if (smss == 0) return std::nullopt;
  // Rule (1.a): above HighRxt, so nothing is retransmitted twice in one
  // recovery; and never below SND.UNA.
  const auto hole = first_hole_from(std::max(snd_una, high_rxt + 1), snd_nxt);
  // IsLost() only falls as seq rises, so if the first candidate is not lost
  // no later one is (rule 1.c).
  if (!hole || !is_lost(hole->left, smss)) return std::nullopt;
  return SackRange{hole->left, hole->left + std::min(smss, hole->length())};
}

std::optional<SackRange> SackScoreboard::next_unsacked_seg(SeqNum snd_una, SeqNum snd_nxt, SeqNum high_rxt,
                                                           std::uint32_t smss) const {
  if (smss == 0) return std::nullopt;
  const auto hole = first_hole_from(std::max(snd_una, high_rxt + 1), snd_nxt);
  if (!hole) return std::nullopt;
  return SackRange{hole->left, hole->left + std::min(smss, hole->length())};
}

std::optional<SackRange> SackScoreboard::next_seg(SeqNum snd_una, SeqNum snd_nxt, SeqNum high_rxt, std::uint32_t smss,
                                                  [[maybe_unused]] SeqNum recovery_point) const {
  if (auto s = next_lost_seg(snd_una, snd_nxt, high_rxt, smss)) return s;
  return next_unsacked_seg(snd_una, snd_nxt, high_rxt, smss);
}

std::optional<SackRange> SackScoreboard::rescue_seg(SeqNum snd_una, SeqNum snd_nxt, std::uint32_t smss,
                                                    std::optional<SeqNum> rescue_rxt) const {
  // One rescue per recovery: HighACK (snd_una - 1) must have passed RescueRxt.
  if (rescue_rxt && !(snd_una - 1u > *rescue_rxt)) return std::nullopt;
  if (smss == 0 || snd_nxt <= snd_una) return std::nullopt;
  // Find the highest unSACKed octet (end - 1) and the start of its hole.
  SeqNum end = snd_nxt;
  SeqNum floor = snd_una;
  for (std::size_t k = n_; k-- > 0;) {
    if (ranges_[k].left >= end) continue;
    if (ranges_[k].right >= end) {
      end = ranges_[k].left;
      continue;
    }
    floor = std::max(floor, ranges_[k].right);
    break;
  }
  if (end <= floor) return std::nullopt;
  return SackRange{end - std::min(smss, seq_len(floor, end)), end};
}

}  // namespace weft::tcp
