#include "host/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>

namespace weft {

Instant monotonic_now() {
  return Instant{std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now().time_since_epoch())};
}

namespace {
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace

int wait_timeout_ms(const Host& host, const EventLoopHooks& hooks) {
  auto d = host.next_deadline();
  if (hooks.extra_deadline)
    if (auto e = hooks.extra_deadline(); e && (!d || *e < *d)) d = e;
  if (!d) return -1;
  return wait_ms_until(*d, monotonic_now());
}

int wait_ms_until(Instant deadline, Instant now) {
  if (deadline <= now) return 0;
  // Saturating, then capped: a deadline however far away (or one a bug
  // pushed to the end of time) costs a wakeup a minute, never a wait that
  // overflows into "forever" or into the past.
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(saturating_sub(deadline, now)).count();
  return static_cast<int>(std::min<std::int64_t>(ms, kMaxWaitMs));
}

namespace {
sigset_t loop_signals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGUSR1);
  return mask;
}
}  // namespace

Status block_loop_signals() {
  sigset_t mask = loop_signals();
  if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) return std::errc{errno};
  return ok_status();
}

Status run_event_loop(Host& host, const EventLoopHooks& hooks) {
  sigset_t mask = loop_signals();
  if (auto st = block_loop_signals(); !st) return st;
  Fd sfd{signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)};
  if (sfd.fd < 0) return std::errc{errno};
  Fd ep{epoll_create1(EPOLL_CLOEXEC)};
  if (ep.fd < 0) return std::errc{errno};
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = sfd.fd;
  if (epoll_ctl(ep.fd, EPOLL_CTL_ADD, sfd.fd, &ev) != 0) return std::errc{errno};
  if (int lfd = host.link().poll_fd(); lfd >= 0) {
    ev.data.fd = lfd;
    if (epoll_ctl(ep.fd, EPOLL_CTL_ADD, lfd, &ev) != 0) return std::errc{errno};
  }

  epoll_event events[8];
  bool link_readable = true;  // until a poll says otherwise
  for (;;) {
    Instant now = monotonic_now();
    host.step(now, link_readable);
    if (hooks.after_step) hooks.after_step(now);
    if (hooks.stop && hooks.stop()) return ok_status();

    int n = epoll_wait(ep.fd, events, 8, wait_timeout_ms(host, hooks));
    link_readable = n < 0;  // EINTR: nothing known, read
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::errc{errno};
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd != sfd.fd) {
        link_readable = true;  // the only other descriptor is the link's
        continue;
      }
      signalfd_siginfo si;
      while (read(sfd.fd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGUSR1) {
          if (hooks.on_usr1) hooks.on_usr1();
        } else {
          return ok_status();  // SIGINT / SIGTERM: a clean stop
        }
      }
    }
  }
}

}  // namespace weft
