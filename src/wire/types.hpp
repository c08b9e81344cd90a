// Strong types for protocol quantities: addresses, ports, endpoints,
// 4-tuples, TCP sequence numbers and timestamps. Each one is a distinct type so that a
// port can never be passed where an address is expected, and sequence
// numbers compare modulo 2^32 (RFC 9293 §3.4) instead of as integers.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace weft {

// An IPv4 address, held in host byte order.
class Ipv4Addr {
 public:
  constexpr Ipv4Addr() = default;
  constexpr explicit Ipv4Addr(std::uint32_t host_order) : v_(host_order) {}
  constexpr Ipv4Addr(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d)
      : v_((std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d) {}

  static constexpr Ipv4Addr any() { return Ipv4Addr{}; }
  static constexpr Ipv4Addr broadcast() { return Ipv4Addr{0xffffffffu}; }
  // Parses dotted quad "a.b.c.d"; nullopt on anything else.
  static std::optional<Ipv4Addr> parse(std::string_view s);

  constexpr std::uint32_t value() const { return v_; }
  constexpr bool is_any() const { return v_ == 0; }
  constexpr bool is_loopback() const { return (v_ >> 24) == 127; }  // 127.0.0.0/8, RFC 1122 §3.2.1.3
  constexpr bool is_multicast() const { return (v_ >> 28) == 0xe; }
  constexpr bool is_broadcast() const { return v_ == 0xffffffffu; }
  std::array<std::uint8_t, 4> octets() const {
    return {std::uint8_t(v_ >> 24), std::uint8_t(v_ >> 16), std::uint8_t(v_ >> 8), std::uint8_t(v_)};
  }
  std::string to_string() const;

  constexpr auto operator<=>(const Ipv4Addr&) const = default;

 private:
  std::uint32_t v_ = 0;
};

// An address with a prefix length: 192.0.2.2/24.
struct Ipv4Cidr {
  Ipv4Addr addr;
  std::uint8_t prefix_len = 32;

  static std::optional<Ipv4Cidr> parse(std::string_view s);
  constexpr std::uint32_t mask() const { return prefix_len == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix_len); }
  constexpr bool contains(Ipv4Addr a) const { return (a.value() & mask()) == (addr.value() & mask()); }
  constexpr Ipv4Addr network() const { return Ipv4Addr{addr.value() & mask()}; }
  constexpr Ipv4Addr directed_broadcast() const { return Ipv4Addr{addr.value() | ~mask()}; }
  std::string to_string() const;
  constexpr bool operator==(const Ipv4Cidr&) const = default;
};

// A transport port number.
class Port {
 public:
  constexpr Port() = default;
  constexpr explicit Port(std::uint16_t v) : v_(v) {}
  constexpr std::uint16_t value() const { return v_; }
  constexpr bool is_zero() const { return v_ == 0; }
  // The ranges of the IANA registry (RFC 6335 §6).
  constexpr bool is_well_known() const { return v_ <= 1023; }
  constexpr bool is_registered() const { return v_ >= 1024 && v_ <= 49151; }
  constexpr bool is_dynamic() const { return v_ >= 49152; }
  constexpr auto operator<=>(const Port&) const = default;

 private:
  std::uint16_t v_ = 0;
};

// An (address, port) pair: a "socket" in the textbook sense, the address
// one end of a conversation has.
struct Endpoint {
  Ipv4Addr addr;
  Port port;
  std::string to_string() const;  // "192.0.2.2:7"
  static std::optional<Endpoint> parse(std::string_view s);
  constexpr auto operator<=>(const Endpoint&) const = default;
};

// What identifies a connection: (local addr, local port, remote addr, remote port).
struct FourTuple {
  Endpoint local;
  Endpoint remote;
  constexpr auto operator<=>(const FourTuple&) const = default;
  std::string to_string() const;
};

// A TCP sequence number: arithmetic and comparison modulo 2^32
// (RFC 9293 §3.4; FreeBSD's SEQ_LT is ((int)(a-b) < 0)).
class SeqNum {
 public:
  constexpr SeqNum() = default;
  constexpr explicit SeqNum(std::uint32_t v) : v_(v) {}
  constexpr std::uint32_t value() const { return v_; }

  constexpr SeqNum operator+(std::uint32_t n) const { return SeqNum{v_ + n}; }
  constexpr SeqNum operator-(std::uint32_t n) const { return SeqNum{v_ - n}; }
  constexpr SeqNum& operator+=(std::uint32_t n) {
    v_ += n;
    return *this;
  }
  // Signed distance a - b; meaningful when |a - b| < 2^31.
  friend constexpr std::int32_t operator-(SeqNum a, SeqNum b) { return static_cast<std::int32_t>(a.v_ - b.v_); }
  friend constexpr bool operator==(SeqNum a, SeqNum b) { return a.v_ == b.v_; }
  friend constexpr bool operator<(SeqNum a, SeqNum b) { return (a - b) < 0; }
  friend constexpr bool operator<=(SeqNum a, SeqNum b) { return (a - b) <= 0; }
  friend constexpr bool operator>(SeqNum a, SeqNum b) { return (a - b) > 0; }
  friend constexpr bool operator>=(SeqNum a, SeqNum b) { return (a - b) >= 0; }
  // lo <= x < hi, modulo 2^32.
  static constexpr bool in_window(SeqNum x, SeqNum lo, std::uint32_t len) { return (x.v_ - lo.v_) < len; }

 private:
  std::uint32_t v_ = 0;
};

// The bytes in [from, to): to - from modulo 2^32 as a count, for an
// interval known to run forwards (from <= to, e.g. SND.UNA to SND.MAX).
constexpr std::uint32_t seq_len(SeqNum from, SeqNum to) { return to.value() - from.value(); }
// The same, 0 when `to` is not after `from`: what is left of a window whose
// edge may already have been passed.
constexpr std::uint32_t seq_len_or_zero(SeqNum from, SeqNum to) { return from < to ? seq_len(from, to) : 0; }

// A TCP timestamp (TSval or TSecr, RFC 7323 §3): a 32-bit clock that wraps,
// compared modulo 2^32 as sequence numbers are (RFC 7323 §5.3: PAWS's
// "SEG.TSval < TS.Recent" is modular; FreeBSD's TSTMP_LT is
// ((int)((a)-(b)) < 0)). A value, not a time: the units are the sender's.
class TsVal {
 public:
  constexpr TsVal() = default;
  constexpr explicit TsVal(std::uint32_t v) : v_(v) {}
  constexpr std::uint32_t value() const { return v_; }

  constexpr TsVal operator+(std::uint32_t n) const { return TsVal{v_ + n}; }
  // The ticks from `earlier` to this one (modulo 2^32): the age of an echoed
  // timestamp. Huge when `earlier` is in fact later.
  constexpr std::uint32_t since(TsVal earlier) const { return v_ - earlier.v_; }
  friend constexpr bool operator==(TsVal a, TsVal b) { return a.v_ == b.v_; }
  friend constexpr bool operator<(TsVal a, TsVal b) { return static_cast<std::int32_t>(a.v_ - b.v_) < 0; }
  friend constexpr bool operator<=(TsVal a, TsVal b) { return static_cast<std::int32_t>(a.v_ - b.v_) <= 0; }
  friend constexpr bool operator>(TsVal a, TsVal b) { return static_cast<std::int32_t>(a.v_ - b.v_) > 0; }
  friend constexpr bool operator>=(TsVal a, TsVal b) { return static_cast<std::int32_t>(a.v_ - b.v_) >= 0; }

 private:
  std::uint32_t v_ = 0;
};

// The transport protocols weft carries, by IP protocol number (RFC 790).
enum class IpProto : std::uint8_t { icmp = 1, tcp = 6, udp = 17 };

}  // namespace weft

template <>
struct std::hash<weft::Ipv4Addr> {
  std::size_t operator()(weft::Ipv4Addr a) const noexcept { return std::hash<std::uint32_t>{}(a.value()); }
};
template <>
struct std::hash<weft::Endpoint> {
  std::size_t operator()(const weft::Endpoint& e) const noexcept {
    std::uint64_t k = (std::uint64_t{e.addr.value()} << 16) | e.port.value();
    k *= 0x9e3779b97f4a7c15ULL;
    return static_cast<std::size_t>(k ^ (k >> 29));
  }
};
