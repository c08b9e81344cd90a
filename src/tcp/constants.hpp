// The protocol's fixed numbers, named where the RFC gives them.
#pragma once

#include <chrono>
#include <cstdint>

namespace weft::tcp {

// The send MSS assumed when the peer's SYN carries no MSS option: 576-byte
// datagrams minus 40 bytes of headers (RFC 9293 §3.7.1; RFC 1122 §4.2.2.6;
// RFC 879). Also the MSS before a connection has one (Linux's
// TCP_MSS_DEFAULT).
inline constexpr std::uint32_t kDefaultMss = 536;

// The bytes of IPv4 and TCP headers without options, which the MSS leaves
// out of the MTU (RFC 9293 §3.7.1: "MSS = MTU - 20 - 20" for IPv4).
inline constexpr std::uint32_t kIpTcpHeaders = 40;

// The largest MSS: an IPv4 datagram's 16-bit total length (RFC 791 §3.1)
// less the headers.
inline constexpr std::uint32_t kMaxMss = 65535 - kIpTcpHeaders;

// The smallest peer MSS option taken as given; a smaller one is raised to
// it. RFC 9293 sets no floor. Any floor above
// wire::TcpOptions::timestamps_len keeps the MSS left beside the timestamps
// option positive; weft's is 64 (Linux's TCP_MIN_MSS is 88).
inline constexpr std::uint32_t kMinPeerMss = 64;

// The largest window scale shift: "the shift.cnt value ... is limited to
// 14" so the window stays under 2^30 (RFC 7323 §2.3); a larger one received
// is used as 14.
inline constexpr std::uint8_t kMaxWindowShift = 14;

// The largest value of the 16-bit window field (RFC 9293 §3.1).
inline constexpr std::uint32_t kMaxWindowField = 65535;

// An RTT sample from an echoed timestamp (RFC 7323 §4.1) of a minute or
// more is discarded, taken for the echo of no segment sent recently (a stale
// or forged TSecr) rather than a round trip. Timestamps tick in ms (ts_now).
inline constexpr std::chrono::milliseconds kMaxTsRttSample{60000};

}  // namespace weft::tcp
