// The adapter's virtual clock and link: descriptor numbers, pump(), moving
// time from deadline to deadline, and the tool's netdev/usleep/gettimeofday
// calls (see weft_packetdrill.cpp for the threading rules).
#include <chrono>
#include <cstring>

#include "adapter.hpp"

namespace weft::pd {

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

}  // namespace weft::pd
