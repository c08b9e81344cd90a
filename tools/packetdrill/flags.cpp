// Parsing packetdrill's --so_flags (see flags.hpp).
#include "flags.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <chrono>
#include <string_view>

namespace weft::pd {
namespace {

template <class T>
bool parse_number(std::string_view s, T& out) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size() && !s.empty();
}

// Dotted quad by libc: weft's Ipv4Addr::parse lives beside the to_string
// functions that would pull fmt into the library.
std::optional<Ipv4Addr> parse_addr(std::string_view s) {
  const std::string z(s);
  in_addr a{};
  if (inet_pton(AF_INET, z.c_str(), &a) != 1) return std::nullopt;
  return Ipv4Addr{ntohl(a.s_addr)};
}

bool parse_bool(std::string_view s, bool& out) {
  if (s == "1" || s == "on" || s == "true") return out = true, true;
  if (s == "0" || s == "off" || s == "false") return out = false, true;
  return false;
}

}  // namespace

std::optional<Flags> parse_flags(const char* text, std::string& err) {
  Flags f;
  std::string_view rest = text ? text : "";
  while (!rest.empty()) {
    const std::size_t cut = rest.find_first_of(" ,\t\n");
    const std::string_view item = rest.substr(0, cut);
    rest = cut == std::string_view::npos ? std::string_view{} : rest.substr(cut + 1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      err = "expected key=value, got '" + std::string(item) + "'";
      return std::nullopt;
    }
    const std::string_view key = item.substr(0, eq), val = item.substr(eq + 1);
    bool ok = true;
    unsigned long long n = 0;
    if (key == "local_ip") {
      auto a = parse_addr(val);
      ok = a && !a->is_any() && !a->is_loopback() && !a->is_multicast() && !a->is_broadcast();
      if (ok) f.local_ip = *a;
    } else if (key == "gateway") {
      auto a = parse_addr(val);
      ok = a.has_value() && !a->is_any();
      if (ok) f.gateway = *a;
    } else if (key == "prefix") {
      ok = parse_number(val, n) && n >= 1 && n <= 31;
      f.prefix = static_cast<std::uint8_t>(n);
    } else if (key == "mtu") {
      ok = parse_number(val, n) && n >= 68 && n <= 65535;
      f.mtu = n;
    } else if (key == "seed") {
      ok = parse_number(val, n);
      f.seed = n;
    } else if (key == "start_usecs") {
      ok = parse_number(val, n) && n <= (1ULL << 52);
      f.start_usecs = static_cast<std::int64_t>(n);
    } else if (key == "delayed_ack_ms") {
      ok = parse_number(val, n) && n >= 1 && n <= 500;
      f.tcp.delayed_ack = std::chrono::milliseconds{n};
    } else if (key == "rcvbuf") {
      ok = parse_number(val, n) && n >= 2048 && n <= (1ULL << 30);
      f.tcp.rcvbuf = n;
    } else if (key == "sndbuf") {
      ok = parse_number(val, n) && n >= 2048 && n <= (1ULL << 30);
      f.tcp.sndbuf = n;
    } else if (key == "sack") {
      ok = parse_bool(val, f.tcp.sack);
    } else if (key == "timestamps") {
      ok = parse_bool(val, f.tcp.timestamps);
    } else if (key == "window_scaling") {
      ok = parse_bool(val, f.tcp.window_scaling);
    } else if (key == "ecn") {
      ok = parse_bool(val, f.tcp.ecn);
    } else {
      err = "unknown key '" + std::string(key) + "'";
      return std::nullopt;
    }
    if (!ok) {
      err = "bad value for " + std::string(key) + ": '" + std::string(val) + "'";
      return std::nullopt;
    }
  }
  const Ipv4Cidr net{f.local_ip, f.prefix};
  if (!f.gateway) {
    Ipv4Addr g{net.network().value() + 1};
    if (g == f.local_ip) g = Ipv4Addr{net.network().value() + 2};
    f.gateway = g;
  }
  return f;
}

StackConfig stack_config(const Flags& f) {
  StackConfig c;
  c.address = Ipv4Cidr{f.local_ip, f.prefix};
  c.gateway = f.gateway;
  c.mtu = f.mtu;
  c.seed = f.seed;
  c.tcp = f.tcp;
  return c;
}

}  // namespace weft::pd
