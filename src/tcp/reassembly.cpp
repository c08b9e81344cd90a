#include "tcp/reassembly.hpp"

#include <algorithm>
#include <cassert>
#include <limits>

namespace weft::tcp {

void OutOfOrder::erase(std::size_t first, std::size_t last) {
  std::copy(ranges_.begin() + static_cast<std::ptrdiff_t>(last), ranges_.begin() + static_cast<std::ptrdiff_t>(n_),
            ranges_.begin() + static_cast<std::ptrdiff_t>(first));
  n_ -= last - first;
}

void OutOfOrder::drop_below(SeqNum rcv_nxt) {
  std::size_t k = 0;
  while (k < n_ && ranges_[k].right <= rcv_nxt) ++k;
  erase(0, k);
  if (n_ > 0 && ranges_[0].left < rcv_nxt) ranges_[0].left = rcv_nxt;
}

OutOfOrder::AddResult OutOfOrder::add(SeqNum rcv_nxt, SeqNum seq, std::uint32_t len) {
  AddResult res{.stored = true, .advance = 0, .duplicate = false, .filled_hole = false};
  drop_below(rcv_nxt);

  // Offsets from rcv_nxt. Every held range lies in [0, 2^31) after
  // drop_below(), so 64-bit arithmetic cannot overflow.
  auto off = [rcv_nxt](SeqNum x) -> std::int64_t { return x - rcv_nxt; };
  const std::int64_t s0 = off(seq);
  const std::int64_t e = s0 + len;
  assert(e <= std::numeric_limits<std::int32_t>::max());

  if (len > 0 && e <= 0) {
    // Wholly below RCV.NXT: an old duplicate (RFC 9293 §3.10.7.4 trims the
    // part of a segment that is already acknowledged; here nothing is left).
    res.duplicate = true;
  } else if (len > 0) {
    const std::int64_t s = std::max<std::int64_t>(s0, 0);
    // Ranges [i, j) overlap or touch [s, e); touching ones merge so that
    // the array never holds two adjacent ranges.
    std::size_t i = 0;
    while (i < n_ && off(ranges_[i].right) < s) ++i;
    std::size_t j = i;
    while (j < n_ && off(ranges_[j].left) <= e) ++j;

    auto contains = [&](std::size_t k, std::int64_t a, std::int64_t b) {
      return k < n_ && off(ranges_[k].left) <= a && b <= off(ranges_[k].right);
    };
    if (j == i + 1 && contains(i, s, e)) {
      // Every byte already held. It still is the most recently received
      // segment, so its range goes first in the next SACK (RFC 2018 §4).
      res.duplicate = true;
      ranges_[i].gen = ++gen_;
    } else {
      // Did it bring a byte below the highest byte held, i.e. into a hole
      // (the one before the first range included)? Then the receiver must
      // ACK at once so that the sender learns quickly (RFC 5681 §4.2).
      const std::int64_t top = n_ > 0 ? off(ranges_[n_ - 1].right) : 0;
      const std::int64_t e2 = std::min(e, top);
      const bool fills = s < e2 && !contains(i, s, e2);

      if (i == j) {
        if (s == 0) {
          // In order and touching nothing held: no range needed, so a full
          // array never refuses in-order data.
          res.advance = static_cast<std::uint32_t>(e);
          res.filled_hole = fills;
          return res;
        }
        if (n_ == kMaxRanges) {
          res.stored = false;
          return res;
        }
        std::copy_backward(ranges_.begin() + static_cast<std::ptrdiff_t>(i),
                           ranges_.begin() + static_cast<std::ptrdiff_t>(n_),
                           ranges_.begin() + static_cast<std::ptrdiff_t>(n_ + 1));
        ++n_;
        ranges_[i] = Range{rcv_nxt + static_cast<std::uint32_t>(s), rcv_nxt + static_cast<std::uint32_t>(e), ++gen_};
      } else {
        const std::int64_t l = std::min(s, off(ranges_[i].left));
        const std::int64_t r = std::max(e, off(ranges_[j - 1].right));
        ranges_[i] = Range{rcv_nxt + static_cast<std::uint32_t>(l), rcv_nxt + static_cast<std::uint32_t>(r), ++gen_};
        erase(i + 1, j);
      }
      res.filled_hole = fills;
    }
  }

  if (n_ > 0 && ranges_[0].left == rcv_nxt) {
    res.advance = static_cast<std::uint32_t>(off(ranges_[0].right));
    erase(0, 1);
  }
  return res;
}

std::size_t OutOfOrder::sack_blocks(std::span<SackRange> out, std::size_t max_blocks) {
  const std::size_t limit = std::min(out.size(), max_blocks);
  std::size_t k = 0;
  std::size_t skip = n_;  // a range already emitted as the D-SACK's second block
  if (dsack_ && limit > 0) {
    out[k++] = *dsack_;
    // RFC 2883 §4 rule 4: if the duplicate lies in a block held above the
    // cumulative ACK, that block comes second.
    for (std::size_t r = 0; r < n_ && k < limit; ++r) {
      if (ranges_[r].left <= dsack_->left && dsack_->right <= ranges_[r].right) {
        out[k++] = SackRange{ranges_[r].left, ranges_[r].right};
        skip = r;
        break;
      }
    }
    // RFC 2883 §4 rule 2: each duplicate is reported in at most one D-SACK.
    dsack_.reset();
  }
  // The rest, most recent first (RFC 2018 §4). Generations are unique, so
  // picking the largest below the previous pick walks them in order with no
  // sorting and no allocation; n_ <= 32 and at most 4 picks.
  std::uint64_t below = std::numeric_limits<std::uint64_t>::max();
  while (k < limit) {
    std::size_t best = n_;
    for (std::size_t r = 0; r < n_; ++r) {
      if (r == skip || ranges_[r].gen >= below) continue;
      if (best == n_ || ranges_[r].gen > ranges_[best].gen) best = r;
    }
    if (best == n_) break;
    out[k++] = SackRange{ranges_[best].left, ranges_[best].right};
    below = ranges_[best].gen;
  }
  return k;
}

void OutOfOrder::note_duplicate(SeqNum left, SeqNum right) {
  if (left < right) dsack_ = SackRange{left, right};
}

std::optional<SackRange> OutOfOrder::first_held(SeqNum left, SeqNum right) const {
  // Sorted and disjoint: the first range ending above left is the only
  // candidate for the lowest overlap.
  for (std::size_t k = 0; k < n_; ++k) {
    if (ranges_[k].right <= left) continue;
    if (ranges_[k].left >= right) break;
    return SackRange{std::max(left, ranges_[k].left), std::min(right, ranges_[k].right)};
  }
  return std::nullopt;
}

bool OutOfOrder::take_fin(SeqNum rcv_nxt) {
  if (!fin_ || *fin_ != rcv_nxt) return false;
  fin_.reset();
  return true;
}

void OutOfOrder::clear() {
  n_ = 0;
  gen_ = 0;
  dsack_.reset();
  fin_.reset();
}

}  // namespace weft::tcp
