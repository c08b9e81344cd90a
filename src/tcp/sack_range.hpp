// A SACK block: the unit both the receiver's out-of-order tracking
// (reassembly.hpp) and the sender's scoreboard (sack.hpp) speak.
#pragma once

#include <cstdint>

#include "wire/types.hpp"

namespace weft::tcp {

// [left, right) in sequence space, exactly as RFC 2018 §3 puts a block on the
// wire: the left edge is the first sequence number of the block, the right
// edge the sequence number immediately following its last byte.
struct SackRange {
  SeqNum left, right;

  // Bytes covered. Meaningful for well-formed blocks (right - left < 2^31).
  constexpr std::uint32_t length() const { return right.value() - left.value(); }
  friend constexpr bool operator==(const SackRange&, const SackRange&) = default;
};

}  // namespace weft::tcp
