// The adapter behind libweft_packetdrill.so: its descriptors, its clock and
// the one lock (see weft_packetdrill.cpp for how packetdrill's two threads
// share them). Internal to the library: the calls are split by concern,
// weft_packetdrill.cpp (the trampolines), clock.cpp (virtual time and the
// link), socket_calls.cpp (sockets, options, ioctl, poll) and epoll.cpp.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <thread>
#include <vector>

#include "flags.hpp"
#include "stack/stack.hpp"

namespace weft::pd {

// A std::errc as the adapter's calls return it: -errno.
inline int err(std::errc e) { return -static_cast<int>(e); }

// The bytes an iovec array describes.
inline std::size_t iov_total(const iovec* iov, int n) {
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
  bool disabled = false;  // EPOLLONESHOT after it fired, until EPOLL_CTL_MOD
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
  std::uint64_t seen_gen;           // the stack generation of its last attempt
  std::optional<Instant> deadline;  // poll's timeout
};

struct Sent {
  std::vector<std::uint8_t> bytes;
  long long usecs;
};

class Adapter {
 public:
  explicit Adapter(const Flags& f) : stack_(stack_config(f)), now_(instant_from_micros(f.start_usecs)) {}

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

}  // namespace weft::pd
