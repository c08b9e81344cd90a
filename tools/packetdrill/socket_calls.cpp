// The adapter's socket calls: socket to shutdown, recv and send with their
// vectored forms, socket options (through tcp/sockopt.hpp), ioctl and poll.
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <limits>

#include "tcp/sockopt.hpp"
#include "wire/sockaddr.hpp"

#include "adapter.hpp"

namespace weft::pd {

// ----------------------------------------------------------- socket calls
// Each takes the one lock; "-errno" results become errno in the trampolines.

int Adapter::socket(int domain, int type, int protocol) {
  Lock lk(mu_);
  if (domain == AF_INET6) return -ENOSYS;
  if (domain != AF_INET) return -EAFNOSUPPORT;
  const int kind = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (kind != SOCK_STREAM) return -ENOSYS;  // UDP, raw: not offered here
  if (protocol != 0 && protocol != IPPROTO_TCP) return -EPROTONOSUPPORT;
  Fd f;
  f.id = tcp().open();
  f.nonblock = (type & SOCK_NONBLOCK) != 0;
  f.cloexec = (type & SOCK_CLOEXEC) != 0;
  return add_fd(f);
}

int Adapter::bind(int fd, const sockaddr* addr, socklen_t len) {
  Lock lk(mu_);
  Fd* f = find(fd);
  if (!f) return bad(fd);
  Endpoint ep;
  // The family before the full length, as Linux's inet_stream_connect
  // checks (the adapter has always used that order for bind too).
  if (const auto e = endpoint_from(addr, len, ep, SockaddrCheck::family_first); e != std::errc{}) return err(e);
  auto st = tcp().bind(f->id, ep);
  return st ? 0 : err(st.error());
}

int Adapter::listen(int fd, int backlog) {
  Lock lk(mu_);
  Fd* f = find(fd);
  if (!f) return bad(fd);
  // Linux caps the backlog at somaxconn; a negative one becomes the cap.
  const std::size_t b = backlog < 0 ? tcp().config().max_backlog : static_cast<std::size_t>(backlog);
  auto st = tcp().listen(f->id, b);
  pump();
  return st ? 0 : err(st.error());
}

int Adapter::accept(int fd, sockaddr* addr, socklen_t* len) {
  Lock lk(mu_);
  if (addr && !len) return -EFAULT;
  const Fd* f = find(fd);
  if (!f) return bad(fd);
  const SocketId id = f->id;
  const bool nonblock = f->nonblock;
  auto attempt = [&]() -> std::optional<int> {
    const Fd* l = find(fd);
    if (!l || l->id != id) return -EBADF;  // closed while we waited
    auto r = tcp().accept(l->id);
    if (!r) {
      if (r.error() == std::errc::resource_unavailable_try_again && !nonblock) return std::nullopt;
      return err(r.error());
    }
    Fd c = *l;  // options are inherited (TcpLayer copies them to the child)
    c.id = r->id;
    c.nonblock = false;  // accept(2), unlike accept4(2), does not inherit O_NONBLOCK
    c.cloexec = false;
    copy_out(r->peer, addr, len);
    return add_fd(c);
  };
  return block<int>(lk, std::nullopt, -EAGAIN, attempt);
}

int Adapter::connect(int fd, const sockaddr* addr, socklen_t len) {
  Lock lk(mu_);
  Fd* f = find(fd);
  if (!f) return bad(fd);
  Endpoint ep;
  // The family before the full length, as Linux's inet_stream_connect
  // checks (the adapter has always used that order for bind too).
  if (const auto e = endpoint_from(addr, len, ep, SockaddrCheck::family_first); e != std::errc{}) return err(e);
  auto st = tcp().connect(f->id, ep, now_);
  pump();
  if (!st) return err(st.error());
  if (f->nonblock) return -EINPROGRESS;
  const SocketId id = f->id;
  auto attempt = [&]() -> std::optional<int> {
    const Fd* c = find(fd);
    if (!c || c->id != id) return -EBADF;
    if (!(tcp().events(id) & (tcp_event::writable | tcp_event::error | tcp_event::hup))) return std::nullopt;
    const auto e = tcp().take_error(id);
    return e ? err(*e) : 0;
  };
  return block<int>(lk, std::nullopt, -ETIMEDOUT, attempt);
}

ssize_t Adapter::recv_locked(Lock& lk, int fd, std::span<std::uint8_t> buf, int flags, bool fault) {
  Fd* f = find(fd);
  if (!f) return bad(fd);
  if (flags & MSG_OOB) return -EINVAL;       // no urgent data is ever kept
  if (flags & MSG_ERRQUEUE) return -EAGAIN;  // the error queue is always empty
  if (buf.empty() && !fault) return 0;
  const bool peek = (flags & MSG_PEEK) != 0;
  const bool nonblock = f->nonblock || (flags & MSG_DONTWAIT);
  const bool waitall = (flags & MSG_WAITALL) && !peek && !nonblock;
  const SocketId id = f->id;
  std::size_t got = 0;
  auto attempt = [&]() -> std::optional<ssize_t> {
    const Fd* c = find(fd);
    if (!c || c->id != id) return got ? static_cast<ssize_t>(got) : -EBADF;
    if (fault) {
      // Whether there is anything to copy: a byte peeked, not taken.
      std::uint8_t probe;
      auto r = tcp().recv(id, {&probe, 1}, now_, true);
      if (!r) {
        if (r.error() == std::errc::resource_unavailable_try_again && !nonblock) return std::nullopt;
        if (r.error() != std::errc::resource_unavailable_try_again) (void)tcp().take_error(id);  // reported once
        return err(r.error());
      }
      return r->len > 0 ? ssize_t{-EFAULT} : ssize_t{0};  // 0: end of stream, nothing to copy
    }
    auto r = tcp().recv(id, buf.subspan(got), now_, peek);
    if (!r) {
      if (r.error() == std::errc::resource_unavailable_try_again && !nonblock) return std::nullopt;
      return got ? static_cast<ssize_t>(got) : err(r.error());
    }
    if (!peek) pump();  // reading may open the window: a window update
    got += r->len;
    if (waitall && r->len > 0 && got < buf.size()) return std::nullopt;
    return static_cast<ssize_t>(got);
  };
  return block<ssize_t>(lk, std::nullopt, -EAGAIN, attempt);
}

ssize_t Adapter::recv(int fd, void* buf, std::size_t n, int flags) {
  Lock lk(mu_);
  if (!buf && n > 0) return recv_locked(lk, fd, {}, flags, true);
  return recv_locked(lk, fd, {static_cast<std::uint8_t*>(buf), buf ? n : 0}, flags);
}

ssize_t Adapter::recv_iov(int fd, const iovec* iov, int n, int flags) {
  if (n < 0 || n > IOV_MAX) return -EINVAL;
  if (n > 0 && !iov) return -EFAULT;
  std::vector<std::uint8_t> tmp(iov_total(iov, n));
  const bool fault = std::any_of(iov, iov + n, [](const iovec& v) { return !v.iov_base && v.iov_len > 0; });
  ssize_t r;
  {
    Lock lk(mu_);
    r = recv_locked(lk, fd, tmp, flags, fault);
  }
  for (int i = 0, off = 0; r > 0 && i < n && off < r; ++i) {
    const std::size_t k = std::min<std::size_t>(iov[i].iov_len, static_cast<std::size_t>(r - off));
    std::memcpy(iov[i].iov_base, tmp.data() + off, k);
    off += static_cast<int>(k);
  }
  return r;
}

ssize_t Adapter::send_locked(Lock& lk, int fd, std::span<const std::uint8_t> data, int flags, bool fault) {
  Fd* f = find(fd);
  if (!f) return bad(fd);
  if (flags & MSG_OOB) return -EOPNOTSUPP;  // urgent data is not sent
  const bool nonblock = f->nonblock || (flags & MSG_DONTWAIT);
  const SocketId id = f->id;
  std::size_t put = 0;
  // A blocking send returns once everything is queued (or an error comes
  // after part of it: then the part); a non-blocking one takes what fits.
  auto attempt = [&]() -> std::optional<ssize_t> {
    const Fd* c = find(fd);
    if (!c || c->id != id) return put ? static_cast<ssize_t>(put) : -EBADF;
    if (fault) {
      // Linux checks the connection (and waits for it) before the copy faults.
      auto r = tcp().send(id, {}, now_);
      if (!r) {
        if (r.error() == std::errc::resource_unavailable_try_again && !nonblock) return std::nullopt;
        return err(r.error());
      }
      return ssize_t{-EFAULT};
    }
    auto r = tcp().send(id, data.subspan(put), now_, (flags & MSG_MORE) != 0);
    pump();
    if (!r) {
      if (r.error() == std::errc::resource_unavailable_try_again && !nonblock) return std::nullopt;
      return put ? static_cast<ssize_t>(put) : err(r.error());
    }
    put += *r;
    if (put < data.size() && !nonblock) return std::nullopt;
    return static_cast<ssize_t>(put);
  };
  return block<ssize_t>(lk, std::nullopt, -EAGAIN, attempt);
}

ssize_t Adapter::send(int fd, const void* data, std::size_t n, int flags) {
  Lock lk(mu_);
  if (!data && n > 0) return send_locked(lk, fd, {}, flags, true);
  return send_locked(lk, fd, {static_cast<const std::uint8_t*>(data), data ? n : 0}, flags);
}

ssize_t Adapter::send_iov(int fd, const iovec* iov, int n, int flags) {
  if (n < 0 || n > IOV_MAX) return -EINVAL;
  if (n > 0 && !iov) return -EFAULT;
  std::vector<std::uint8_t> tmp;
  tmp.reserve(iov_total(iov, n));
  bool fault = false;
  for (int i = 0; i < n; ++i) {
    const auto* p = static_cast<const std::uint8_t*>(iov[i].iov_base);
    if (!p) {
      fault = fault || iov[i].iov_len > 0;
      continue;
    }
    tmp.insert(tmp.end(), p, p + iov[i].iov_len);
  }
  Lock lk(mu_);
  return send_locked(lk, fd, tmp, flags, fault);
}

int Adapter::fcntl(int fd, int cmd, int arg) {
  Lock lk(mu_);
  Fd* f = find_any(fd);
  if (!f) return -EBADF;
  switch (cmd) {
    case F_GETFL:
      return O_RDWR | (f->nonblock ? O_NONBLOCK : 0);
    case F_SETFL:
      f->nonblock = (arg & O_NONBLOCK) != 0;
      return 0;
    case F_GETFD:
      return f->cloexec ? FD_CLOEXEC : 0;
    case F_SETFD:
      f->cloexec = (arg & FD_CLOEXEC) != 0;
      return 0;
    default:
      return -EINVAL;
  }
}

int Adapter::close(int fd) {
  Lock lk(mu_);
  Fd* f = find_any(fd);
  if (!f) return -EBADF;
  // A closed descriptor leaves every interest list (Linux: on its last close).
  for (auto& [serial, ep] : epolls_) ep.interest.erase(fd);
  if (f->kind == Fd::Kind::epoll) {
    epolls_.erase(f->serial);
    fds_.erase(fd);
    ++gen_;
    cv_.notify_all();  // an epoll_wait on it returns EBADF
    return 0;
  }
  auto st = tcp().close(f->id, now_);
  fds_.erase(fd);
  pump();
  return st ? 0 : err(st.error());
}

int Adapter::shutdown(int fd, int how) {
  Lock lk(mu_);
  Fd* f = find(fd);
  if (!f) return bad(fd);
  Shutdown s;
  switch (how) {
    case SHUT_RD:
      s = Shutdown::read;
      break;
    case SHUT_WR:
      s = Shutdown::write;
      break;
    case SHUT_RDWR:
      s = Shutdown::both;
      break;
    default:
      return -EINVAL;
  }
  auto st = tcp().shutdown(f->id, s, now_);
  pump();
  return st ? 0 : err(st.error());
}

// Every option goes through tcp/sockopt.hpp: one mapping to TcpLayer with
// Linux's ranges and errors, shared with any other socket front end.
int Adapter::getsockopt(int fd, int level, int name, void* val, socklen_t* len) {
  Lock lk(mu_);
  Fd* f = find(fd);
  if (!f) return bad(fd);
  if (!val || !len) return -EFAULT;
  auto r = tcp::get_option(tcp(), f->id, level, name, {static_cast<std::uint8_t*>(val), *len});
  if (!r) return err(r.error());
  *len = static_cast<socklen_t>(*r);
  return 0;
}

int Adapter::setsockopt(int fd, int level, int name, const void* val, socklen_t len) {
  Lock lk(mu_);
  Fd* f = find(fd);
  if (!f) return bad(fd);
  if (!val) return -EFAULT;
  auto st = tcp::set_option(tcp(), f->id, level, name, {static_cast<const std::uint8_t*>(val), len}, now_);
  pump();  // TCP_NODELAY and TCP_CORK may have sent what was held
  return st ? 0 : err(st.error());
}

int Adapter::ioctl(int fd, unsigned long request, void* arg) {
  Lock lk(mu_);
  Fd* any = find_any(fd);
  if (!any) return -EBADF;
  if (request == FIONBIO) {  // any descriptor: ioctl(2)'s O_NONBLOCK switch
    if (!arg) return -EFAULT;
    int on;
    std::memcpy(&on, arg, sizeof on);
    any->nonblock = on != 0;
    return 0;
  }
  Fd* f = find(fd);
  if (!f) return -ENOTTY;
  // tcp_ioctl(): EINVAL on a listener; 0 while the handshake is under way.
  const auto i = tcp().info(f->id);
  if (!i) return -EBADF;
  if (i->state == tcp::TcpState::listen && (request == SIOCINQ || request == SIOCOUTQ || request == SIOCOUTQNSD))
    return -EINVAL;
  const bool opening = i->state == tcp::TcpState::syn_sent || i->state == tcp::TcpState::syn_received;
  int v;
  switch (request) {
    case SIOCINQ:
      v = opening ? 0 : static_cast<int>(tcp().readable(f->id));
      break;  // = FIONREAD
    case SIOCOUTQ:
      v = opening ? 0 : static_cast<int>(i->send_queue);
      break;  // not yet acknowledged
    case SIOCOUTQNSD:
      v = opening ? 0 : static_cast<int>(i->unsent);
      break;  // not yet sent
    default:
      return -ENOTTY;  // Linux: -ENOIOCTLCMD from tcp_ioctl
  }
  if (!arg) return -EFAULT;
  std::memcpy(arg, &v, sizeof v);
  return 0;
}

std::optional<int> Adapter::inq_hint(int fd) {
  Lock lk(mu_);
  Fd* f = find(fd);
  if (!f) return std::nullopt;
  const auto o = tcp().options(f->id);
  if (!o || !o->inq) return std::nullopt;
  const std::size_t n = tcp().readable(f->id);
  // "After receiving a FIN, tell the user-space to continue reading by
  // returning a non-zero inq" (tcp_inq_hint).
  if (n == 0 && (tcp().events(f->id) & tcp_event::readable)) return 1;
  return static_cast<int>(std::min<std::size_t>(n, std::numeric_limits<int>::max()));
}

short Adapter::revents(SocketId id) {
  const std::uint32_t ev = tcp().events(id);
  short m = 0;
  if (ev & tcp_event::readable) m |= POLLIN | POLLRDNORM;
  if (ev & tcp_event::writable) m |= POLLOUT | POLLWRNORM;
  if (ev & tcp_event::error) m |= POLLERR;
  if (ev & tcp_event::hup) m |= POLLHUP;
  if (const auto i = tcp().info(id)) {
    switch (i->state) {  // the peer's FIN has been received
      case tcp::TcpState::close_wait:
      case tcp::TcpState::closing:
      case tcp::TcpState::last_ack:
      case tcp::TcpState::time_wait:
        m |= POLLRDHUP;
        break;
      default:
        break;
    }
  }
  return m;
}

int Adapter::poll(pollfd* fds, nfds_t n, int timeout_ms) {
  Lock lk(mu_);
  if (n > 0 && !fds) return -EFAULT;
  const std::optional<Instant> deadline =
      timeout_ms > 0 ? std::optional<Instant>(now_ + std::chrono::milliseconds{timeout_ms}) : std::nullopt;
  auto attempt = [&]() -> std::optional<int> {
    int ready = 0;
    for (nfds_t i = 0; i < n; ++i) {
      pollfd& p = fds[i];
      p.revents = 0;
      if (p.fd < 0) continue;
      const Fd* f = find_any(p.fd);
      // POLLERR and POLLHUP are reported whether asked for or not (poll(2)).
      // An epoll descriptor is not polled through here: never ready.
      if (!f)
        p.revents = POLLNVAL;
      else if (f->kind == Fd::Kind::socket)
        p.revents = static_cast<short>(revents(f->id) & (p.events | POLLERR | POLLHUP));
      if (p.revents) ++ready;
    }
    if (ready > 0 || timeout_ms == 0 || (deadline && now_ >= *deadline)) return ready;
    return std::nullopt;
  };
  return block<int>(lk, deadline, 0, attempt);
}

}  // namespace weft::pd
