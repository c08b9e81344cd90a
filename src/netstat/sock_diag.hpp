// The kernel's TCP internals per socket, the way `ss -i` gets them: a
// NETLINK_SOCK_DIAG dump (inet_diag_req_v2) asking for INET_DIAG_INFO,
// which carries each socket's struct tcp_info. Used by
// `weft netstat --system --info`; the bytes are turned into snapshot
// fields by kernel_tcp_info_json() (netstat/system_sockets.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace weft {

struct SockDiagTcp {
  bool ipv6 = false;  // from the AF_INET6 dump (IPv4-mapped addresses included)
  std::uint64_t inode = 0;
  unsigned state = 0;                         // kernel TCP state code
  std::string local_address, remote_address;  // inet_ntop text, as parse_proc_net() gives it
  std::uint16_t local_port = 0, remote_port = 0;
  std::vector<std::uint8_t> info;  // the INET_DIAG_INFO payload; empty when the kernel sent none (TIME_WAIT)
};

// Every TCP socket of both families in the caller's network namespace,
// with its tcp_info. No privilege is needed (tcp_info of other users'
// sockets included, as ss shows them).
// Errors: the socket(2)/send(2)/recv(2) errno (EPROTONOSUPPORT or
// EAFNOSUPPORT where the kernel lacks sock_diag or inet_diag, EACCES
// under a sandbox that forbids netlink), or the error the kernel answers
// the dump with (ENOENT: no inet_diag for that family); EPROTO when an
// answer does not parse.
Result<std::vector<SockDiagTcp>> sock_diag_tcp();

}  // namespace weft
