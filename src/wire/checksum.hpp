// The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//
// The checksum is the ones-complement of the ones-complement sum of the data
// taken as big-endian 16-bit words. The sum is kept "unfolded" in a 32-bit
// value while pieces are added (pseudo header, header, payload), and folded
// once at the end: deferring the end-around carry (RFC 1071 §2, "Deferred
// Carries") is what makes the sum cheap.
//
// An unfolded sum is only meaningful modulo 0xFFFF (plus the distinction
// between a sum of all-zero data and anything else). Two unfolded sums of the
// same data can differ as integers; checksum_fold() of both is the same.
#pragma once

#include <cstdint>
#include <span>

#include "wire/types.hpp"

namespace weft::wire {

// Adds `data` to the running sum `sum` and returns the new, unfolded sum.
// An odd final byte is padded with a zero low byte, as if it were the high
// byte of a 16-bit word (RFC 1071 §4.1). So a message may be summed in pieces
// only if every piece but the last has even length.
std::uint32_t checksum_add(std::span<const std::uint8_t> data, std::uint32_t sum = 0);

// Folds the carries of an unfolded sum into 16 bits and returns its
// ones-complement: the value to write into a checksum field. Over data that
// already contains a correct checksum the result is 0 (RFC 1071 §1 "to check
// a checksum").
std::uint16_t checksum_fold(std::uint32_t sum);

// checksum_fold(checksum_add(data)).
std::uint16_t internet_checksum(std::span<const std::uint8_t> data);

// The sum of the 12-byte IPv4 pseudo header that UDP (RFC 768) and TCP
// (RFC 9293 §3.1, "Checksum") put in front of their segment: source address,
// destination address, a zero byte, the protocol and the transport length.
std::uint32_t pseudo_header_sum(Ipv4Addr src, Ipv4Addr dst, IpProto proto, std::uint16_t length);

// The checksum after one 16-bit field changed from old_field to new_field,
// without touching the rest of the data: RFC 1624 eqn. 3,
// HC' = ~(~HC + ~m + m'). Eqn. 3 rather than RFC 1141's eqn. 2 because it
// never yields 0x0000 where a full recomputation yields 0xFFFF (RFC 1624 §3).
std::uint16_t checksum_update16(std::uint16_t old_checksum, std::uint16_t old_field, std::uint16_t new_field);

}  // namespace weft::wire
