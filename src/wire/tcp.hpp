// TCP header (RFC 9293 §3.1) and options (RFC 9293 §3.2; window scale and
// timestamps RFC 7323; SACK RFC 2018).
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |          Source Port          |       Destination Port        |
//   |                        Sequence Number                        |
//   |                    Acknowledgment Number                      |
//   |  Data |       |C|E|U|A|P|R|S|F|                               |
//   | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//   |           Checksum            |         Urgent Pointer        |
//   |                           [Options]                           |
//
// Options are parsed and validated once, in TcpView::parse(), and kept in the
// view: a malformed option list rejects the whole segment, so the TCP layer
// never meets half-parsed options.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "wire/bytes.hpp"
#include "wire/parse.hpp"
#include "wire/types.hpp"

namespace weft::wire {

// The control bits of a TCP header (RFC 9293 §3.1; ECE and CWR RFC 3168
// §6.1), as a set: a distinct type so that a flag set is never confused with
// another byte of the header, and printable for tests and traces.
class TcpFlags {
 public:
  constexpr TcpFlags() = default;
  // The header's flags byte as it is on the wire.
  constexpr explicit TcpFlags(std::uint8_t bits) : v_(bits) {}
  constexpr std::uint8_t value() const { return v_; }

  // True when every flag of f is set: has(tcp_flag::syn | tcp_flag::ack).
  constexpr bool has(TcpFlags f) const { return (v_ & f.v_) == f.v_; }
  // True when at least one flag of f is set.
  constexpr bool any_of(TcpFlags f) const { return (v_ & f.v_) != 0; }
  constexpr bool empty() const { return v_ == 0; }
  // In a condition: whether any flag is set (`if (flags & tcp_flag::ack)`).
  constexpr explicit operator bool() const { return v_ != 0; }

  friend constexpr TcpFlags operator|(TcpFlags a, TcpFlags b) { return TcpFlags{std::uint8_t(a.v_ | b.v_)}; }
  friend constexpr TcpFlags operator&(TcpFlags a, TcpFlags b) { return TcpFlags{std::uint8_t(a.v_ & b.v_)}; }
  constexpr TcpFlags& operator|=(TcpFlags f) {
    v_ |= f.v_;
    return *this;
  }
  constexpr TcpFlags& operator&=(TcpFlags f) {
    v_ &= f.v_;
    return *this;
  }
  friend constexpr bool operator==(TcpFlags, TcpFlags) = default;

  // The set flags by name in header order, "SYN|ACK"; "none" when empty.
  std::string to_string() const;

 private:
  std::uint8_t v_ = 0;
};
std::ostream& operator<<(std::ostream& os, TcpFlags f);

namespace tcp_flag {
inline constexpr TcpFlags fin{0x01};
inline constexpr TcpFlags syn{0x02};
inline constexpr TcpFlags rst{0x04};
inline constexpr TcpFlags psh{0x08};
inline constexpr TcpFlags ack{0x10};
inline constexpr TcpFlags urg{0x20};
inline constexpr TcpFlags ece{0x40};  // RFC 3168 §6.1
inline constexpr TcpFlags cwr{0x80};  // RFC 3168 §6.1
}  // namespace tcp_flag

// Option kinds weft understands (IANA "TCP Option Kind Numbers").
namespace tcp_option {
inline constexpr std::uint8_t eol = 0;             // RFC 9293 §3.2
inline constexpr std::uint8_t nop = 1;             // RFC 9293 §3.2
inline constexpr std::uint8_t mss = 2;             // RFC 9293 §3.2, length 4
inline constexpr std::uint8_t window_scale = 3;    // RFC 7323 §2.2, length 3
inline constexpr std::uint8_t sack_permitted = 4;  // RFC 2018 §2, length 2
inline constexpr std::uint8_t sack = 5;            // RFC 2018 §3, length 2 + 8n
inline constexpr std::uint8_t timestamps = 8;      // RFC 7323 §3.2, length 10
}  // namespace tcp_option

// One SACK block: the received bytes [left, right) (RFC 2018 §3).
struct SackBlock {
  SeqNum left{}, right{};
  bool operator==(const SackBlock&) const = default;
};

// The timestamps option's two values (RFC 7323 §3.2).
struct TcpTimestamps {
  TsVal val;  // TSval: the sender's clock
  TsVal ecr;  // TSecr: the TSval echoed (meaningful with ACK)
  bool operator==(const TcpTimestamps&) const = default;
};

struct TcpOptions {
  // The largest option space: a data offset of 15 words minus the fixed
  // 20-byte header (RFC 9293 §3.1).
  static constexpr std::size_t max_len = 40;
  // The timestamps option as sent, 10 bytes after two NOPs (RFC 7323
  // Appendix A): what it takes from every segment's payload room.
  static constexpr std::size_t timestamps_len = 12;
  // The SACK option with n blocks as sent: NOP NOP, kind, length, then 8
  // bytes a block (RFC 2018 §3).
  static constexpr std::size_t sack_len(std::size_t blocks) { return 4 + 8 * blocks; }

  std::optional<std::uint16_t> mss;
  // The shift count as received; clamping to 14 (RFC 7323 §2.3) is the TCP
  // layer's job, the wire format carries any byte.
  std::optional<std::uint8_t> window_scale;
  bool sack_permitted = false;
  std::optional<TcpTimestamps> timestamps;
  std::array<SackBlock, 4> sack{};
  std::uint8_t sack_count = 0;

  // Parses the option bytes of a header (after the fixed 20). EOL ends the
  // list, NOP is skipped, every other kind has a length byte that counts the
  // kind and length bytes too. A length of 0 or 1 or one that runs past the
  // header, or a known kind with the wrong length, is bad_option. Unknown
  // kinds are skipped by their length (RFC 9293 §3.1, Options). A
  // repeated option overrides the earlier one.
  static Parsed<TcpOptions> parse(std::span<const std::uint8_t> option_bytes);

  // The SACK blocks emit() writes: sack_count, capped at 4 and at what fits
  // in 40 bytes beside the other options (3 with timestamps, RFC 2018 §3).
  // The first blocks are kept: the first reports the most recent data
  // (RFC 2018 §4).
  std::size_t sack_blocks_to_emit() const;
  // The bytes emit() writes, a multiple of 4 and at most 40.
  std::size_t emit_len() const;
  // Writes emit_len() bytes: MSS, SACK-permitted and timestamps, window
  // scale, SACK, each aligned to 4 bytes with NOPs (the layout of RFC 7323
  // Appendix A). Requires buf.size() >= emit_len().
  void emit(std::span<std::uint8_t> buf) const;

  // Compares the first sack_count blocks only.
  bool operator==(const TcpOptions& o) const;
};

class TcpView {
 public:
  static constexpr std::size_t min_header_len = 20;

  // `segment` is the IP payload, header and data. Validates at least 20
  // bytes (truncated), 5 <= data offset and offset*4 <= size
  // (bad_header_len), the options (bad_option) and, with verify_checksum,
  // the checksum over pseudo header and segment (bad_checksum). A segment of
  // more than 65535 bytes cannot be described by the 16-bit pseudo header
  // length, so its checksum never verifies.
  static Parsed<TcpView> parse(std::span<const std::uint8_t> segment, Ipv4Addr src, Ipv4Addr dst,
                               bool verify_checksum = true);

  Port src_port() const { return Port{load_be16(&bytes_[0])}; }
  Port dst_port() const { return Port{load_be16(&bytes_[2])}; }
  SeqNum seq() const { return SeqNum{load_be32(&bytes_[4])}; }
  SeqNum ack() const { return SeqNum{load_be32(&bytes_[8])}; }
  std::size_t header_len() const { return static_cast<std::size_t>(bytes_[12] >> 4) * 4; }
  TcpFlags flags() const { return TcpFlags{bytes_[13]}; }
  // True when every flag of `f` is set: has(tcp_flag::syn | tcp_flag::ack).
  bool has(TcpFlags f) const { return flags().has(f); }
  std::uint16_t window() const { return load_be16(&bytes_[14]); }
  std::uint16_t checksum() const { return load_be16(&bytes_[16]); }
  std::uint16_t urgent() const { return load_be16(&bytes_[18]); }
  const TcpOptions& options() const { return options_; }
  std::span<const std::uint8_t> header() const { return bytes_.first(header_len()); }
  std::span<const std::uint8_t> payload() const { return bytes_.subspan(header_len()); }

 private:
  TcpView(std::span<const std::uint8_t> segment, const TcpOptions& options) : bytes_(segment), options_(options) {}
  std::span<const std::uint8_t> bytes_;
  TcpOptions options_;
};

struct TcpRepr {
  Port src_port{}, dst_port{};
  SeqNum seq{}, ack{};
  TcpFlags flags{};
  std::uint16_t window = 0, urgent = 0;
  TcpOptions options{};

  // The header of a parsed segment. Unknown options are not kept.
  static TcpRepr from(const TcpView& v);

  std::size_t header_len() const { return TcpView::min_header_len + options.emit_len(); }

  // `segment` holds header and payload, the payload already written at
  // segment.subspan(header_len()). Writes the header and, with
  // compute_checksum, the checksum over pseudo header, header and payload;
  // without it the checksum field is 0. Requires segment.size() >=
  // header_len() + payload_len and header_len() + payload_len <= 65535.
  void emit(std::span<std::uint8_t> segment, Ipv4Addr src, Ipv4Addr dst, std::size_t payload_len,
            bool compute_checksum = true) const;

  bool operator==(const TcpRepr&) const = default;
};

}  // namespace weft::wire
