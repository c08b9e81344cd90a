// Helpers shared by the subcommands that are clients of a weft host daemon
// (cat, ping): argument parsing for addresses and ports, and the one-line
// runtime errors (`weft cat: connect 192.0.2.20:4444: Connection refused`),
// thrown as std::runtime_error for main() to print with exit 1.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cli.hpp"
#include "client/weft.h"

namespace weft::cli {

// A dotted IPv4 address (names are not resolved). Usage error otherwise.
inline in_addr parse_ipv4_arg(const std::string& what, const std::string& s) {
  in_addr a{};
  if (::inet_pton(AF_INET, s.c_str(), &a) != 1)
    usage_error(fmt::format("{}: '{}' is not a dotted IPv4 address", what, s));
  return a;
}

// A port 1-65535 (0 with allow_zero). Usage error otherwise.
inline std::uint16_t parse_port_arg(const std::string& what, const std::string& s, bool allow_zero = false) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v > 65535 || (v == 0 && !allow_zero))
    usage_error(fmt::format("{}: '{}' is not a port number (1-65535)", what, s));
  return static_cast<std::uint16_t>(v);
}

inline sockaddr_in make_sockaddr(in_addr a, std::uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_addr = a;
  s.sin_port = htons(port);
  return s;
}

inline std::string addr_string(in_addr a) {
  char b[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, b, sizeof b);
  return b;
}

inline std::string endpoint_string(const sockaddr_in& s) {
  return fmt::format("{}:{}", addr_string(s.sin_addr), ntohs(s.sin_port));
}

// `what: strerror(err)` as the runtime error main() prints.
[[noreturn]] inline void sys_fail(const std::string& what, int err) {
  throw std::runtime_error(fmt::format("{}: {}", what, std::strerror(err)));
}

// weft_socket failed. When the daemon could not be reached (or refused us:
// another protocol version, the control socket's permissions) the library's
// one-line detail says where it looked and why; that line is the message.
[[noreturn]] inline void socket_fail(int err) {
  std::string detail = weft_last_detail();
  if ((err == ENETDOWN || err == EPROTONOSUPPORT || err == EACCES || err == ENAMETOOLONG) && !detail.empty())
    throw std::runtime_error(detail);
  if (err == ENETDOWN) throw std::runtime_error(std::strerror(err));
  sys_fail("socket", err);
}

// Descriptors 0-2 that are not open are opened on /dev/null first, so that
// a weft socket never lands on one of them and is taken for stdin/stdout
// (output meant for stdout would go to the daemon as socket data).
inline void ensure_std_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0) continue;
    int n = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (n >= 0 && n != fd) {
      ::dup2(n, fd);
      ::close(n);
    }
  }
}

// A weft descriptor closed with weft_close when it goes out of scope, on
// every path out of a subcommand (errors are exceptions).
class WeftFd {
 public:
  explicit WeftFd(int fd = -1) : fd_(fd) {}
  ~WeftFd() { reset(); }
  WeftFd(const WeftFd&) = delete;
  WeftFd& operator=(const WeftFd&) = delete;
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) weft_close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

}  // namespace weft::cli
