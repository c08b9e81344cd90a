// libweft-client, C++ side: what tools need beyond the C API (weft.h).
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <optional>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "wire/types.hpp"

namespace weft::client {

// The netstat snapshot of host `name_or_path` (docs/netstat-json.md), over
// a control connection of its own.
// Errors: ENETDOWN (no daemon there; last_detail() says where it looked),
// EACCES (the control socket's permissions), EPROTONOSUPPORT (another
// protocol version), EPROTO (a malformed answer).
Result<nlohmann::json> netstat_snapshot(const std::string& name_or_path);

// A weft socket owned by one object: the C API (weft.h) with Result
// instead of errno, strong types instead of sockaddr, and weft_close in the
// destructor. The errors are the C API's, hence POSIX's.
class Socket {
 public:
  enum class Type { tcp, udp, icmp };
  // Errors: ENETDOWN (no daemon), EPROTONOSUPPORT (version), EMFILE.
  static Result<Socket> open(Type type, bool nonblocking = false);
  Socket() = default;
  ~Socket() { reset(); }
  Socket(Socket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Socket& operator=(Socket&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // The descriptor, for poll/epoll; -1 when empty.
  int fd() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

  Status bind(Endpoint local);                      // EACCES, EADDRINUSE, EADDRNOTAVAIL, EINVAL
  Status listen(int backlog);                       // EINVAL, EADDRINUSE, EOPNOTSUPP
  Result<Socket> accept(Endpoint* peer = nullptr);  // EAGAIN, EINVAL (not listening), ENETDOWN
  Status connect(Endpoint remote);                  // ECONNREFUSED, ETIMEDOUT, EINPROGRESS (non-blocking), ...
  Result<std::size_t> send(std::span<const std::uint8_t> data, int flags = 0);  // EAGAIN, EPIPE, ECONNRESET
  // 0: clean end of stream. Errors: EAGAIN, ECONNRESET, ETIMEDOUT, ENOTCONN.
  Result<std::size_t> recv(std::span<std::uint8_t> buf, int flags = 0);
  Result<std::size_t> send_to(std::span<const std::uint8_t> data, Endpoint to);  // EMSGSIZE, EINVAL
  Result<std::size_t> recv_from(std::span<std::uint8_t> buf, Endpoint* from);    // ECONNREFUSED (async ICMP)
  Status shutdown(int how);                                                      // ENOTCONN, EINVAL
  Result<Endpoint> local_endpoint() const;
  Result<Endpoint> remote_endpoint() const;           // ENOTCONN
  Status set_option(int level, int name, int value);  // ENOPROTOOPT, EINVAL
  Result<int> option(int level, int name) const;      // SO_ERROR clears the pending error
  // Closes now (weft_close); the destructor does the same.
  void reset();

 private:
  explicit Socket(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// The one-line explanation behind the last ENETDOWN/EPROTONOSUPPORT in
// this thread.
std::string last_detail();

}  // namespace weft::client
