#include "perf_net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>

#include <cerrno>
#include <vector>

#include "client/weft.h"
#include "wire/sockaddr.hpp"

namespace weft::perf {

namespace {

std::errc last_errc() { return std::errc{errno}; }

int fd_of(Sock s) { return static_cast<int>(s); }

// Round up: waking a little late is fine, spinning early is not.
int timeout_ms(std::optional<Instant> d) {
  if (!d) return -1;
  auto wait = *d - monotonic_now();
  if (wait <= Duration::zero()) return 0;
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
}

}  // namespace

// ---------------------------------------------------------------- daemon

DaemonNet::~DaemonNet() {
  for (auto& [fd, w] : watched_) weft_close(fd);
}

Result<Sock> DaemonNet::listen(std::uint16_t port) {
  int fd = weft_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return last_errc();
  int one = 1;
  auto sa = to_sockaddr(Endpoint{Ipv4Addr::any(), Port{port}});
  if (weft_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      weft_bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || weft_listen(fd, 128) != 0) {
    auto e = last_errc();
    weft_close(fd);
    return e;
  }
  watched_[fd] = false;
  return Sock{fd};
}

Result<Sock> DaemonNet::accept(Sock listener, Endpoint* peer) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  int fd = weft_accept(fd_of(listener), reinterpret_cast<sockaddr*>(&sa), &len);
  if (fd < 0) return last_errc();
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (peer) *peer = from_sockaddr(sa);
  watched_[fd] = false;
  return Sock{fd};
}

Result<Sock> DaemonNet::connect(Endpoint to) {
  int fd = weft_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return last_errc();
  auto sa = to_sockaddr(to);
  if (weft_connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 && errno != EINPROGRESS) {
    auto e = last_errc();
    weft_close(fd);
    return e;
  }
  watched_[fd] = true;
  return Sock{fd};
}

// The descriptor turns writable when the handshake is over, either way;
// SO_ERROR says which (src/client/weft.h).
Result<bool> DaemonNet::connected(Sock s) {
  pollfd p{fd_of(s), POLLOUT, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  int err = 0;
  socklen_t len = sizeof err;
  if (weft_getsockopt(fd_of(s), SOL_SOCKET, SO_ERROR, &err, &len) != 0) return last_errc();
  if (err != 0) return std::errc{err};
  return true;
}

Result<std::size_t> DaemonNet::send(Sock s, std::span<const std::uint8_t> data) {
  ssize_t n = weft_send(fd_of(s), data.data(), data.size(), 0);
  if (n < 0) return last_errc();
  return static_cast<std::size_t>(n);
}

Result<std::size_t> DaemonNet::recv(Sock s, std::span<std::uint8_t> buf) {
  ssize_t n = weft_recv(fd_of(s), buf.data(), buf.size(), 0);
  if (n < 0) return last_errc();
  return static_cast<std::size_t>(n);
}

void DaemonNet::shutdown_write(Sock s) { weft_shutdown(fd_of(s), SHUT_WR); }

void DaemonNet::close(Sock s) {
  watched_.erase(fd_of(s));
  weft_close(fd_of(s));
}

void DaemonNet::want_write(Sock s, bool on) {
  if (auto it = watched_.find(fd_of(s)); it != watched_.end()) it->second = on;
}

std::optional<Endpoint> DaemonNet::local_endpoint(Sock s) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (weft_getsockname(fd_of(s), reinterpret_cast<sockaddr*>(&sa), &len) != 0) return std::nullopt;
  return from_sockaddr(sa);
}

Result<bool> DaemonNet::run(Driver& d, int signal_fd) {
  std::vector<pollfd> fds;
  for (;;) {
    if (d.done()) return true;
    fds.clear();
    if (signal_fd >= 0) fds.push_back(pollfd{signal_fd, POLLIN, 0});
    for (auto& [fd, w] : watched_) fds.push_back(pollfd{fd, static_cast<short>(POLLIN | (w ? POLLOUT : 0)), 0});
    int n = ::poll(fds.data(), fds.size(), timeout_ms(d.deadline()));
    if (n < 0 && errno != EINTR) return last_errc();
    if (n > 0 && signal_fd >= 0 && fds[0].revents != 0) return false;
    const Instant now = monotonic_now();
    for (const pollfd& p : fds) {
      // A descriptor closed meanwhile (and maybe reopened for another
      // socket) gets a spurious event at worst, which handlers tolerate.
      if (n > 0 && p.revents != 0 && p.fd != signal_fd && watched_.count(p.fd)) d.on_event(Sock{p.fd}, now);
    }
    d.on_time(now);
  }
}

// ---------------------------------------------------------------- embedded

Result<Sock> EmbeddedNet::listen(std::uint16_t port) {
  touched_ = true;
  SocketId s = tcp_.open();
  Status st = tcp_.set_reuse_addr(s, true);
  if (st) st = tcp_.bind(s, Endpoint{Ipv4Addr::any(), Port{port}});
  if (st) st = tcp_.listen(s, 128);
  if (!st) {
    (void)tcp_.close(s, now_);
    return st.error();
  }
  return sock(s);
}

Result<Sock> EmbeddedNet::accept(Sock listener, Endpoint* peer) {
  auto a = tcp_.accept(id(listener));
  if (!a) return a.error();
  if (peer) *peer = a->peer;
  return sock(a->id);
}

Result<Sock> EmbeddedNet::connect(Endpoint to) {
  touched_ = true;
  SocketId s = tcp_.open();
  if (auto st = tcp_.connect(s, to, now_); !st) {
    (void)tcp_.close(s, now_);
    return st.error();
  }
  return sock(s);
}

Result<bool> EmbeddedNet::connected(Sock s) {
  const std::uint32_t ev = tcp_.events(id(s));
  if (ev & tcp_event::error) {
    if (auto e = tcp_.take_error(id(s))) return *e;
  }
  if (ev & tcp_event::writable) return true;
  if (ev & tcp_event::hup) return std::errc::connection_reset;
  return false;
}

Result<std::size_t> EmbeddedNet::send(Sock s, std::span<const std::uint8_t> data) {
  touched_ = true;
  return tcp_.send(id(s), data, now_);
}

Result<std::size_t> EmbeddedNet::recv(Sock s, std::span<std::uint8_t> buf) {
  touched_ = true;  // reading opens the window: a window update may go out
  auto r = tcp_.recv(id(s), buf, now_);
  if (!r) return r.error();
  return r->len;
}

void EmbeddedNet::shutdown_write(Sock s) {
  touched_ = true;
  (void)tcp_.shutdown(id(s), Shutdown::write, now_);
}

void EmbeddedNet::close(Sock s) {
  touched_ = true;
  (void)tcp_.close(id(s), now_);
}

std::optional<Endpoint> EmbeddedNet::local_endpoint(Sock s) { return tcp_.local_endpoint(id(s)); }

bool EmbeddedNet::quiet() const {
  bool quiet = true;
  tcp_.for_each_socket([&](const TcpInfo& i) {
    if (i.state != tcp::TcpState::listen && i.state != tcp::TcpState::time_wait && i.state != tcp::TcpState::closed)
      quiet = false;
  });
  return quiet;
}

Result<bool> EmbeddedNet::run(Driver& d, Duration linger) {
  host_.set_on_tcp_event([&](SocketId s, Instant now) {
    now_ = now;
    d.on_event(sock(s), now);
  });
  bool dirty = false;  // the Driver's timers queued segments after the step
  std::optional<Instant> done_at;
  EventLoopHooks hooks;
  hooks.after_step = [&](Instant now) {
    now_ = now;
    touched_ = false;
    d.on_time(now);
    dirty = touched_;
    if (d.done() && !done_at) done_at = now;
  };
  hooks.extra_deadline = [&]() -> std::optional<Instant> {
    if (dirty) return Instant{};  // step again at once: it sends them
    if (done_at) return *done_at + linger;
    return d.deadline();
  };
  hooks.stop = [&] { return done_at && !dirty && (quiet() || now_ >= *done_at + linger); };
  auto st = run_event_loop(host_, hooks);
  host_.set_on_tcp_event(nullptr);
  if (!st) return st.error();
  return done_at.has_value();
}

}  // namespace weft::perf
