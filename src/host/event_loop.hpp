// The real-time driver: epoll on the link's descriptor and a signalfd,
// sleeping until the host's next deadline. This and the links are the only
// places that touch the OS.
#pragma once

#include <functional>

#include "base/result.hpp"
#include "host/host.hpp"

namespace weft {

// The monotonic clock, as the core's Instant.
Instant monotonic_now();

struct EventLoopHooks {
  std::function<void()> on_usr1;                  // SIGUSR1: print counters
  std::function<void(Instant)> after_step;        // tools driving sockets
  std::function<std::optional<Instant>()> extra_deadline;
  // Checked after each step: true ends the loop as a signal would, for a
  // tool whose work is done (weft perf's embedded client).
  std::function<bool()> stop;
};

// epoll_wait's timeout until the earlier of the host's next deadline and
// hooks.extra_deadline: -1 when there is none, else milliseconds rounded up
// (waking a little late is fine, spinning early is not). Shared by
// run_event_loop and the daemon's loop.
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

// Runs `host` until SIGINT or SIGTERM, or until hooks.stop says so. Blocks
// those signals and SIGUSR1 in the calling thread (so call it before
// starting other threads).
// Errors: what epoll/signalfd report.
Status run_event_loop(Host& host, const EventLoopHooks& hooks);

}  // namespace weft
