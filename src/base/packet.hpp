// Packet buffers for the hot path: taken from a pool and given back, so that
// in steady state sending and receiving allocate nothing (the vectors keep
// their capacity across uses).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace weft {

using PacketBuf = std::vector<std::uint8_t>;

class PacketPool {
 public:
  explicit PacketPool(std::size_t max_free = 4096) : max_free_(max_free) {}

  // A buffer of exactly `len` bytes (contents unspecified).
  PacketBuf take(std::size_t len) {
    PacketBuf b;
    if (!free_.empty()) {
      b = std::move(free_.back());
      free_.pop_back();
    }
    b.resize(len);
    return b;
  }
  void give(PacketBuf&& b) {
    if (free_.size() < max_free_ && b.capacity() != 0) free_.push_back(std::move(b));
  }
  std::size_t free_count() const { return free_.size(); }

 private:
  std::vector<PacketBuf> free_;
  std::size_t max_free_;
};

// A FIFO of items in a ring that grows by doubling and never shrinks, so a
// queue that has reached its working size stops allocating (std::deque
// allocates and frees blocks as it moves).
template <class T>
class Ring {
 public:
  bool empty() const { return count_ == 0; }
  std::size_t size() const { return count_; }
  T& front() { return slots_[head_]; }
  const T& front() const { return slots_[head_]; }
  void push_back(T&& v) {
    if (count_ == slots_.size()) grow();
    slots_[(head_ + count_) & (slots_.size() - 1)] = std::move(v);
    ++count_;
  }
  T pop_front() {
    T v = std::move(slots_[head_]);
    head_ = (head_ + 1) & (slots_.size() - 1);
    --count_;
    return v;
  }
  // Visits items front to back (read-only).
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < count_; ++i) f(slots_[(head_ + i) & (slots_.size() - 1)]);
  }

 private:
  void grow() {
    std::vector<T> bigger(slots_.empty() ? 16 : slots_.size() * 2);
    for (std::size_t i = 0; i < count_; ++i) bigger[i] = std::move(slots_[(head_ + i) & (slots_.size() - 1)]);
    slots_ = std::move(bigger);
    head_ = 0;
  }
  std::vector<T> slots_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
};

}  // namespace weft
