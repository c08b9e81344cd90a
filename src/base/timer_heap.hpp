// The stack's timers: one pending deadline per key (a socket, a reassembly
// buffer, an ARP entry...), kept in a heap so that finding what is due never
// scans every socket -- the cost smoltcp's users complain about, where every
// poll walks every socket's timers.
//
// An indexed binary min-heap: the heap holds (deadline, sequence, key), and
// a hash map holds each key's position in the heap. Rescheduling or
// cancelling a key finds it through the map and repairs the heap in place,
// so every operation is O(log n) and the heap never holds stale entries
// (lazy deletion would let tombstones pile up under a socket that re-arms
// its retransmission timer on every ACK).
//
// Timers are data, not callbacks: the owner asks next() for the earliest
// deadline, sleeps until then, and calls expire(now, f) to learn which keys
// are due. Nothing here reads a clock.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/time.hpp"

namespace weft {

// A min-heap of (deadline, key) with O(log n) schedule, reschedule and
// cancel. One pending deadline per key: scheduling a key again replaces its
// deadline. Keys with equal deadlines fire in the order they were
// scheduled; rescheduling counts as scheduling anew (it goes behind keys
// already waiting for the same instant).
//
// Key must be copyable, hashable by Hash and comparable with ==.
template <class Key, class Hash = std::hash<Key>>
class TimerHeap {
 public:
  // How many fires expire() allows beyond the number of keys pending when
  // it started. Keys that f schedules for <= now fire in the same call
  // (e.g. "send the ACK now" armed from a retransmission handler), but a
  // callback that keeps re-arming itself for <= now would otherwise loop
  // forever. Once the budget is spent expire() returns; the keys still due
  // stay in the heap, next() reports a deadline <= now and the caller's
  // next poll fires them. Nothing is lost, only deferred.
  static constexpr std::size_t max_extra_fires = 64;

  // Arms k for `when`, replacing any pending deadline of k.
  void schedule(Key k, Instant when) {
    const std::uint64_t seq = next_seq_++;
    const auto [it, inserted] = pos_.try_emplace(k, heap_.size());
    if (inserted) {
      heap_.push_back(Entry{when, seq, std::move(k)});
      sift_up(heap_.size() - 1);
      return;
    }
    const std::size_t i = it->second;
    heap_[i].when = when;
    heap_[i].seq = seq;
    restore(i);
  }

  // Disarms k; no effect if k has no pending deadline.
  void cancel(const Key& k) {
    const auto it = pos_.find(k);
    if (it == pos_.end()) return;
    const std::size_t i = it->second;
    pos_.erase(it);
    remove_at(i);
  }

  // The earliest pending deadline: when the owner must next call expire().
  std::optional<Instant> next() const {
    if (heap_.empty()) return std::nullopt;
    return heap_.front().when;
  }

  std::optional<Instant> deadline_of(const Key& k) const {
    const auto it = pos_.find(k);
    if (it == pos_.end()) return std::nullopt;
    return heap_[it->second].when;
  }

  // Removes every key whose deadline is <= now, in deadline order (ties in
  // scheduling order), calling f(key) for each; returns how many fired.
  // f may schedule and cancel any key, including the one it was given (the
  // key is already removed when f runs, so f can simply re-arm it). Keys f
  // schedules for <= now fire in this call too, up to a total of
  // size-at-start + max_extra_fires fires; see max_extra_fires. f must not
  // call expire() itself.
  template <class F>
  std::size_t expire(Instant now, F&& f) {
    assert(!expiring_ && "expire() called from inside its own callback");
    // Cleared on every exit, including an exception thrown by f (the heap is
    // consistent then: the key being fired was already removed).
    struct Guard {
      bool& flag;
      ~Guard() { flag = false; }
    } guard{expiring_};
    expiring_ = true;
    const std::size_t budget = heap_.size() + max_extra_fires;
    std::size_t fired = 0;
    while (fired < budget && !heap_.empty() && heap_.front().when <= now) {
      // Remove before calling f, so that f sees a consistent heap and may
      // re-arm the key.
      Key k = pop_front();
      ++fired;
      f(static_cast<const Key&>(k));
    }
    return fired;
  }

  std::size_t size() const { return heap_.size(); }
  bool empty() const { return heap_.empty(); }

 private:
  struct Entry {
    Instant when;
    std::uint64_t seq;  // scheduling order, breaks ties between equal deadlines
    Key key;
  };

  static bool before(const Entry& a, const Entry& b) { return a.when < b.when || (a.when == b.when && a.seq < b.seq); }

  // Places e at heap index i and records the position.
  void put(std::size_t i, Entry&& e) {
    heap_[i] = std::move(e);
    pos_[heap_[i].key] = i;
  }

  void sift_up(std::size_t i) {
    Entry e = std::move(heap_[i]);
    while (i > 0) {
      const std::size_t parent = (i - 1) / 2;
      if (!before(e, heap_[parent])) break;
      put(i, std::move(heap_[parent]));
      i = parent;
    }
    put(i, std::move(e));
  }

  void sift_down(std::size_t i) {
    const std::size_t n = heap_.size();
    Entry e = std::move(heap_[i]);
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && before(heap_[child + 1], heap_[child])) ++child;
      if (!before(heap_[child], e)) break;
      put(i, std::move(heap_[child]));
      i = child;
    }
    put(i, std::move(e));
  }

  // The entry at i changed its (when, seq) or was replaced: move it up or
  // down until the heap property holds again.
  void restore(std::size_t i) {
    if (i > 0 && before(heap_[i], heap_[(i - 1) / 2]))
      sift_up(i);
    else
      sift_down(i);
  }

  // Removes heap_[i], whose key is already gone from pos_, by moving the
  // last entry into its place.
  void remove_at(std::size_t i) {
    const std::size_t last = heap_.size() - 1;
    if (i != last) {
      heap_[i] = std::move(heap_[last]);
      heap_.pop_back();
      restore(i);  // records the moved entry's new position
    } else {
      heap_.pop_back();
    }
  }

  Key pop_front() {
    Key k = std::move(heap_.front().key);
    pos_.erase(k);
    remove_at(0);
    return k;
  }

  std::vector<Entry> heap_;
  std::unordered_map<Key, std::size_t, Hash> pos_;
  std::uint64_t next_seq_ = 0;
  bool expiring_ = false;
};

}  // namespace weft
