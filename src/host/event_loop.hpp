// The real-time driver: epoll on the link's descriptor and a signalfd,
// sleeping until the host's next deadline. This and the links are the only
// places that touch the OS.
#pragma once

#include <cstdint>
#include <functional>

#include "base/result.hpp"
#include "host/host.hpp"

namespace weft {

// The monotonic clock, as the core's Instant.
Instant monotonic_now();

struct EventLoopHooks {
  std::function<void()> on_usr1;            // SIGUSR1: print counters
  std::function<void(Instant)> after_step;  // tools driving sockets
  std::function<std::optional<Instant>()> extra_deadline;
  // Checked after each step: true ends the loop as a signal would, for a
  // tool whose work is done (weft perf's embedded client).
  std::function<bool()> stop;
};

// epoll_wait's timeout until the earlier of the host's next deadline and
// hooks.extra_deadline: -1 when there is none, else milliseconds rounded up
// (waking a little late is fine, spinning early is not). Used
// by every EventLoop (run_event_loop and the daemon).
int wait_timeout_ms(const Host& host, const EventLoopHooks& hooks);
// The wait until `deadline`: 0 when due, else milliseconds rounded up,
// never more than kMaxWaitMs whatever the deadline.
inline constexpr std::int64_t kMaxWaitMs = 60'000;
int wait_ms_until(Instant deadline, Instant now);

// Blocks SIGINT, SIGTERM and SIGUSR1 in the calling thread, for the loop's
// signalfd to take later. Call it first thing in a program that announces
// readiness before its loop runs: a SIGTERM sent on the announcement must
// wait for the loop (a clean stop), not kill the process mid-setup with its
// control socket left behind. Threads started afterwards inherit the mask.
// Errors: what sigprocmask reports.
Status block_loop_signals();

// The one loop: an epoll set, the loop's signals through a signalfd, the
// link's descriptor, and a wait until the host's next deadline. Each turn
// steps the host, then waits. run_event_loop uses it bare; the host daemon
// (host/daemon.hpp) adds its own descriptors under keys of its choosing and
// is handed their events.
class EventLoop {
 public:
  // Makes the epoll set; opened() says whether that worked.
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  // Errors: what epoll_create1 reported.
  Status opened() const;

  // Keys at or above kReservedKey are the loop's own (its signalfd, the
  // link); any other comes back to Handlers::on_event.
  static constexpr std::uint64_t kReservedKey = ~std::uint64_t{0} - 15;
  // Watches `fd` for `events` (EPOLLIN, ...). Errors: what epoll_ctl reports.
  Status add(int fd, std::uint32_t events, std::uint64_t key);
  // Changes what `fd` is watched for; a descriptor being torn down may
  // already be gone from the set, which is not an error worth a report.
  void modify(int fd, std::uint32_t events, std::uint64_t key);

  struct Handlers {
    std::function<void(Instant)> on_time;     // the clock, read before each step and after each wait
    std::function<void(Instant)> after_step;  // after host.step(), before hooks.after_step
    std::function<int(int)> timeout;          // the wait in ms (-1: none), shortened to the owner's deadlines
    std::function<void(std::uint64_t key, std::uint32_t events)> on_event;
    std::function<void()> on_stop;  // SIGINT/SIGTERM or hooks.stop: before run returns
  };
  // Runs `host` until SIGINT or SIGTERM, or until hooks.stop says so.
  // Blocks those signals and SIGUSR1 in the calling thread (so call it
  // before starting other threads). Errors: what epoll/signalfd report.
  Status run(Host& host, const EventLoopHooks& hooks, const Handlers& handlers);

 private:
  int ep_ = -1;
  int open_errno_ = 0;
};

// Runs `host` until SIGINT or SIGTERM, or until hooks.stop says so, on an
// EventLoop of its own. Errors: what epoll/signalfd report.
Status run_event_loop(Host& host, const EventLoopHooks& hooks);

}  // namespace weft
