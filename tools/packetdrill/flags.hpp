// The adapter's flags: packetdrill's --so_flags string, "key=value" pairs
// separated by spaces or commas.
//
//   local_ip=A.B.C.D   the stack's address (default 192.168.0.1, the tool's
//                      default --local_ip)
//   prefix=N           its prefix length, 1..31 (default 16)
//   gateway=A.B.C.D    next hop for everything outside the prefix (default:
//                      the prefix's first address other than local_ip; only
//                      its existence matters, packets carry no link header)
//   mtu=N              link MTU, 68..65535 (default 1500: MSS 1460)
//   seed=N             secrets (ISNs, ports, IP idents) derive from it (0)
//   start_usecs=N      the virtual clock at start, in us (default 1000000)
//   delayed_ack_ms=N   TcpConfig::delayed_ack, 1..500 (default 40)
//   rcvbuf=N sndbuf=N  default socket buffer sizes in bytes, 2048..2^30
//                      (default 256 KiB)
//   sack=0|1 timestamps=0|1 window_scaling=0|1   options offered (all 1)
//   ecn=0|1            request ECN (RFC 3168) on active opens (0; a peer's
//                      request is accepted either way, as Linux by default)
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "stack/stack.hpp"

namespace weft::pd {

struct Flags {
  Ipv4Addr local_ip{192, 168, 0, 1};
  std::uint8_t prefix = 16;
  std::optional<Ipv4Addr> gateway;  // filled in by parse_flags
  std::size_t mtu = 1500;
  std::uint64_t seed = 0;
  std::int64_t start_usecs = 1'000'000;
  TcpConfig tcp{};
};

// nullopt and a one-line reason in `err` for an unknown key or a bad value.
// A null or empty text gives the defaults.
std::optional<Flags> parse_flags(const char* text, std::string& err);

StackConfig stack_config(const Flags& f);

}  // namespace weft::pd
