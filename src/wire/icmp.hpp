// ICMP messages (RFC 792), with the Path MTU field of RFC 1191 §4.
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |     Type      |     Code      |          Checksum             |
//   |           rest of header (meaning depends on the type)        |
//   |     payload: echo data, or the quoted IP header + 64 bits ... |
//
// The view validates only what is common to every ICMP message; which types
// weft answers is the stack's decision, not the parser's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "wire/bytes.hpp"
#include "wire/parse.hpp"

namespace weft::wire {

namespace icmp_type {
inline constexpr std::uint8_t echo_reply = 0;
inline constexpr std::uint8_t dest_unreachable = 3;
inline constexpr std::uint8_t echo_request = 8;
inline constexpr std::uint8_t time_exceeded = 11;
}  // namespace icmp_type

// Codes of dest_unreachable (RFC 792 p.4).
namespace icmp_code {
inline constexpr std::uint8_t net_unreachable = 0;
inline constexpr std::uint8_t host_unreachable = 1;
inline constexpr std::uint8_t protocol_unreachable = 2;
inline constexpr std::uint8_t port_unreachable = 3;
inline constexpr std::uint8_t fragmentation_needed = 4;  // "and DF set"; carries the next-hop MTU (RFC 1191 §4)
}  // namespace icmp_code

class IcmpView {
 public:
  static constexpr std::size_t header_len = 8;

  // Validates at least 8 bytes (truncated) and the checksum over the whole
  // message, header and data (RFC 792, "Checksum") (bad_checksum).
  static Parsed<IcmpView> parse(std::span<const std::uint8_t> icmp_bytes);

  std::uint8_t type() const { return bytes_[0]; }
  std::uint8_t code() const { return bytes_[1]; }
  std::uint16_t checksum() const { return load_be16(&bytes_[2]); }
  // Echo and echo reply: identifier and sequence number (RFC 792 p.14).
  std::uint16_t echo_ident() const { return load_be16(&bytes_[4]); }
  std::uint16_t echo_seq() const { return load_be16(&bytes_[6]); }
  // Destination unreachable, code 4: the MTU of the next-hop link, in the
  // low-order 16 bits of the once-unused field (RFC 1191 §4). 0 from a router
  // that predates RFC 1191.
  std::uint16_t next_hop_mtu() const { return load_be16(&bytes_[6]); }
  // Bytes 4..7 as one number, whatever the type makes of them.
  std::uint32_t rest_of_header() const { return load_be32(&bytes_[4]); }
  std::span<const std::uint8_t> payload() const { return bytes_.subspan(header_len); }
  std::span<const std::uint8_t> bytes() const { return bytes_; }

 private:
  explicit IcmpView(std::span<const std::uint8_t> message) : bytes_(message) {}
  std::span<const std::uint8_t> bytes_;  // >= 8 bytes
};

struct IcmpRepr {
  std::uint8_t type = 0, code = 0;
  std::uint32_t rest = 0;  // ident<<16 | seq for echo, the MTU for fragmentation needed
  std::size_t payload_len = 0;

  static constexpr std::size_t header_len = 8;

  static IcmpRepr from(const IcmpView& v);
  static IcmpRepr echo_reply(std::uint16_t ident, std::uint16_t seq, std::size_t payload_len);
  static IcmpRepr echo_request(std::uint16_t ident, std::uint16_t seq, std::size_t payload_len);
  // `quote_len` bytes of the offending datagram follow the header: its IP
  // header and at least the first 64 bits of its data (RFC 792 p.4; RFC 1812
  // §4.3.2.3 allows more, up to 576 bytes in all). `mtu` only for
  // fragmentation_needed.
  static IcmpRepr dest_unreachable(std::uint8_t code, std::size_t quote_len, std::uint16_t mtu = 0);

  // `message` holds header and payload, the payload already written at
  // message.subspan(8). Writes the 8-byte header with the checksum over the
  // first 8 + payload_len bytes. Requires message.size() >= 8 + payload_len.
  void emit(std::span<std::uint8_t> message) const;

  bool operator==(const IcmpRepr&) const = default;
};

}  // namespace weft::wire
