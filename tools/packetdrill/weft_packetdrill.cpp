// libweft_packetdrill.so: one weft Stack behind packetdrill's --so_filename
// interface, in virtual time.
//
// packetdrill drives the table from two threads. Its main thread injects
// packets (netdev_send), sniffs what the stack sends (netdev_receive), sleeps
// (usleep) and reads the clock (gettimeofday); its system-call thread makes
// the blocking socket calls. So:
//
// - One mutex around everything. The clock is `now_`, moved only by usleep,
//   gettimeofday (+1 us per call: the tool spins on it), netdev_receive (to
//   the next deadline when nothing is queued) and a blocking call made by
//   the clock's own thread. Moving time steps through every deadline in
//   order: Stack::poll(deadline), then the packets it sent are queued with
//   that deadline as their send time.
// - The clock thread is the tool's main thread: the first to read the clock
//   (the tool does so before anything else), or the one that injects and
//   sniffs packets. The system-call thread also sleeps and reads the clock:
//   for a line like `+.1...0.2 connect(...)` it waits the .1 s itself
//   (packetdrill's wait_for_event() runs on that thread while the main
//   thread waits for it to start the call), so its usleep moves time too,
//   but it never becomes the clock thread: its blocking call then waits for
//   the packets the script injects instead of running the clock through
//   every retransmission.
// - Every change to the stack bumps `gen_` and wakes `cv_`. A blocked call
//   waits on `cv_` and retries its operation after each change. Before the
//   clock moves on, the mover lets every blocked call retry once at the
//   current instant (settle_waiters): a call that completes does so at the
//   right virtual time, and what it sends is sniffed with the right time.
// - File descriptors are the lowest free numbers from 3, as POSIX has them.
//
// Flags: see flags.hpp.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "flags.hpp"
#include "packetdrill_interface.h"
#include "stack/stack.hpp"
#include "tcp/sockopt.hpp"

namespace weft::pd {
namespace {

// --------------------------------------------------------------- helpers

int err(std::errc e) { return -static_cast<int>(e); }

// sockaddr -> Endpoint; 0 or -errno.
int to_endpoint(const sockaddr* a, socklen_t len, Endpoint& out) {
  if (!a) return -EFAULT;
  if (len < sizeof(sa_family_t)) return -EINVAL;
  if (a->sa_family != AF_INET) return -EAFNOSUPPORT;
  if (len < sizeof(sockaddr_in)) return -EINVAL;
  sockaddr_in sin;
  std::memcpy(&sin, a, sizeof sin);
  out = Endpoint{Ipv4Addr{ntohl(sin.sin_addr.s_addr)}, Port{ntohs(sin.sin_port)}};
  return 0;
}

// Endpoint -> sockaddr, truncated to *len as the kernel does; *len = full size.
void from_endpoint(const Endpoint& e, sockaddr* a, socklen_t* len) {
  if (!a || !len) return;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(e.port.value());
  sin.sin_addr.s_addr = htonl(e.addr.value());
  std::memcpy(a, &sin, std::min<std::size_t>(*len, sizeof sin));
  *len = sizeof sin;
}

std::size_t iov_total(const iovec* iov, int n) {
  std::size_t t = 0;
  for (int i = 0; i < n; ++i) t += iov[i].iov_len;
  return t;
}

// ---------------------------------------------------------------- adapter

// A descriptor: a TCP socket or an epoll instance. Socket options live in
// TcpLayer (tcp::SocketOptions) and are reached through tcp/sockopt.hpp.
struct Fd {
  enum class Kind : std::uint8_t { socket, epoll };
  Kind kind = Kind::socket;
  // A socket's. A blocked call that finds its fd naming another id knows
  // the fd was closed (and perhaps reused) while it waited: ids carry a
  // generation, so a new socket never has an old one's id.
  SocketId id = 0;
  std::uint64_t serial = 0;  // an epoll instance's key in epolls_
  bool nonblock = false;
  bool cloexec = false;
};

// One descriptor in an epoll instance's interest list (epoll_ctl(2)).
struct Interest {
  std::uint32_t events = 0;  // as registered, EPOLLET and EPOLLONESHOT included
  epoll_data_t data{};
  bool disabled = false;     // EPOLLONESHOT after it fired, until EPOLL_CTL_MOD
  // Edge-triggered: the readiness last seen and the events that became
  // ready since (a bit going from clear to set, or more bytes to read:
  // Linux wakes an EPOLLET waiter on every arrival), not yet reported.
  std::uint32_t seen = 0, pending = 0;
  std::size_t seen_inq = 0;
};

struct Epoll {
  std::map<int, Interest> interest;  // by descriptor number
};

struct Waiter {
  std::uint64_t seen_gen;             // the stack generation of its last attempt
  std::optional<Instant> deadline;    // poll's timeout
};

struct Sent {
  std::vector<std::uint8_t> bytes;
  long long usecs;
};

class Adapter {
 public:
  explicit Adapter(const Flags& f)
      : stack_(stack_config(f)), now_(instant_from_micros(f.start_usecs)) {}

  // ---- socket calls: each returns the result or -errno.
  int socket(int domain, int type, int protocol);
  int bind(int fd, const sockaddr* addr, socklen_t len);
  int listen(int fd, int backlog);
  int accept(int fd, sockaddr* addr, socklen_t* len);
  int connect(int fd, const sockaddr* addr, socklen_t len);
  // buf null with n > 0: EFAULT once the call would copy bytes, as Linux
  // (its access_ok() passes a null pointer; the copy then faults).
  ssize_t recv(int fd, void* buf, std::size_t n, int flags);
  ssize_t recv_iov(int fd, const iovec* iov, int n, int flags);
  ssize_t send(int fd, const void* data, std::size_t n, int flags);
  ssize_t send_iov(int fd, const iovec* iov, int n, int flags);
  int fcntl(int fd, int cmd, int arg);
  int close(int fd);
  int shutdown(int fd, int how);
  int getsockopt(int fd, int level, int name, void* val, socklen_t* len);
  int setsockopt(int fd, int level, int name, const void* val, socklen_t len);
  int poll(pollfd* fds, nfds_t n, int timeout_ms);
  int ioctl(int fd, unsigned long request, void* arg);
  // TCP_INQ's hint after a read (tcp_inq_hint): bytes left, 1 at end of
  // stream with none; nullopt when TCP_INQ is off.
  std::optional<int> inq_hint(int fd);
  int epoll_create(int size);
  int epoll_ctl(int epfd, int op, int fd, epoll_event* ev);
  int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout_ms);
  // ---- link and clock
  int netdev_send(const void* buf, std::size_t count);
  int netdev_receive(void* buf, std::size_t* count, long long* time_usecs);
  int usleep(useconds_t us);
  int gettimeofday(timeval* tv);

 private:
  using Lock = std::unique_lock<std::mutex>;
  TcpLayer& tcp() { return stack_.tcp(); }
  // The socket behind fd (nullptr for none, or an epoll descriptor).
  Fd* find(int fd) {
    Fd* f = find_any(fd);
    return f && f->kind == Fd::Kind::socket ? f : nullptr;
  }
  Fd* find_any(int fd) {
    auto it = fds_.find(fd);
    return it == fds_.end() ? nullptr : &it->second;
  }
  // The error for a socket call on fd when find() failed: ENOTSOCK for an
  // epoll descriptor, else EBADF.
  int bad(int fd) { return find_any(fd) ? -ENOTSOCK : -EBADF; }
  // Epoll: edge-triggered bookkeeping after the stack changed, and the
  // ready list of one instance (nullopt: nothing ready).
  void track_edges();
  int collect(Epoll& ep, epoll_event* out, int max);
  int add_fd(Fd f);
  // After anything that may have changed the stack: run what is due now,
  // queue what it sent, wake blocked calls.
  void pump();
  std::optional<Instant> next_deadline() const;
  void advance_to(Lock& lk, Instant target);
  void settle_waiters(Lock& lk);
  bool is_clock_thread() const { return clock_thread_ == std::this_thread::get_id(); }
  void note_clock_thread() { clock_thread_ = std::this_thread::get_id(); }
  // Runs attempt() (returns std::optional<R>; nullopt = would block) until
  // it has a result; see the file comment. `blocked` is returned when the
  // call can never finish.
  template <class R, class F>
  R block(Lock& lk, std::optional<Instant> deadline, R blocked, F attempt);
  short revents(SocketId id);
  // fault: the caller's buffer is unreadable (null): the call fails with
  // EFAULT where Linux's copy would, after the state checks and waits.
  ssize_t recv_locked(Lock& lk, int fd, std::span<std::uint8_t> buf, int flags, bool fault = false);
  ssize_t send_locked(Lock& lk, int fd, std::span<const std::uint8_t> data, int flags, bool fault = false);

  std::mutex mu_;
  std::condition_variable cv_;       // blocked calls: the stack changed
  std::condition_variable idle_cv_;  // the clock mover: a blocked call has retried
  Stack stack_;
  Instant now_;
  std::uint64_t gen_ = 0;
  std::deque<Sent> out_;
  std::map<int, Fd> fds_;
  std::map<std::uint64_t, Epoll> epolls_;  // by the epoll descriptor's serial
  std::uint64_t next_serial_ = 1;
  std::vector<Waiter*> waiters_;
  std::thread::id clock_thread_{};
  std::optional<std::thread::id> returning_;  // finished a blocked call, has not read the clock since
};

int Adapter::add_fd(Fd f) {
  int n = 3;
  for (const auto& [k, v] : fds_) {  // ordered: the first gap is the lowest free number
    if (k != n) break;
    ++n;
  }
  if (f.kind == Fd::Kind::epoll) f.serial = next_serial_++;
  fds_.emplace(n, f);
  return n;
}

void Adapter::pump() {
  stack_.poll(now_);
  const long long us = to_micros(now_);
  stack_.drain([&](std::span<const std::uint8_t> p) {
    if (!p.empty()) out_.push_back(Sent{{p.begin(), p.end()}, us});
  });
  track_edges();
  ++gen_;
  cv_.notify_all();
}

std::optional<Instant> Adapter::next_deadline() const {
  auto d = stack_.next_deadline();
  for (const Waiter* w : waiters_)
    if (w->deadline && *w->deadline > now_ && (!d || *w->deadline < *d)) d = w->deadline;
  return d;
}

void Adapter::settle_waiters(Lock& lk) {
  // A blocked call wakes on cv_, retries, records gen_ and signals idle_cv_.
  // One that has just finished is waited for until its thread reads the
  // clock (packetdrill's end_syscall() does so at once), so that the call
  // is timed at the instant it finished, not after the clock moved on.
  // The real-time bound only guards against a thread that never comes back;
  // nothing moves virtual time while we wait.
  const auto me = std::this_thread::get_id();
  const auto stale = [&] {
    return std::any_of(waiters_.begin(), waiters_.end(), [&](const Waiter* w) { return w->seen_gen != gen_; });
  };
  const auto away = [&] { return returning_ && *returning_ != me; };
  if (stale()) idle_cv_.wait_for(lk, std::chrono::seconds(10), [&] { return !stale(); });
  if (away() && !idle_cv_.wait_for(lk, std::chrono::seconds(2), [&] { return !away() && !stale(); }))
    returning_.reset();
}

void Adapter::advance_to(Lock& lk, Instant target) {
  int same_instant = 0;
  for (;;) {
    settle_waiters(lk);
    const auto d = next_deadline();
    if (!d || *d > target) break;
    if (*d <= now_) {
      // Work the timer heap deferred (its per-poll budget) or loopback: run
      // it at this instant, but never spin here forever.
      if (++same_instant > 1000) break;
    } else {
      same_instant = 0;
      now_ = *d;
    }
    pump();
  }
  if (target > now_) now_ = target;
  pump();
  settle_waiters(lk);
}

template <class R, class F>
R Adapter::block(Lock& lk, std::optional<Instant> deadline, R blocked, F attempt) {
  if (is_clock_thread()) {
    // The thread that moves the clock is blocking: nobody else will, so the
    // call moves it itself, from deadline to deadline, as a kernel's timers
    // would run while the caller sleeps.
    for (;;) {
      if (auto r = attempt()) return *r;
      auto d = next_deadline();
      if (deadline && *deadline > now_ && (!d || *deadline < *d)) d = deadline;
      if (!d) {
        std::fprintf(stderr, "weft_packetdrill: a blocking call on the clock thread can never finish\n");
        return blocked;
      }
      advance_to(lk, std::max(*d, now_ + Duration{1}));
    }
  }
  const auto me = std::this_thread::get_id();
  if (returning_ == me) returning_.reset();
  if (auto r = attempt()) return *r;
  Waiter w{gen_, deadline};
  waiters_.push_back(&w);
  std::optional<R> r;
  for (;;) {
    idle_cv_.notify_all();
    cv_.wait(lk, [&] { return gen_ != w.seen_gen; });
    r = attempt();
    w.seen_gen = gen_;  // after the attempt: it may have changed the stack itself
    if (r) break;
  }
  waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &w));
  returning_ = me;
  idle_cv_.notify_all();
  return *r;
}

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
  if (int e = to_endpoint(addr, len, ep)) return e;
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
    from_endpoint(r->peer, addr, len);
    return add_fd(c);
  };
  return block<int>(lk, std::nullopt, -EAGAIN, attempt);
}

int Adapter::connect(int fd, const sockaddr* addr, socklen_t len) {
  Lock lk(mu_);
  Fd* f = find(fd);
  if (!f) return bad(fd);
  Endpoint ep;
  if (int e = to_endpoint(addr, len, ep)) return e;
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
  if (flags & MSG_OOB) return -EINVAL;        // no urgent data is ever kept
  if (flags & MSG_ERRQUEUE) return -EAGAIN;   // the error queue is always empty
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
    case F_GETFL: return O_RDWR | (f->nonblock ? O_NONBLOCK : 0);
    case F_SETFL: f->nonblock = (arg & O_NONBLOCK) != 0; return 0;
    case F_GETFD: return f->cloexec ? FD_CLOEXEC : 0;
    case F_SETFD: f->cloexec = (arg & FD_CLOEXEC) != 0; return 0;
    default: return -EINVAL;
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
    case SHUT_RD: s = Shutdown::read; break;
    case SHUT_WR: s = Shutdown::write; break;
    case SHUT_RDWR: s = Shutdown::both; break;
    default: return -EINVAL;
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
  if (i->state == tcp::TcpState::listen &&
      (request == SIOCINQ || request == SIOCOUTQ || request == SIOCOUTQNSD))
    return -EINVAL;
  const bool opening = i->state == tcp::TcpState::syn_sent || i->state == tcp::TcpState::syn_received;
  int v;
  switch (request) {
    case SIOCINQ: v = opening ? 0 : static_cast<int>(tcp().readable(f->id)); break;          // = FIONREAD
    case SIOCOUTQ: v = opening ? 0 : static_cast<int>(i->send_queue); break;                // not yet acknowledged
    case SIOCOUTQNSD: v = opening ? 0 : static_cast<int>(i->unsent); break;                  // not yet sent
    default: return -ENOTTY;  // Linux: -ENOIOCTLCMD from tcp_ioctl
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
      case tcp::TcpState::time_wait: m |= POLLRDHUP; break;
      default: break;
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

// ------------------------------------------------------------------ epoll
// epoll(7) over the same readiness as poll: level-triggered by default;
// EPOLLET reports an event once per edge (see Interest); EPOLLONESHOT
// disables the descriptor after one report until EPOLL_CTL_MOD. Nested
// epoll descriptors are not offered (EINVAL).

int Adapter::epoll_create(int size) {
  Lock lk(mu_);
  if (size <= 0) return -EINVAL;  // epoll_create(2)
  Fd f;
  f.kind = Fd::Kind::epoll;
  const int n = add_fd(f);
  epolls_[fds_[n].serial];
  return n;
}

void Adapter::track_edges() {
  for (auto& [serial, ep] : epolls_) {
    for (auto& [fd, in] : ep.interest) {
      const Fd* f = find(fd);
      if (!f || !(in.events & EPOLLET)) continue;
      const std::uint32_t cur = static_cast<std::uint16_t>(revents(f->id));
      const std::size_t inq = tcp().readable(f->id);
      std::uint32_t fresh = cur & ~in.seen;
      if (inq > in.seen_inq) fresh |= cur & EPOLLIN;
      in.pending |= fresh;
      in.seen = cur;
      in.seen_inq = inq;
    }
  }
}

int Adapter::epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
  Lock lk(mu_);
  Fd* e = find_any(epfd);
  Fd* t = find_any(fd);
  if (!e || !t) return -EBADF;
  if (e->kind != Fd::Kind::epoll || epfd == fd || t->kind != Fd::Kind::socket) return -EINVAL;
  if (op != EPOLL_CTL_DEL && !ev) return -EFAULT;
  auto& set = epolls_[e->serial].interest;
  const auto it = set.find(fd);
  switch (op) {
    case EPOLL_CTL_ADD:
      if (it != set.end()) return -EEXIST;
      set[fd] = Interest{ev->events, ev->data};
      break;
    case EPOLL_CTL_MOD:
      if (it == set.end()) return -ENOENT;
      // Linux re-polls the descriptor on MOD: what is ready now is an edge.
      it->second = Interest{ev->events, ev->data};
      break;
    case EPOLL_CTL_DEL:
      if (it == set.end()) return -ENOENT;
      set.erase(it);
      return 0;
    default: return -EINVAL;
  }
  track_edges();
  return 0;
}

int Adapter::collect(Epoll& ep, epoll_event* out, int max) {
  int n = 0;
  for (auto& [fd, in] : ep.interest) {
    if (n == max) break;
    const Fd* f = find(fd);
    if (!f || in.disabled) continue;
    // EPOLLERR and EPOLLHUP are reported whether asked for or not (epoll_ctl(2)).
    std::uint32_t m = static_cast<std::uint16_t>(revents(f->id)) & (in.events | EPOLLERR | EPOLLHUP);
    if (in.events & EPOLLET) {
      m &= in.pending;
      in.pending &= ~m;
    }
    if (!m) continue;
    if (in.events & EPOLLONESHOT) in.disabled = true;
    out[n].events = m;
    out[n].data = in.data;
    ++n;
  }
  return n;
}

int Adapter::epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout_ms) {
  Lock lk(mu_);
  const Fd* e = find_any(epfd);
  if (!e) return -EBADF;
  if (e->kind != Fd::Kind::epoll || maxevents <= 0) return -EINVAL;
  if (!events) return -EFAULT;
  const std::uint64_t serial = e->serial;
  const std::optional<Instant> deadline =
      timeout_ms > 0 ? std::optional<Instant>(now_ + std::chrono::milliseconds{timeout_ms}) : std::nullopt;
  auto attempt = [&]() -> std::optional<int> {
    const auto it = epolls_.find(serial);
    if (it == epolls_.end()) return -EBADF;  // closed while we waited
    const int n = collect(it->second, events, maxevents);
    if (n > 0 || timeout_ms == 0 || (deadline && now_ >= *deadline)) return n;
    return std::nullopt;
  };
  return block<int>(lk, deadline, 0, attempt);
}

// ---------------------------------------------------------- link and clock

int Adapter::netdev_send(const void* buf, std::size_t count) {
  Lock lk(mu_);
  note_clock_thread();
  if (!buf || count == 0 || count > 65535) return -EINVAL;
  const auto* p = static_cast<const std::uint8_t*>(buf);
  if ((p[0] >> 4) != 4) return -EAFNOSUPPORT;  // IPv4 only
  settle_waiters(lk);
  stack_.receive({p, count}, now_);
  pump();
  settle_waiters(lk);  // a call it unblocks finishes at this instant
  return 0;
}

int Adapter::netdev_receive(void* buf, std::size_t* count, long long* time_usecs) {
  Lock lk(mu_);
  note_clock_thread();
  if (!buf || !count || !time_usecs) return -EFAULT;
  if (*count == 0) return -EINVAL;  // never hand out an empty packet
  for (;;) {
    settle_waiters(lk);  // a call finishing now may send
    if (!out_.empty()) {
      Sent s = std::move(out_.front());
      out_.pop_front();
      const std::size_t n = std::min(*count, s.bytes.size());
      std::memcpy(buf, s.bytes.data(), n);
      *count = n;
      *time_usecs = s.usecs;
      return 0;
    }
    // Nothing sent yet: move the clock to when something may happen. With
    // no deadline at all, step a second at a time and let other threads in.
    const auto d = next_deadline();
    advance_to(lk, d ? std::max(*d, now_ + Duration{1}) : now_ + std::chrono::seconds{1});
    if (!d && out_.empty()) {
      lk.unlock();
      std::this_thread::yield();
      lk.lock();
    }
  }
}

int Adapter::usleep(useconds_t us) {
  Lock lk(mu_);
  // Only claims the clock when nobody has: see the file comment.
  if (clock_thread_ == std::thread::id{}) note_clock_thread();
  advance_to(lk, now_ + std::chrono::microseconds{us});
  return 0;
}

int Adapter::gettimeofday(timeval* tv) {
  Lock lk(mu_);
  // The tool's main thread reads the clock first (to schedule the start).
  if (clock_thread_ == std::thread::id{}) note_clock_thread();
  if (returning_ == std::this_thread::get_id()) {
    returning_.reset();
    idle_cv_.notify_all();
  }
  if (tv) {
    const long long us = to_micros(now_);
    tv->tv_sec = static_cast<time_t>(us / 1'000'000);
    tv->tv_usec = static_cast<suseconds_t>(us % 1'000'000);
  }
  // The tool spins on the clock until an event's time: every reading moves it.
  advance_to(lk, now_ + std::chrono::microseconds{1});
  return 0;
}

// ------------------------------------------------------------ trampolines

Adapter* A(void* u) { return static_cast<Adapter*>(u); }

template <class T>
T ret(T r) {
  if (r < 0) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return r;
}

int unsupported() {
  errno = ENOSYS;
  return -1;
}

void pd_free(void* u) { delete A(u); }
int pd_socket(void* u, int d, int t, int p) { return ret(A(u)->socket(d, t, p)); }
int pd_bind(void* u, int fd, const sockaddr* a, socklen_t l) { return ret(A(u)->bind(fd, a, l)); }
int pd_listen(void* u, int fd, int b) { return ret(A(u)->listen(fd, b)); }
int pd_accept(void* u, int fd, sockaddr* a, socklen_t* l) { return ret(A(u)->accept(fd, a, l)); }
int pd_connect(void* u, int fd, const sockaddr* a, socklen_t l) { return ret(A(u)->connect(fd, a, l)); }
ssize_t pd_read(void* u, int fd, void* b, size_t n) {
  return ret(A(u)->recv(fd, b, n, 0));
}
ssize_t pd_readv(void* u, int fd, const iovec* v, int n) { return ret(A(u)->recv_iov(fd, v, n, 0)); }
ssize_t pd_recv(void* u, int fd, void* b, size_t n, int fl) {
  return ret(A(u)->recv(fd, b, n, fl));
}
ssize_t pd_recvfrom(void* u, int fd, void* b, size_t n, int fl, sockaddr*, socklen_t* al) {
  const ssize_t r = ret(A(u)->recv(fd, b, n, fl));
  if (r >= 0 && al) *al = 0;  // TCP reports no source address (as Linux)
  return r;
}
ssize_t pd_recvmsg(void* u, int fd, msghdr* m, int fl) {
  if (!m) return ret<ssize_t>(-EFAULT);
  const ssize_t r = ret(A(u)->recv_iov(fd, m->msg_iov, static_cast<int>(m->msg_iovlen), fl));
  if (r >= 0) {
    m->msg_namelen = 0;
    m->msg_flags = 0;
    std::size_t used = 0;
    if (const auto inq = A(u)->inq_hint(fd)) {
      // TCP_INQ: a TCP_CM_INQ control message with the bytes left
      // (tcp_recvmsg's put_cmsg); MSG_CTRUNC when it does not fit.
      if (m->msg_control && m->msg_controllen >= CMSG_SPACE(sizeof(int))) {
        auto* c = static_cast<cmsghdr*>(m->msg_control);
        c->cmsg_len = CMSG_LEN(sizeof(int));
        c->cmsg_level = SOL_TCP;
        c->cmsg_type = TCP_CM_INQ;
        std::memcpy(CMSG_DATA(c), &*inq, sizeof(int));
        used = CMSG_SPACE(sizeof(int));
      } else {
        m->msg_flags |= MSG_CTRUNC;
      }
    }
    m->msg_controllen = used;
  }
  return r;
}
ssize_t pd_write(void* u, int fd, const void* b, size_t n) {
  return ret(A(u)->send(fd, b, n, 0));
}
ssize_t pd_writev(void* u, int fd, const iovec* v, int n) { return ret(A(u)->send_iov(fd, v, n, 0)); }
ssize_t pd_send(void* u, int fd, const void* b, size_t n, int fl) {
  return ret(A(u)->send(fd, b, n, fl));
}
ssize_t pd_sendto(void* u, int fd, const void* b, size_t n, int fl, const sockaddr*, socklen_t) {
  // A connected TCP socket ignores the address, as Linux does.
  return ret(A(u)->send(fd, b, n, fl));
}
ssize_t pd_sendmsg(void* u, int fd, const msghdr* m, int fl) {
  if (!m) return ret<ssize_t>(-EFAULT);
  return ret(A(u)->send_iov(fd, m->msg_iov, static_cast<int>(m->msg_iovlen), fl));
}
int pd_fcntl(void* u, int fd, int cmd, ...) {
  int arg = 0;
  if (cmd == F_SETFL || cmd == F_SETFD) {
    va_list ap;
    va_start(ap, cmd);
    arg = va_arg(ap, int);
    va_end(ap);
  }
  return ret(A(u)->fcntl(fd, cmd, arg));
}
int pd_ioctl(void* u, int fd, unsigned long request, ...) {
  // Every request answered here takes a pointer (packetdrill's three-
  // argument form); the two-argument form passes none, and none is read
  // for a request that is refused first.
  void* arg = nullptr;
  if (request == FIONBIO || request == SIOCINQ || request == SIOCOUTQ || request == SIOCOUTQNSD) {
    va_list ap;
    va_start(ap, request);
    arg = va_arg(ap, void*);
    va_end(ap);
  }
  return ret(A(u)->ioctl(fd, request, arg));
}
int pd_close(void* u, int fd) { return ret(A(u)->close(fd)); }
int pd_shutdown(void* u, int fd, int how) { return ret(A(u)->shutdown(fd, how)); }
int pd_getsockopt(void* u, int fd, int lv, int nm, void* v, socklen_t* l) { return ret(A(u)->getsockopt(fd, lv, nm, v, l)); }
int pd_setsockopt(void* u, int fd, int lv, int nm, const void* v, socklen_t l) {
  return ret(A(u)->setsockopt(fd, lv, nm, v, l));
}
int pd_poll(void* u, pollfd* f, nfds_t n, int t) { return ret(A(u)->poll(f, n, t)); }
int pd_netdev_send(void* u, const void* b, size_t n) { return ret(A(u)->netdev_send(b, n)); }
int pd_netdev_receive(void* u, void* b, size_t* n, long long* t) { return ret(A(u)->netdev_receive(b, n, t)); }
int pd_usleep(void* u, useconds_t us) { return ret(A(u)->usleep(us)); }
int pd_gettimeofday(void* u, timeval* tv, struct timezone* tz) {
  if (tz) *tz = {};
  return ret(A(u)->gettimeofday(tv));
}
int pd_epoll_create(void* u, int size) { return ret(A(u)->epoll_create(size)); }
int pd_epoll_ctl(void* u, int epfd, int op, int fd, epoll_event* ev) { return ret(A(u)->epoll_ctl(epfd, op, fd, ev)); }
int pd_epoll_wait(void* u, int epfd, epoll_event* ev, int max, int t) { return ret(A(u)->epoll_wait(epfd, ev, max, t)); }
int pd_pipe(void*, int*) { return unsupported(); }
int pd_splice(void*, int, loff_t*, int, loff_t*, size_t, unsigned int) { return unsupported(); }

}  // namespace
}  // namespace weft::pd

extern "C" WEFT_PD_EXPORT void packetdrill_interface_init(const char* flags, struct packetdrill_interface* ifc) {
  using namespace weft::pd;
  std::string error;
  const auto f = parse_flags(flags, error);
  if (!f) {
    // The tool gives this function no way to fail; it would die on the
    // first call anyway, so say why and stop as packetdrill's die() does.
    std::fprintf(stderr, "weft_packetdrill: bad flags: %s\n", error.c_str());
    std::exit(EXIT_FAILURE);
  }
  *ifc = packetdrill_interface{};
  ifc->userdata = new Adapter(*f);
  ifc->free = pd_free;
  ifc->socket = pd_socket;
  ifc->bind = pd_bind;
  ifc->listen = pd_listen;
  ifc->accept = pd_accept;
  ifc->connect = pd_connect;
  ifc->read = pd_read;
  ifc->readv = pd_readv;
  ifc->recv = pd_recv;
  ifc->recvfrom = pd_recvfrom;
  ifc->recvmsg = pd_recvmsg;
  ifc->write = pd_write;
  ifc->writev = pd_writev;
  ifc->send = pd_send;
  ifc->sendto = pd_sendto;
  ifc->sendmsg = pd_sendmsg;
  ifc->fcntl = pd_fcntl;
  ifc->ioctl = pd_ioctl;
  ifc->close = pd_close;
  ifc->shutdown = pd_shutdown;
  ifc->getsockopt = pd_getsockopt;
  ifc->setsockopt = pd_setsockopt;
  ifc->poll = pd_poll;
  ifc->netdev_send = pd_netdev_send;
  ifc->netdev_receive = pd_netdev_receive;
  ifc->usleep = pd_usleep;
  ifc->gettimeofday = pd_gettimeofday;
  ifc->epoll_create = pd_epoll_create;
  ifc->epoll_ctl = pd_epoll_ctl;
  ifc->epoll_wait = pd_epoll_wait;
  ifc->pipe = pd_pipe;
  ifc->splice = pd_splice;
}
