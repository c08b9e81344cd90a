// OutOfOrder: which parts of the receive window beyond RCV.NXT have arrived.
//
// RFC 9293 §3.10.7.4 ("seventh, process the segment text") lets a receiver
// keep segments that arrive out of order and deliver them once the gap before
// them fills. Like smoltcp's Assembler, weft keeps only a small fixed array of
// [left, right) ranges, not a list of buffered segments: the bytes themselves
// are parked in the receive ByteRing with write_at(), so tracking costs no
// allocation and a flood of tiny segments cannot grow memory. Beyond
// kMaxRanges disjoint ranges a segment that would need a new one is refused
// (AddResult::stored == false) and the caller drops and counts it; the peer
// will retransmit it.
//
// The same ranges are what the receiver reports as SACK blocks (RFC 2018),
// ordered by recency, with an optional D-SACK block first (RFC 2883).
//
// Ranges are held as absolute sequence numbers, always above the rcv_nxt last
// passed to add(); all comparisons are modulo 2^32 (SeqNum), so the window
// may straddle the wrap.
//
// Beside the ranges sits the sequence number of a FIN that arrived ahead of
// a gap: RFC 9293 §3.10.7.4 (eighth step) lets a FIN take effect only once
// everything before it has arrived, so it waits here with the data and
// takes effect when RCV.NXT reaches it (take_fin()).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "tcp/sack_range.hpp"
#include "wire/types.hpp"

namespace weft::tcp {

class OutOfOrder {
 public:
  // Bounded: beyond this a segment that would need a new range is dropped
  // (counted by the caller).
  static constexpr std::size_t kMaxRanges = 32;

  struct AddResult {
    bool stored;            // false: no room for another range; nothing changed
    std::uint32_t advance;  // bytes now contiguous from rcv_nxt, to commit and ack
    bool duplicate;         // entirely already held (or below rcv_nxt): a D-SACK candidate
    bool filled_hole;       // closed or shrank a hole: ACK at once (RFC 5681 §4.2)
  };

  // Records that [seq, seq+len) arrived, where rcv_nxt is the next in-order
  // byte. The caller has already trimmed the segment to the receive window
  // (RFC 9293 §3.10.7.4), so seq+len - rcv_nxt < 2^31. A segment starting at
  // or before rcv_nxt needs no range and is never refused. When advance > 0
  // the caller commits that many bytes and moves rcv_nxt by it; the range is
  // forgotten here. A partial overlap with data already held is not a
  // duplicate: it brought new bytes.
  AddResult add(SeqNum rcv_nxt, SeqNum seq, std::uint32_t len);

  bool empty() const { return n_ == 0; }
  std::size_t range_count() const { return n_; }

  // Fills `out` with the SACK blocks to send and returns how many, at most
  // min(out.size(), max_blocks) (3 with timestamps, 4 without: RFC 2018 §3).
  // RFC 2018 §4: the first block covers the most recently received segment,
  // then the most recently reported other ranges. When a D-SACK is pending
  // (RFC 2883 §4) it comes first, then the range containing it if any (rule
  // 4), then the rest by recency; the D-SACK is reported once.
  std::size_t sack_blocks(std::span<SackRange> out, std::size_t max_blocks);

  // RFC 2883: schedules a D-SACK for the duplicate [left, right) just
  // received. Only the most recent duplicate is kept (RFC 2883 §4 rule 1:
  // a D-SACK reports the duplicate in the most recent packet).
  void note_duplicate(SeqNum left, SeqNum right);
  bool dsack_pending() const { return dsack_.has_value(); }

  // The first part of [left, right) already held, if any: what a segment
  // arriving with those bytes duplicates. RFC 2883 §4.2: when a segment
  // duplicates several non-contiguous parts, only the first is reported.
  // Call before add(), with left at or above the rcv_nxt last passed to it.
  std::optional<SackRange> first_held(SeqNum left, SeqNum right) const;

  // Holds a FIN whose sequence number lies beyond RCV.NXT (the caller has
  // trimmed it to the window). A FIN held before is replaced.
  void hold_fin(SeqNum fin_seq) { fin_ = fin_seq; }
  std::optional<SeqNum> held_fin() const { return fin_; }
  // True once RCV.NXT has reached the held FIN, i.e. every byte before it
  // has arrived: the caller processes the FIN now, and it is forgotten here.
  bool take_fin(SeqNum rcv_nxt);

  // Forgets the ranges, a pending D-SACK and a held FIN.
  void clear();

 private:
  struct Range {
    SeqNum left, right;
    // When a segment last landed in this range: the RFC 2018 §4 order is
    // by how recently each range was the first block, which is when it
    // last received a segment. 64 bits so it never wraps.
    std::uint64_t gen;
  };

  // Forgets ranges the caller has moved rcv_nxt past by itself, trimming
  // one that straddles it.
  void drop_below(SeqNum rcv_nxt);
  void erase(std::size_t first, std::size_t last);

  std::array<Range, kMaxRanges> ranges_{};  // sorted, disjoint, never adjacent
  std::size_t n_ = 0;
  std::uint64_t gen_ = 0;
  std::optional<SackRange> dsack_;
  std::optional<SeqNum> fin_;  // a FIN beyond a gap
};

}  // namespace weft::tcp
