// IPv4 header (RFC 791 §3.1).
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |Version|  IHL  |  DSCP/ECN     |          Total Length         |
//   |         Identification        |Flags|      Fragment Offset    |
//   |  Time to Live |    Protocol   |         Header Checksum       |
//   |                       Source Address                          |
//   |                    Destination Address                        |
//   |                    Options                    |    Padding    |
//
// Ipv4View reads a received datagram in place; Ipv4Repr is the header weft
// sends, always without options.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "wire/bytes.hpp"
#include "wire/parse.hpp"
#include "wire/types.hpp"

namespace weft::wire {

// The ECN field of the IP header (RFC 3168 §5).
namespace ecn {
inline constexpr std::uint8_t not_ect = 0b00;
inline constexpr std::uint8_t ect1 = 0b01;
inline constexpr std::uint8_t ect0 = 0b10;
inline constexpr std::uint8_t ce = 0b11;
}  // namespace ecn

// The version nibble of the first byte, or 0 for an empty buffer, so that the
// stack can tell IPv6 (6) from garbage before choosing a parser.
std::uint8_t ip_version(std::span<const std::uint8_t> bytes);

class Ipv4View {
 public:
  static constexpr std::size_t min_header_len = 20;

  // Validates, in this order: at least 20 bytes (truncated), version 4
  // (bad_version), 5 <= IHL and IHL*4 <= bytes (bad_header_len),
  // IHL*4 <= total length <= bytes (bad_total_len), header checksum
  // (bad_checksum). Bytes past the total length are link-layer padding
  // (Ethernet pads to 60 bytes) and are dropped from the view. Options are
  // covered by the checksum but not interpreted.
  static Parsed<Ipv4View> parse(std::span<const std::uint8_t> bytes);

  std::uint8_t version() const { return bytes_[0] >> 4; }
  std::size_t header_len() const { return std::size_t{bytes_[0] & 0x0fu} * 4; }
  std::uint8_t dscp_ecn() const { return bytes_[1]; }  // RFC 2474 / RFC 3168 byte
  std::uint8_t ecn() const { return bytes_[1] & 3; }   // RFC 3168 §5: the low two bits
  std::uint16_t total_len() const { return load_be16(&bytes_[2]); }
  std::uint16_t ident() const { return load_be16(&bytes_[4]); }
  bool dont_fragment() const { return (bytes_[6] & 0x40) != 0; }
  bool more_fragments() const { return (bytes_[6] & 0x20) != 0; }
  // The fragment offset in bytes: the field counts 8-byte units.
  std::uint16_t frag_offset() const { return static_cast<std::uint16_t>((load_be16(&bytes_[6]) & 0x1fffu) * 8); }
  // A datagram is a fragment unless it is the first and last piece at once
  // (RFC 791 §3.2, "Fragmentation and Reassembly").
  bool is_fragment() const { return more_fragments() || frag_offset() != 0; }
  std::uint8_t ttl() const { return bytes_[8]; }
  std::uint8_t protocol() const { return bytes_[9]; }
  std::uint16_t checksum() const { return load_be16(&bytes_[10]); }
  Ipv4Addr src() const { return Ipv4Addr{load_be32(&bytes_[12])}; }
  Ipv4Addr dst() const { return Ipv4Addr{load_be32(&bytes_[16])}; }

  std::span<const std::uint8_t> header() const { return bytes_.first(header_len()); }
  std::span<const std::uint8_t> options() const {
    return bytes_.subspan(min_header_len, header_len() - min_header_len);
  }
  std::span<const std::uint8_t> payload() const { return bytes_.subspan(header_len()); }
  // The whole datagram, to the total length.
  std::span<const std::uint8_t> bytes() const { return bytes_; }

 private:
  explicit Ipv4View(std::span<const std::uint8_t> datagram) : bytes_(datagram) {}
  std::span<const std::uint8_t> bytes_;  // exactly total_len() bytes
};

struct Ipv4Repr {
  Ipv4Addr src{}, dst{};
  std::uint8_t protocol = 0;
  std::uint16_t payload_len = 0;  // at most 65535 - 20
  std::uint16_t ident = 0;
  bool dont_fragment = false;
  bool more_fragments = false;
  std::uint16_t frag_offset = 0;  // bytes, a multiple of 8
  std::uint8_t ttl = 64;
  std::uint8_t dscp_ecn = 0;

  static constexpr std::size_t header_len = 20;
  // The header a parsed datagram carries (options dropped), e.g. to build a
  // reply or to check a round trip.
  static Ipv4Repr from(const Ipv4View& v);

  // Writes the 20-byte header, checksum included, into buf[0..20).
  // Requires buf.size() >= 20, payload_len <= 65515 and frag_offset % 8 == 0
  // (checked by assert; in release the low 3 bits of the offset are dropped).
  void emit(std::span<std::uint8_t> buf) const;

  bool operator==(const Ipv4Repr&) const = default;
};

}  // namespace weft::wire
