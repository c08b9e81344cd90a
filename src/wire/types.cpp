#include "wire/types.hpp"

#include <charconv>

#include <fmt/format.h>

namespace weft {

namespace {
bool parse_u32(std::string_view s, std::uint32_t max, std::uint32_t& out) {
  if (s.empty() || s.size() > 10) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size() && out <= max;
}
}  // namespace

std::optional<Ipv4Addr> Ipv4Addr::parse(std::string_view s) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    auto dot = s.find('.');
    std::string_view part = (i < 3) ? s.substr(0, dot) : s;
    if (i < 3 && dot == std::string_view::npos) return std::nullopt;
    if (part.size() > 3) return std::nullopt;
    std::uint32_t octet = 0;
    if (!parse_u32(part, 255, octet)) return std::nullopt;
    v = (v << 8) | octet;
    if (i < 3) s.remove_prefix(dot + 1);
  }
  return Ipv4Addr{v};
}

std::string Ipv4Addr::to_string() const {
  auto o = octets();
  return fmt::format("{}.{}.{}.{}", o[0], o[1], o[2], o[3]);
}

std::optional<Ipv4Cidr> Ipv4Cidr::parse(std::string_view s) {
  auto slash = s.find('/');
  std::uint32_t len = 32;
  if (slash != std::string_view::npos) {
    if (!parse_u32(s.substr(slash + 1), 32, len)) return std::nullopt;
    s = s.substr(0, slash);
  }
  auto a = Ipv4Addr::parse(s);
  if (!a) return std::nullopt;
  return Ipv4Cidr{*a, static_cast<std::uint8_t>(len)};
}

std::string Ipv4Cidr::to_string() const { return fmt::format("{}/{}", addr.to_string(), prefix_len); }

std::string Endpoint::to_string() const { return fmt::format("{}:{}", addr.to_string(), port.value()); }

std::optional<Endpoint> Endpoint::parse(std::string_view s) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto a = Ipv4Addr::parse(s.substr(0, colon));
  std::uint32_t p = 0;
  if (!a || !parse_u32(s.substr(colon + 1), 65535, p)) return std::nullopt;
  return Endpoint{*a, Port{static_cast<std::uint16_t>(p)}};
}

std::string FourTuple::to_string() const { return fmt::format("{} -> {}", local.to_string(), remote.to_string()); }

}  // namespace weft
