// sockaddr_in <-> Endpoint, written once for every front end that speaks
// the socket API or calls it: the client library, the daemon's links, the
// packetdrill adapter and the tools. IPv4 only (AF_INET).
//
// No I/O: these convert and check what a caller passed, as the kernel's
// inet_bind / inet_stream_connect / inet_getname do (net/ipv4/af_inet.c),
// with POSIX's errors.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <system_error>

#include "wire/types.hpp"

namespace weft {

// Network byte order in, host order out, and back; sin_family AF_INET.
sockaddr_in to_sockaddr(Endpoint e);
Endpoint from_sockaddr(const sockaddr_in& sin);

// Which check comes first when a caller's address is both too short and of
// the wrong family. Linux itself differs by call: inet_bind and
// tcp_v4_connect check the length (EINVAL) before the family
// (EAFNOSUPPORT); inet_stream_connect first needs only the family field
// (EINVAL when even that is missing).
enum class SockaddrCheck : std::uint8_t {
  length_first,  // EINVAL below sizeof(sockaddr_in), then EAFNOSUPPORT
  family_first,  // EINVAL below sizeof(sa_family_t), EAFNOSUPPORT, EINVAL below sizeof(sockaddr_in)
};

// A caller's (addr, len) as an Endpoint in `out`: std::errc{} on success.
// Errors: EFAULT (addr null), EINVAL (len too short), EAFNOSUPPORT
// (sa_family not AF_INET), in the order `check` says. `out` is left alone
// on error.
std::errc endpoint_from(const sockaddr* addr, socklen_t len, Endpoint& out,
                        SockaddrCheck check = SockaddrCheck::length_first);

// Writes e to a caller's (addr, *len) as the kernel's move_addr_to_user
// does: at most *len bytes of the sockaddr_in (truncated silently), then
// *len = its full size, which is also returned. Nothing is written when
// addr or len is null (the caller did not ask for the address); returns 0.
socklen_t copy_out(Endpoint e, sockaddr* addr, socklen_t* len);

}  // namespace weft
