// A weft socket in the daemon (host/daemon_impl.hpp): the pair both kinds
// share, and what each kind adds, as one variant. TCP's own state is the
// stack's (TcpLayer::info); what is kept here is the pair's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "control/control.hpp"
#include "transport/socket_id.hpp"
#include "wire/types.hpp"

namespace weft {

namespace daemon_detail {
std::size_t inq(int fd);  // bytes queued to read on a descriptor (daemon_control.cpp)
}  // namespace daemon_detail

// The daemon's duplicate of the process's end of a pair (`cfd`): the one
// way the daemon sees that end, to count what waits there for the process
// (Recv-Q, docs/client-design.md), to hold it unwritable during a
// handshake, and to see unread data at close. Today it is a duplicate of
// the descriptor the daemon passed; kept behind this interface because
// serving ordinary programs changes how the daemon sees their end.
// Move-only; closes its descriptor.
class ClientEnd {
 public:
  ClientEnd() = default;
  explicit ClientEnd(int fd) : fd_(fd) {}
  ~ClientEnd() { reset(); }
  ClientEnd(ClientEnd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  ClientEnd& operator=(ClientEnd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ClientEnd(const ClientEnd&) = delete;
  ClientEnd& operator=(const ClientEnd&) = delete;

  // Bytes waiting for the process to read (for a listener: AcceptRecords
  // times their size).
  std::size_t unread() const { return daemon_detail::inq(fd_); }
  // Makes the process's end unwritable: its send buffer at the minimum,
  // filled with zeros. Returns the bytes written, which arrive at the
  // daemon's end and are the caller's to read away (daemon_stream.cpp).
  std::size_t block_writes();
  // The send buffer back to its size (after the filler is read away).
  void allow_writes();
  void reset();

 private:
  int fd_ = -1;
};

// A TCP socket that is not listening: fresh, connecting, open (bytes
// move both ways) or failed. `phase` is the pair's, not TCP's: whether
// the filler is still in place and whether the pump runs.
struct StreamPair {
  enum class Phase : std::uint8_t { fresh, connecting, open, failed };
  SocketId sid = 0;
  Phase phase = Phase::fresh;
  std::size_t filler = 0;      // bytes keeping the client's end unwritable until connected
  bool peer_eof_sent = false;  // TCP end of stream passed on (SHUT_WR on dfd)
  bool dead = false;           // reset, timed out or failed: nothing more moves
  bool client_eof = false;     // the client shut down writing; FIN sent
  bool want_in = true;         // read dfd when it has data (false: TCP send buffer full)
  bool linger_zero = false;
  std::optional<std::errc> end_err{};   // why the stream ended (status op)
  std::optional<std::errc> so_error{};  // SO_ERROR, cleared on read
};

// A listening TCP socket: its descriptor carries AcceptRecords only.
struct Listener {
  SocketId sid = 0;
  std::size_t backlog = 0;
  std::deque<std::uint32_t> pushed{};  // children handed to the client, oldest first
};

// A UDP socket: a SOCK_SEQPACKET pair, a DgramHeader per datagram.
struct DatagramPair {
  SocketId sid = 0;
  std::optional<Endpoint> peer{};      // connect()ed
  std::vector<std::uint8_t> staged{};  // a datagram the pair had no room for
};

// An ICMP echo (ping) socket: as DatagramPair, echo requests and replies.
struct EchoPair {
  std::uint16_t ident = 0;  // its echo identifier, as a Linux ping socket's port
};

struct Sock {
  std::uint32_t handle = 0;
  std::uint32_t client = 0;  // the client whose control connection made it
  int dfd = -1;              // the daemon's end of the pair
  ClientEnd cfd;
  std::uint32_t mask = 0;  // current epoll interest
  bool want_out = false;   // dfd was full: write again when it drains
  std::variant<StreamPair, Listener, DatagramPair, EchoPair> as;

  control::SockKind kind() const {
    switch (as.index()) {
      case 0:
      case 1:
        return control::SockKind::tcp;
      case 2:
        return control::SockKind::udp;
      default:
        return control::SockKind::icmp;
    }
  }
  // The stack's id of a TCP or UDP socket (ICMP sockets have none).
  std::optional<SocketId> sid() const {
    if (auto* t = std::get_if<StreamPair>(&as)) return t->sid;
    if (auto* l = std::get_if<Listener>(&as)) return l->sid;
    if (auto* u = std::get_if<DatagramPair>(&as)) return u->sid;
    return std::nullopt;
  }
};

}  // namespace weft
