// setsockopt(2)/getsockopt(2) for TCP sockets, as Linux answers them: one
// mapping from (level, name, value) to TcpLayer calls, with Linux's option
// names, ranges and errno, for every front end that offers the socket API
// (the packetdrill adapter; the daemon can call it the same way).
//
// Levels: SOL_SOCKET (socket(7)) and IPPROTO_TCP (tcp(7)); any other level
// is ENOPROTOOPT, as is an option not listed here. The value of every
// option but SO_LINGER (struct linger) and TCP_INFO (struct tcp_info, read
// only) is an int.
//
// Buffer sizes follow Linux's sock_setsockopt: SO_SNDBUF and SO_RCVBUF take
// v clamped to [0, net.core.wmem_max / rmem_max] (a negative v counts as
// huge), and Linux stores 2*v ("to allow space for bookkeeping overhead",
// socket(7)) but at least SOCK_MIN_SNDBUF / SOCK_MIN_RCVBUF; getsockopt
// reports that stored value, so it reads back twice what was set. weft
// keeps no per-packet overhead: the buffer it uses holds v bytes (at least
// TcpLayer::kMinBuffer). Until set, getsockopt reports the layer's default
// size as is (as Linux reports tcp_wmem[1] / tcp_rmem[1]).
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/result.hpp"
#include "base/time.hpp"
#include "tcp/tcp.hpp"

namespace weft::tcp {
// weft's own IPPROTO_TCP option: nonzero requests ECN (RFC 3168) on the
// socket's active open (TcpLayer::set_ecn; EISCONN once connecting). The
// client library's WEFT_TCP_ECN; a number outside Linux's TCP options.
inline constexpr int kWeftTcpEcn = 0x5745;
}  // namespace weft::tcp

namespace weft::tcp {

// Linux's defaults on x86-64: net.core.wmem_max and rmem_max, and
// SOCK_MIN_SNDBUF / SOCK_MIN_RCVBUF (2 x and 1 x (2048 + the aligned
// sk_buff), include/net/sock.h).
inline constexpr int kWmemMax = 212992;
inline constexpr int kRmemMax = 212992;
inline constexpr int kSockMinSndbuf = 4608;
inline constexpr int kSockMinRcvbuf = 2304;

// One level each; `now` for options that may send (TCP_NODELAY and
// TCP_CORK flush held data, keepalive rearms its timer).
// Errors: EBADF (no such socket), ENOPROTOOPT (unknown option), EINVAL
// (outside Linux's range).
Status set_socket_option(TcpLayer& tcp, SocketId s, int name, int value, Instant now);  // SOL_SOCKET
Status set_tcp_option(TcpLayer& tcp, SocketId s, int name, int value, Instant now);     // IPPROTO_TCP
// SO_ERROR is cleared by reading it, so these take the layer non-const.
Result<int> get_socket_option(TcpLayer& tcp, SocketId s, int name);
Result<int> get_tcp_option(TcpLayer& tcp, SocketId s, int name);

// The whole call, with the caller's buffer: SO_LINGER's struct linger,
// TCP_INFO's struct tcp_info, else an int. set: EINVAL when `value` is
// shorter than the option's type (Linux's optlen check). get: copies at
// most out.size() bytes, as Linux truncates to the caller's optlen, and
// returns how many.
Status set_option(TcpLayer& tcp, SocketId s, int level, int name, std::span<const std::uint8_t> value, Instant now);
Result<std::size_t> get_option(TcpLayer& tcp, SocketId s, int level, int name, std::span<std::uint8_t> out);

// TCP_INFO: Linux's struct tcp_info (<linux/tcp.h>) filled from what weft
// knows, truncated to out.size(); returns the bytes written.
std::size_t tcp_info_bytes(const TcpInfo& info, std::span<std::uint8_t> out);

}  // namespace weft::tcp
