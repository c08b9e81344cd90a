// setsockopt(2)/getsockopt(2) for UDP sockets: one mapping from
// (SOL_SOCKET, name, int value) to UdpLayer's setters and getters, for every
// front end that offers the socket API (the daemon; src/tcp/sockopt.hpp is
// TCP's). Only SOL_SOCKET is answered here; the caller answers what is not
// the layer's (SO_ERROR, SO_ACCEPTCONN) and any other level (ENOPROTOOPT).
//
//   SO_REUSEADDR  int, nonzero = on; reads back 0 or 1
//   SO_RCVBUF     int > 0 (else EINVAL); stored doubled with Linux's floor
//                 (UdpLayer::set_recv_buffer), read back as stored. Not yet
//                 clamped to rmem_max as TCP's is (docs/conformance.md).
//   SO_SNDBUF     taken and ignored: datagrams are not buffered for
//                 sending; not read back (ENOPROTOOPT)
#pragma once

#include <optional>

#include "base/result.hpp"
#include "transport/socket_id.hpp"
#include "udp/udp.hpp"

namespace weft::udp {

// `s` nullopt: a datagram socket with no UDP socket behind it (the daemon's
// ICMP echo sockets), answered as an id the layer does not know.
// Errors: EBADF (no such socket), ENOPROTOOPT (an option not listed above),
// EINVAL (SO_RCVBUF not positive; checked before the socket is looked up).
Status set_socket_option(UdpLayer& udp, std::optional<SocketId> s, int name, int value);
// Errors: EBADF (no such socket), ENOPROTOOPT (not listed above).
Result<int> get_socket_option(const UdpLayer& udp, SocketId s, int name);

}  // namespace weft::udp
