#include "tcp/byte_ring.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace weft::tcp {

ByteRing::ByteRing(std::size_t capacity) : cap_(capacity) {}

void ByteRing::reallocate(std::size_t size, std::size_t n) {
  auto next = std::make_unique_for_overwrite<std::uint8_t[]>(size);
  copy_out(0, next.get(), n);
  buf_ = std::move(next);
  alloc_ = size;
  head_ = 0;
}

void ByteRing::reserve(std::size_t need) {
  if (need <= alloc_) return;
  assert(need <= cap_);
  std::size_t size = std::max(alloc_ * 2, kMinAlloc);
  while (size < need) size *= 2;
  // Everything allocated so far moves: readable bytes and whatever is
  // parked past them for the reassembler.
  reallocate(std::min(size, cap_), alloc_);
}

void ByteRing::copy_in(std::size_t pos, const std::uint8_t* src, std::size_t n) {
  if (n == 0) return;  // memcpy with a null span is undefined even for 0 bytes
  assert(pos + n <= alloc_);
  const std::size_t p = physical(pos);
  const std::size_t first = std::min(n, alloc_ - p);
  std::memcpy(buf_.get() + p, src, first);
  std::memcpy(buf_.get(), src + first, n - first);
}

void ByteRing::copy_out(std::size_t pos, std::uint8_t* dst, std::size_t n) const {
  if (n == 0) return;
  assert(pos + n <= alloc_);
  const std::size_t p = physical(pos);
  const std::size_t first = std::min(n, alloc_ - p);
  std::memcpy(dst, buf_.get() + p, first);
  std::memcpy(dst + first, buf_.get(), n - first);
}

std::size_t ByteRing::write(std::span<const std::uint8_t> data) {
  const std::size_t n = std::min(data.size(), free());
  reserve(len_ + n);
  copy_in(len_, data.data(), n);
  len_ += n;
  return n;
}

std::size_t ByteRing::read(std::span<std::uint8_t> out) {
  const std::size_t n = peek(0, out);
  consume(n);
  return n;
}

std::size_t ByteRing::peek(std::size_t offset, std::span<std::uint8_t> out) const {
  if (offset >= len_) return 0;
  const std::size_t n = std::min(out.size(), len_ - offset);
  copy_out(offset, out.data(), n);
  return n;
}

ReadSpans ByteRing::readable() const {
  if (len_ == 0) return {};
  const std::size_t first = std::min(len_, alloc_ - head_);
  return {{buf_.get() + head_, first}, {buf_.get(), len_ - first}};
}

WriteSpans ByteRing::writable(std::size_t n) {
  n = std::min(n, free());
  if (n == 0) return {};
  reserve(len_ + n);
  const std::size_t p = physical(len_);
  const std::size_t first = std::min(n, alloc_ - p);
  return {{buf_.get() + p, first}, {buf_.get(), n - first}};
}

void ByteRing::consume(std::size_t n) {
  assert(n <= len_);
  n = std::min(n, len_);
  // head_ moves but is never reset to 0 when the ring empties: bytes parked
  // past the end with write_at() must stay where they are.
  head_ = physical(n);
  len_ -= n;
}

void ByteRing::write_at(std::size_t offset_past_end, std::span<const std::uint8_t> data) {
  assert(offset_past_end <= free() && data.size() <= free() - offset_past_end);
  if (offset_past_end >= free()) return;
  const std::size_t n = std::min(data.size(), free() - offset_past_end);
  reserve(len_ + offset_past_end + n);
  copy_in(len_ + offset_past_end, data.data(), n);
}

void ByteRing::commit(std::size_t n) {
  assert(n <= free());
  n = std::min(n, free());
  reserve(len_ + n);  // a no-op when the bytes were written with write_at()
  len_ += n;
}

bool ByteRing::resize(std::size_t new_capacity) {
  if (new_capacity < len_) return false;
  // Storage beyond the new limit is given back, keeping (linearized from
  // head_) the readable bytes and as much parked past them as fits.
  if (alloc_ > new_capacity) reallocate(new_capacity, new_capacity);
  cap_ = new_capacity;
  return true;
}

}  // namespace weft::tcp
