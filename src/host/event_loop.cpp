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

EventLoop::EventLoop() : ep_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (ep_ < 0) open_errno_ = errno;
}

EventLoop::~EventLoop() {
  if (ep_ >= 0) ::close(ep_);
}

Status EventLoop::opened() const {
  if (ep_ < 0) return std::errc{open_errno_};
  return ok_status();
}

Status EventLoop::add(int fd, std::uint32_t events, std::uint64_t key) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = key;
  if (::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) return std::errc{errno};
  return ok_status();
}

void EventLoop::modify(int fd, std::uint32_t events, std::uint64_t key) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = key;
  ::epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
}

namespace {
constexpr std::uint64_t kSignalKey = EventLoop::kReservedKey;
constexpr std::uint64_t kLinkKey = EventLoop::kReservedKey + 1;
}  // namespace

Status EventLoop::run(Host& host, const EventLoopHooks& hooks, const Handlers& h) {
  if (auto st = opened(); !st) return st;
  sigset_t mask = loop_signals();
  if (auto st = block_loop_signals(); !st) return st;
  Fd sfd{signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)};
  if (sfd.fd < 0) return std::errc{errno};
  if (auto st = add(sfd.fd, EPOLLIN, kSignalKey); !st) return st;
  if (int lfd = host.link().poll_fd(); lfd >= 0) {
    // Already there when a loop runs twice (the signalfd went with its close).
    if (auto st = add(lfd, EPOLLIN, kLinkKey); !st && st.error() != std::errc::file_exists) return st;
  }

  epoll_event events[64];
  bool link_readable = true;  // until a poll says otherwise
  for (;;) {
    Instant now = monotonic_now();
    if (h.on_time) h.on_time(now);
    host.step(now, link_readable);
    if (h.after_step) h.after_step(now);
    if (hooks.after_step) hooks.after_step(now);
    if (hooks.stop && hooks.stop()) {
      if (h.on_stop) h.on_stop();
      return ok_status();
    }
    int timeout = wait_timeout_ms(host, hooks);
    if (h.timeout) timeout = h.timeout(timeout);
    int n = epoll_wait(ep_, events, 64, timeout);
    link_readable = n < 0;  // EINTR: nothing known, read
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::errc{errno};
    }
    if (h.on_time) h.on_time(monotonic_now());
    for (int i = 0; i < n; ++i) {
      const std::uint64_t key = events[i].data.u64;
      if (key == kLinkKey) {
        link_readable = true;  // host.step() reads it
      } else if (key == kSignalKey) {
        signalfd_siginfo si;
        while (read(sfd.fd, &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGUSR1) {
            if (hooks.on_usr1) hooks.on_usr1();
          } else {  // SIGINT / SIGTERM: a clean stop
            if (h.on_stop) h.on_stop();
            return ok_status();
          }
        }
      } else if (h.on_event) {
        h.on_event(key, events[i].events);
      }
    }
  }
}

Status run_event_loop(Host& host, const EventLoopHooks& hooks) {
  EventLoop loop;
  return loop.run(host, hooks, {});
}

}  // namespace weft
