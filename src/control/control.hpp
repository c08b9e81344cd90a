// The control protocol between a weft host daemon and the processes that
// use it (libweft-client, weft netstat/cat/perf/ping).
//
// Transport: a UNIX SOCK_SEQPACKET socket, one per client process, at
// control_socket_path(host). SEQPACKET keeps message boundaries and lets
// the daemon read each client's credentials with SO_PEERCRED, which is
// the only identity it trusts (never what a client says about itself).
//
// Every request is one fixed-size Request; every answer one Response,
// possibly carrying a descriptor (SCM_RIGHTS) and, for snapshots, followed
// by `value` bytes of payload in further messages. The first request must
// be `hello` with the protocol version; a daemon and a client of different
// versions refuse each other with EPROTONOSUPPORT and a clear message.
// Anything malformed gets an EPROTO response and the control connection is
// closed (which closes that client's sockets, as if it had exited).
//
// Data never crosses this socket: each weft socket is a socketpair whose
// client end the process holds as an ordinary descriptor (see
// docs/client-design.md). The structs are trivially copyable and sent in
// host byte order: both ends are on the same machine by construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace weft::control {

inline constexpr std::uint32_t kMagic = 0x54464557;  // "WEFT"
// Bumped on any incompatible change to the structs or the semantics below.
inline constexpr std::uint32_t kVersion = 1;

// WEFT_TCP_ECN of client/weft.h: weft's own IPPROTO_TCP option number
// (tcp::kWeftTcpEcn, which the option module answers).
inline constexpr int kTcpEcnOption = 0x5745;

enum class Op : std::uint32_t {
  hello = 1,    // arg0 = kVersion. Response.value = daemon version.
  socket,       // arg0 = kind (SockKind). Response: handle + fd.
  bind,         // handle, addr/port
  listen,       // handle, arg0 = backlog
  connect,      // handle, addr/port. Starts the handshake (TCP) and returns.
  shutdown,     // handle, arg0 = SHUT_RD / SHUT_WR / SHUT_RDWR
  close,        // handle, arg0 = 1: reset (unread data or linger 0)
  getsockname,  // Response addr/port
  getpeername,  // Response addr/port (ENOTCONN)
  setsockopt,   // handle, arg0 = level, arg1 = optname, value
  getsockopt,   // handle, arg0 = level, arg1 = optname; Response.value
  status,       // handle: why the stream ended. Response.err: 0 clean EOF, else ECONNRESET ...
  snapshot,     // netstat: Response.value = JSON length, then the JSON in chunks
};

enum class SockKind : std::int32_t { tcp = 1, udp = 2, icmp = 3 };

struct Request {
  std::uint32_t magic = kMagic;
  Op op{};
  std::uint32_t handle = 0;
  std::int32_t arg0 = 0, arg1 = 0;
  std::uint32_t addr = 0;  // IPv4, host order
  std::uint16_t port = 0;
  std::uint16_t pad = 0;
  std::uint32_t pad2 = 0;
  std::int64_t value = 0;
};

struct Response {
  std::uint32_t magic = kMagic;
  Op op{};
  std::int32_t err = 0;  // 0 or an errno value
  std::uint32_t handle = 0;
  std::uint32_t addr = 0;
  std::uint16_t port = 0;
  std::uint16_t pad = 0;
  std::int64_t value = 0;
};

// Written by the daemon on a listening socket's descriptor, one per
// connection waiting in the accept queue, with the connection's descriptor
// attached (SCM_RIGHTS). The listener is readable exactly while one waits.
struct AcceptRecord {
  std::uint32_t magic = kMagic;
  std::uint32_t handle = 0;
  std::uint32_t local_addr = 0, peer_addr = 0;
  std::uint16_t local_port = 0, peer_port = 0;
};

// Prefix of every datagram on a UDP or ICMP socket's descriptor. Client to
// daemon: the destination (addr 0 and port 0: the connected peer). Daemon
// to client: the source, or err != 0 for an asynchronous error (ICMP port
// unreachable on a connected socket) with no payload. For ICMP sockets
// `port` carries the echo sequence number and `ttl` the reply's TTL.
struct DgramHeader {
  std::uint32_t addr = 0;
  std::uint16_t port = 0;
  std::uint8_t ttl = 0;
  std::uint8_t pad = 0;
  std::int32_t err = 0;
  std::uint32_t pad2 = 0;
};

static_assert(std::is_trivially_copyable_v<Request> && sizeof(Request) == 40);
static_assert(std::is_trivially_copyable_v<Response> && sizeof(Response) == 32);
static_assert(sizeof(AcceptRecord) == 20);
static_assert(sizeof(DgramHeader) == 16);

// Largest chunk of a snapshot payload per message.
inline constexpr std::size_t kChunk = 32 * 1024;

// Where control sockets live: $WEFT_RUNTIME_DIR if set, else /run/weft
// for root, else $XDG_RUNTIME_DIR/weft (nullopt when that is unset too).
// The daemon, the client library and the tools all use this one rule.
// Each host has a directory of its own there, RUNTIME/NAME/, made by its
// daemon (mode 0700, or 02750 with --socket-group's group) and holding
// its socket, kSocketFile; see host/runtime_dir.hpp for why.
std::optional<std::string> runtime_dir();
inline constexpr const char* kSocketFile = "control.sock";
// The control socket of host `name_or_path`: a path when it contains '/',
// else runtime_dir()/NAME/control.sock. nullopt when no runtime directory
// is known.
std::optional<std::string> control_socket_path(std::string_view name_or_path);
// WEFT_HOST or "default".
std::string default_host();

}  // namespace weft::control
