// ByteRing: the fixed-capacity byte store behind both TCP buffers.
//
// Send side: the application write()s, the sender peek()s at
// offset = seq - SND.UNA to (re)transmit, and consume()s what the peer
// acknowledges. The front of the ring is SND.UNA: bytes stay until they
// leave the "sent but unacknowledged" part of the send sequence space
// (RFC 9293 §3.3.1), since any of them may have to be sent again. Receive side: in-order and out-of-order segment text
// is parked with write_at() at offset = seq - RCV.NXT, commit() makes it readable once it is contiguous (RFC 9293
// §3.10.7.4 "seventh, process the segment text"), and the application read()s it. The reassembler (reassembly.hpp) only
// tracks which offsets are filled; the bytes live here, so out-of-order data costs no allocation and no second copy.
//
// Capacity is a limit, not an allocation. Storage is allocated when bytes
// first need it and doubles as they need more (from kMinAlloc up to the
// capacity: at most seven times for 256 KiB), so a connection holds about
// as much memory as it has ever had queued, as Linux's skb queues do. A
// connection that moves a few bytes costs 4 KiB a side, not 2 x 256 KiB:
// allocating and releasing those per connection was a quarter of a
// connect/request/response/close cycle (malloc growing and trimming the
// heap, and a page fault per page), a million idle connections would have
// needed 512 GiB, and zeroing them once cost a third of the cycle more.
// Storage is never zeroed and never allocated per segment; bytes are only
// ever read after they were written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace weft::tcp {

// A ring's bytes in place: up to two spans, the second non-empty only when
// the bytes wrap past the end of the storage. Never owns what it shows.
template <class Byte>
struct RingSpans {
  std::span<Byte> first, second;
  std::size_t size() const { return first.size() + second.size(); }
  bool empty() const { return size() == 0; }
};
using ReadSpans = RingSpans<const std::uint8_t>;
using WriteSpans = RingSpans<std::uint8_t>;

class ByteRing {
 public:
  // The smallest storage allocated: a page, more than a full-sized segment.
  static constexpr std::size_t kMinAlloc = 4096;

  // Allocates nothing until the first write.
  explicit ByteRing(std::size_t capacity);

  std::size_t capacity() const { return cap_; }
  // Bytes of storage allocated now (<= capacity()).
  std::size_t allocated() const { return alloc_; }
  // Readable bytes (committed and not yet read or consumed).
  std::size_t size() const { return len_; }
  // Room past the readable bytes: what a receiver may advertise as RCV.WND.
  std::size_t free() const { return cap_ - len_; }
  bool empty() const { return len_ == 0; }

  // Appends up to free() bytes; returns how many were taken.
  std::size_t write(std::span<const std::uint8_t> data);
  // Pops up to out.size() bytes into out; returns how many.
  std::size_t read(std::span<std::uint8_t> out);
  // Copies up to out.size() bytes starting `offset` bytes past the front,
  // without popping; returns how many (0 when offset >= size()).
  std::size_t peek(std::size_t offset, std::span<std::uint8_t> out) const;
  // Drops n bytes from the front (n <= size(); clamped in release builds).
  void consume(std::size_t n);

  // The readable bytes in place, in order (size() of them in all), for a
  // caller that reads them without a copy and then consume()s what it took
  // (smoltcp's recv(|buf| ...)). Valid until the ring is next changed.
  ReadSpans readable() const;
  // Room for up to min(n, free()) bytes past the readable end, in place
  // (allocating storage for them if need be), for a caller that fills them
  // and then commit()s what it filled; the send side's write() without its
  // copy. Whatever is parked past the end is overwritten: not for a ring
  // holding out-of-order text (the receive ring). Valid until the ring is
  // next changed.
  WriteSpans writable(std::size_t n);

  // Writes `data` starting `offset_past_end` bytes past the readable end
  // without making it readable, for out-of-order text parked in place.
  // Precondition: offset_past_end + data.size() <= free(); in release builds
  // whatever does not fit is discarded.
  void write_at(std::size_t offset_past_end, std::span<const std::uint8_t> data);
  // Makes the next n bytes past the end readable (n <= free(); clamped in
  // release builds). They must have been written with write_at() or
  // through writable().
  void commit(std::size_t n);

  // Changes the capacity, keeping the readable bytes and, as far as they
  // fit, parked bytes past the end. Returns false (and changes nothing) if
  // new_capacity < size(). Allocates only when shrinking below what is
  // allocated; growing only raises the limit.
  bool resize(std::size_t new_capacity);

 private:
  // Makes allocated() >= need (need <= capacity()), moving the bytes from
  // head_ on, written or parked, to the front of the new storage.
  void reserve(std::size_t need);
  // Moves the first n bytes from head_ on into fresh storage of `size`.
  void reallocate(std::size_t size, std::size_t n);
  // Copies n bytes to/from the ring, `pos` bytes past head_. pos + n <= allocated().
  void copy_in(std::size_t pos, const std::uint8_t* src, std::size_t n);
  void copy_out(std::size_t pos, std::uint8_t* dst, std::size_t n) const;
  // Physical index of the byte `pos` past head_ (pos <= allocated(); pos ==
  // allocated() wraps to head_ itself).
  std::size_t physical(std::size_t pos) const {
    const std::size_t p = head_ + pos;
    return p >= alloc_ ? p - alloc_ : p;
  }

  std::unique_ptr<std::uint8_t[]> buf_;
  std::size_t cap_ = 0;    // the limit: what free() counts from
  std::size_t alloc_ = 0;  // the storage: the ring's modulus
  std::size_t head_ = 0;   // physical index of the first readable byte
  std::size_t len_ = 0;    // readable bytes
};

}  // namespace weft::tcp
