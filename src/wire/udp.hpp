// UDP header (RFC 768).
//
//    0      7 8     15 16    23 24    31
//   +--------+--------+--------+--------+
//   |     Source      |   Destination   |
//   |      Port       |      Port       |
//   +--------+--------+--------+--------+
//   |     Length      |    Checksum     |
//   +--------+--------+--------+--------+
//
// The checksum covers an IPv4 pseudo header, so both the parser and the
// emitter take the addresses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "wire/bytes.hpp"
#include "wire/parse.hpp"
#include "wire/types.hpp"

namespace weft::wire {

class UdpView {
 public:
  static constexpr std::size_t header_len = 8;

  // `segment` is the IP payload. Validates at least 8 bytes (truncated),
  // 8 <= length field <= segment size (bad_length) and, when the checksum
  // field is non-zero and verify_checksum is set, the checksum over the
  // pseudo header and the first `length` bytes (bad_checksum). A checksum
  // field of 0 means the sender computed none (RFC 768, "Checksum").
  static Parsed<UdpView> parse(std::span<const std::uint8_t> segment, Ipv4Addr src, Ipv4Addr dst,
                               bool verify_checksum = true);

  Port src_port() const { return Port{load_be16(&bytes_[0])}; }
  Port dst_port() const { return Port{load_be16(&bytes_[2])}; }
  std::uint16_t length() const { return load_be16(&bytes_[4]); }
  std::uint16_t checksum() const { return load_be16(&bytes_[6]); }
  // The data, to the length field: IP may deliver more (RFC 768 does not say
  // what the excess is, so it is not data).
  std::span<const std::uint8_t> payload() const { return bytes_.subspan(header_len); }

 private:
  explicit UdpView(std::span<const std::uint8_t> datagram) : bytes_(datagram) {}
  std::span<const std::uint8_t> bytes_;  // exactly length() bytes
};

struct UdpRepr {
  Port src_port{}, dst_port{};
  std::uint16_t payload_len = 0;  // at most 65535 - 8

  static constexpr std::size_t header_len = 8;

  static UdpRepr from(const UdpView& v);

  // `segment` holds header and payload, the payload already written at
  // segment.subspan(8). Writes the header; with compute_checksum the
  // checksum over the pseudo header and 8 + payload_len bytes, a computed 0
  // sent as 0xFFFF (RFC 768: "all ones" since 0 means "no checksum");
  // without it, 0. Requires segment.size() >= 8 + payload_len.
  void emit(std::span<std::uint8_t> segment, Ipv4Addr src, Ipv4Addr dst, bool compute_checksum = true) const;

  bool operator==(const UdpRepr&) const = default;
};

}  // namespace weft::wire
