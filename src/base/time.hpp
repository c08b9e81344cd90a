// Time as the core sees it: a value passed in, never read.
//
// The core (wire, ip, udp, tcp, stack) never calls a clock. Drivers translate
// their own clock (steady_clock in the event loop, simulated time in tests)
// into CoreClock time points and hand them in. CoreClock deliberately has no
// now(): code that tries to read it does not compile.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>

namespace weft {

struct CoreClock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::duration<rep, period>;
  using time_point = std::chrono::time_point<CoreClock>;
  static constexpr bool is_steady = true;
};

using Duration = CoreClock::duration;
using Instant = CoreClock::time_point;

using namespace std::chrono_literals;

// Microseconds since the core's epoch; what pcap and traces print.
constexpr std::int64_t to_micros(Instant t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

// Deadlines: `t + d` that saturates at the ends of time instead of
// wrapping. Every timer computes its deadline with this, so no value a
// user may set (a socket option, a config) can move a deadline into the
// past or stop a timer (the int64 nanoseconds of Duration hold 292 years).
constexpr Instant deadline_after(Instant t, Duration d) {
  using rep = Duration::rep;
  const rep a = t.time_since_epoch().count(), b = d.count();
  rep r;
  if (__builtin_add_overflow(a, b, &r)) r = b > 0 ? std::numeric_limits<rep>::max() : std::numeric_limits<rep>::min();
  return Instant{Duration{r}};
}

// `a - b`, saturating likewise.
constexpr Duration saturating_sub(Instant a, Instant b) {
  using rep = Duration::rep;
  rep r;
  if (__builtin_sub_overflow(a.time_since_epoch().count(), b.time_since_epoch().count(), &r))
    r = a > b ? std::numeric_limits<rep>::max() : std::numeric_limits<rep>::min();
  return Duration{r};
}

constexpr Instant instant_from_micros(std::int64_t us) {
  return Instant{std::chrono::duration_cast<Duration>(std::chrono::microseconds{us})};
}

}  // namespace weft
