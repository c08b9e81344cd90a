#include "wire/sockaddr.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace weft {

sockaddr_in to_sockaddr(Endpoint e) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(e.addr.value());
  sin.sin_port = htons(e.port.value());
  return sin;
}

Endpoint from_sockaddr(const sockaddr_in& sin) {
  return Endpoint{Ipv4Addr{ntohl(sin.sin_addr.s_addr)}, Port{ntohs(sin.sin_port)}};
}

std::errc endpoint_from(const sockaddr* addr, socklen_t len, Endpoint& out, SockaddrCheck check) {
  if (!addr) return std::errc::bad_address;
  constexpr auto full = static_cast<socklen_t>(sizeof(sockaddr_in));
  if (check == SockaddrCheck::family_first) {
    if (len < static_cast<socklen_t>(sizeof(sa_family_t))) return std::errc::invalid_argument;
    if (addr->sa_family != AF_INET) return std::errc::address_family_not_supported;
    if (len < full) return std::errc::invalid_argument;
  } else {
    if (len < full) return std::errc::invalid_argument;
    if (addr->sa_family != AF_INET) return std::errc::address_family_not_supported;
  }
  sockaddr_in sin;
  std::memcpy(&sin, addr, sizeof sin);  // the caller's buffer need not be aligned
  out = from_sockaddr(sin);
  return std::errc{};
}

socklen_t copy_out(Endpoint e, sockaddr* addr, socklen_t* len) {
  if (!addr || !len) return 0;
  const sockaddr_in sin = to_sockaddr(e);
  std::memcpy(addr, &sin, std::min<std::size_t>(*len, sizeof sin));
  *len = sizeof sin;
  return *len;
}

}  // namespace weft
