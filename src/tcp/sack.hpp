// SackScoreboard: what the sender knows the receiver holds above SND.UNA,
// and the RFC 6675 loss-recovery queries built on it.
//
// The scoreboard is a sorted array of at most kMaxRanges disjoint,
// non-adjacent SACKed ranges above the cumulative ACK, fed by on_ack(). SACK
// information is advisory (RFC 2018 §8: the receiver may renege), so the
// sender never frees send-buffer bytes because of it, and forgetting a range
// is always safe: it only makes the sender more conservative. That is what
// makes the bound safe: when the array is full, the highest range is dropped.
//
// Vocabulary. RFC 6675 §2 counts octets inclusively: HighACK is the last
// octet cumulatively acknowledged (SND.UNA - 1), HighData the last octet sent
// (SND.NXT - 1), HighRxt the last octet retransmitted in this recovery. This
// API takes snd_una and snd_nxt (exclusive, as the TCB holds them) but HighRxt
// as the RFC defines it, inclusive: after retransmitting [l, r), high_rxt =
// r - 1; when nothing has been retransmitted, high_rxt = snd_una - 1 (RFC 6675
// §5 step 4.3 initialises it to the last octet of the first retransmission).
// The recovery point is likewise inclusive: RecoveryPoint = HighData.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "tcp/sack_range.hpp"
#include "wire/types.hpp"

namespace weft::tcp {

class SackScoreboard {
 public:
  static constexpr std::size_t kMaxRanges = 64;
  // RFC 6675 §2: DupThresh, the number of duplicate ACKs (here, SACKed
  // segments' worth of evidence) that marks a segment lost; RFC 5681 §3.2.
  static constexpr std::uint32_t kDupThresh = 3;

  // Forgets everything; snd_una is the new cumulative ACK point. A new
  // connection calls it with its ISS: the board compares modulo 2^32, so it
  // must start where the connection's sequence numbers are.
  void reset(SeqNum snd_una);

  // Processes an ACK: cumulative ack + SACK blocks, in the order they came on
  // the wire. Blocks other than a D-SACK must lie within (snd_una, snd_nxt];
  // a first block below cum_ack must be passed through unfiltered, since that
  // is how a D-SACK shows itself. Returns the number of newly SACKed bytes.
  // A D-SACK (RFC 2883 §4/§5: the first block lies below the cumulative ACK,
  // or within the second block) is not counted as new SACK; it is reported
  // through last_ack_had_dsack(). An ACK below snd_una does not move it back.
  std::uint32_t on_ack(SeqNum cum_ack, std::span<const SackRange> blocks);
  bool last_ack_had_dsack() const { return last_dsack_; }

  bool is_sacked(SeqNum seq) const;

  // RFC 6675 §4 IsLost(seq): true when DupThresh discontiguous SACKed ranges
  // lie above seq, or more than (DupThresh - 1) * SMSS SACKed bytes do.
  bool is_lost(SeqNum seq, std::uint32_t smss) const;

  // RFC 6675 §4 SetPipe: the octets of [snd_una, snd_nxt) not SACKed count
  // once if not lost and once more if retransmitted (<= high_rxt).
  std::uint32_t pipe(SeqNum snd_una, SeqNum snd_nxt, SeqNum high_rxt, std::uint32_t smss) const;

  // RFC 6675 §4 NextSeg, the retransmission rules: rule (1) if it yields a
  // segment, else rule (3). The segment is [seq, seq+len) with len <= smss,
  // starts at an unSACKed octet above high_rxt and below the highest SACKed
  // octet, and stops before the next SACKed octet. Rule (2), new data, is
  // the caller's since it knows the send buffer, but the RFC puts it BEFORE
  // rule (3): a caller that can send new data should call next_lost_seg(),
  // then send new data, then next_unsacked_seg(). next_seg() is exactly
  // that order when no new data can be sent. recovery_point is accepted for
  // the TCB's convenience and not needed by rules (1) and (3); rule (4) is
  // rescue_seg().
  std::optional<SackRange> next_seg(SeqNum snd_una, SeqNum snd_nxt, SeqNum high_rxt, std::uint32_t smss,
                                    SeqNum recovery_point) const;
  // Rule (1) alone: the first unSACKed octet above high_rxt and below the
  // highest SACKed octet for which IsLost() holds.
  std::optional<SackRange> next_lost_seg(SeqNum snd_una, SeqNum snd_nxt, SeqNum high_rxt, std::uint32_t smss) const;
  // Rule (3) alone: as rule (1) without requiring IsLost().
  std::optional<SackRange> next_unsacked_seg(SeqNum snd_una, SeqNum snd_nxt, SeqNum high_rxt, std::uint32_t smss) const;
  // Rule (4), the rescue retransmission: when HighACK > RescueRxt (or
  // RescueRxt is undefined: nullopt), up to smss octets ending with the
  // highest unSACKed octet below snd_nxt. The caller then sets RescueRxt =
  // RecoveryPoint and must not move HighRxt.
  std::optional<SackRange> rescue_seg(SeqNum snd_una, SeqNum snd_nxt, std::uint32_t smss,
                                      std::optional<SeqNum> rescue_rxt) const;

  // The highest SACKed byte + 1, or the scoreboard's snd_una if none.
  SeqNum highest_sacked() const { return n_ > 0 ? ranges_[n_ - 1].right : snd_una_; }
  std::uint32_t sacked_bytes() const { return sacked_; }
  bool empty() const { return n_ == 0; }
  std::size_t range_count() const { return n_; }

 private:
  // SACKed bytes strictly above seq and the number of ranges holding them.
  struct Above {
    std::uint64_t bytes = 0;
    std::uint32_t ranges = 0;
  };
  Above above(SeqNum seq) const;
  static bool lost(Above a, std::uint32_t smss) {
    return a.ranges >= kDupThresh || a.bytes > std::uint64_t{kDupThresh - 1} * smss;
  }
  // The first unSACKed octet >= from, below the highest SACKed octet, and
  // the end of its hole.
  std::optional<SackRange> first_hole_from(SeqNum from, SeqNum snd_nxt) const;
  void drop_below(SeqNum cum_ack);
  // Marks [l, r) SACKed; returns the bytes that were not already.
  std::uint32_t insert(SeqNum l, SeqNum r);
  void erase(std::size_t first, std::size_t last);

  std::array<SackRange, kMaxRanges> ranges_{};  // sorted, disjoint, never adjacent, above snd_una_
  std::size_t n_ = 0;
  SeqNum snd_una_{};
  std::uint32_t sacked_ = 0;
  bool last_dsack_ = false;
};

}  // namespace weft::tcp
