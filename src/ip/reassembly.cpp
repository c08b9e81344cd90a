#include "ip/reassembly.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <iterator>
#include <utility>

namespace weft::ip {

namespace {

ReassemblyConfig sanitize(ReassemblyConfig c) {
  // The IPv4 total length is 16 bits: no datagram carries more payload.
  c.max_datagram_bytes = std::min<std::size_t>(c.max_datagram_bytes, 65535);
  // A reassembler that can hold nothing would evict forever.
  c.max_datagrams = std::max<std::size_t>(c.max_datagrams, 1);
  c.max_fragments_per_datagram = std::max<std::size_t>(c.max_fragments_per_datagram, 1);
  return c;
}

}  // namespace

Reassembler::Reassembler(ReassemblyConfig cfg) : cfg_(sanitize(cfg)) {
  // The bucket array is allocated once; the map never rehashes after this.
  map_.reserve(cfg_.max_datagrams);
}

std::optional<std::span<const std::uint8_t>> Reassembler::add(const FragmentInfo& f, Instant now) {
  recycle_completed();
  expire_due(now);
  ++counters_.fragments_in;

  const std::size_t len = f.payload.size();
  const std::size_t begin = f.offset_bytes;
  const std::size_t end = begin + len;

  // RFC 791 §3.1: the offset is in units of 8 octets, so every fragment but
  // the last carries a multiple of 8. A datagram holding a misaligned
  // non-final fragment can only complete through a gap or an overlap, so it
  // is dropped now rather than left to pin memory until its timeout.
  if (begin % 8 != 0 || (f.more_fragments && len % 8 != 0)) {
    drop_key(f.key, Drop::misaligned);
    return std::nullopt;
  }
  // No sender produces an empty fragment; Linux discards the queue too.
  if (len == 0) {
    drop_key(f.key, Drop::empty);
    return std::nullopt;
  }
  if (end > cfg_.max_datagram_bytes) {
    drop_key(f.key, Drop::oversize);
    return std::nullopt;
  }

  std::uint32_t s;
  if (auto it = map_.find(f.key); it != map_.end()) {
    s = it->second;
  } else {
    if (end > cfg_.max_total_bytes) {  // could not fit even alone: evict no one for it
      count(Drop::memory);
      return std::nullopt;
    }
    if (map_.size() >= cfg_.max_datagrams) drop(oldest_, Drop::table_full);
    s = create(f.key, now);
  }
  Slot& d = slots_[s];

  // RFC 791 §3.2: the fragment with MF = 0 fixes the datagram's length. Two
  // final fragments that disagree, or data past the final end, cannot both
  // be right.
  if (!f.more_fragments) {
    if ((d.final_end && *d.final_end != end) || d.buf.size() > end) {
      drop(s, Drop::end_mismatch);
      return std::nullopt;
    }
  } else if (d.final_end && end > *d.final_end) {
    drop(s, Drop::end_mismatch);
    return std::nullopt;
  }

  // Pieces are sorted and disjoint; the new one must fit between its
  // neighbours or be an exact duplicate of one of them.
  auto pos = std::lower_bound(d.pieces.begin(), d.pieces.end(), begin,
                              [](const Piece& p, std::size_t b) { return p.begin < b; });
  if (pos != d.pieces.end() && pos->begin == begin && pos->end == end && pos->more == f.more_fragments &&
      std::memcmp(d.buf.data() + begin, f.payload.data(), len) == 0) {
    ++counters_.duplicate;
    return std::nullopt;
  }
  const bool overlaps_next = pos != d.pieces.end() && pos->begin < end;
  const bool overlaps_prev = pos != d.pieces.begin() && std::prev(pos)->end > begin;
  if (overlaps_next || overlaps_prev) {
    drop(s, Drop::overlap);
    return std::nullopt;
  }

  if (d.pieces.size() >= cfg_.max_fragments_per_datagram) {
    drop(s, Drop::too_many);
    return std::nullopt;
  }

  const std::size_t extra = end > d.buf.size() ? end - d.buf.size() : 0;
  if (!make_room(extra, s)) {
    drop(s, Drop::memory);
    return std::nullopt;
  }

  // Accept the fragment. make_room() evicted only other slots: d and pos
  // are still valid.
  if (extra != 0) {
    d.buf.resize(end);
    bytes_held_ += extra;
  }
  std::memcpy(d.buf.data() + begin, f.payload.data(), len);
  d.pieces.insert(pos, Piece{static_cast<std::uint32_t>(begin), static_cast<std::uint32_t>(end), f.more_fragments});
  d.received += len;
  if (!f.more_fragments) d.final_end = static_cast<std::uint32_t>(end);

  if (!d.final_end || d.received != *d.final_end) return std::nullopt;

  // Complete: disjoint pieces adding up to the length cover every byte.
  ++counters_.reassembled;
  bytes_held_ -= d.buf.size();
  completed_.swap(d.buf);  // completed_ was emptied by recycle_completed()
  release(s);
  return std::span<const std::uint8_t>(completed_);
}

std::size_t Reassembler::expire(Instant now) {
  recycle_completed();
  return expire_due(now);
}

std::optional<Instant> Reassembler::next_deadline() const {
  if (oldest_ == kNone) return std::nullopt;
  return slots_[oldest_].deadline;
}

std::size_t Reassembler::expire_due(Instant now) {
  std::size_t n = 0;
  while (oldest_ != kNone && slots_[oldest_].deadline <= now) {
    drop(oldest_, Drop::timeout);
    ++n;
  }
  return n;
}

std::uint32_t Reassembler::create(const FragmentKey& key, Instant now) {
  std::uint32_t s;
  if (!free_slots_.empty()) {
    s = free_slots_.back();
    free_slots_.pop_back();
  } else {
    s = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
    // Sized so that releasing never allocates: there are at most as many
    // free slots as slots, and as many idle buffers as slots plus the
    // completed one.
    free_slots_.reserve(slots_.size());
    spare_.reserve(slots_.size() + 1);
  }
  Slot& d = slots_[s];
  d.key = key;
  d.deadline = deadline_after(now, cfg_.timeout);
  d.buf = take_buffer();
  d.prev = newest_;
  d.next = kNone;
  if (newest_ != kNone)
    slots_[newest_].next = s;
  else
    oldest_ = s;
  newest_ = s;
  map_.emplace(key, s);
  return s;
}

void Reassembler::count(Drop why) {
  switch (why) {
    case Drop::timeout:
      ++counters_.timed_out;
      return;
    case Drop::overlap:
      ++counters_.overlap_drop;
      return;
    case Drop::oversize:
      ++counters_.oversize_drop;
      return;
    case Drop::misaligned:
      ++counters_.misaligned_drop;
      return;
    case Drop::empty:
      ++counters_.empty_drop;
      return;
    case Drop::end_mismatch:
      ++counters_.end_mismatch;
      return;
    case Drop::too_many:
      ++counters_.too_many_fragments;
      return;
    case Drop::memory:
      ++counters_.memory_drop;
      return;
    case Drop::table_full:
      ++counters_.table_full;
      return;
  }
}

void Reassembler::drop(std::uint32_t s, Drop why) {
  count(why);
  release(s);
}

void Reassembler::drop_key(const FragmentKey& key, Drop why) {
  if (auto it = map_.find(key); it != map_.end())
    drop(it->second, why);
  else
    count(why);  // no datagram yet: only the fragment is dropped
}

void Reassembler::release(std::uint32_t s) {
  Slot& d = slots_[s];
  bytes_held_ -= d.buf.size();
  recycle(std::move(d.buf));
  d.buf = {};        // a moved-from vector is valid but unspecified; make it empty
  d.pieces.clear();  // keeps its capacity for the slot's next datagram
  d.received = 0;
  d.final_end.reset();
  if (d.prev != kNone)
    slots_[d.prev].next = d.next;
  else
    oldest_ = d.next;
  if (d.next != kNone)
    slots_[d.next].prev = d.prev;
  else
    newest_ = d.prev;
  d.prev = d.next = kNone;
  map_.erase(d.key);
  free_slots_.push_back(s);
}

bool Reassembler::make_room(std::size_t extra, std::uint32_t keep) {
  const std::size_t kept = slots_[keep].buf.size();
  if (kept + extra > cfg_.max_total_bytes) return false;
  // Evict oldest first; bytes_held_ > kept here, so another slot holds bytes.
  while (bytes_held_ + extra > cfg_.max_total_bytes) {
    const std::uint32_t victim = oldest_ == keep ? slots_[oldest_].next : oldest_;
    assert(victim != kNone);
    drop(victim, Drop::memory);
  }
  return true;
}

std::vector<std::uint8_t> Reassembler::take_buffer() {
  if (spare_.empty()) return {};
  std::vector<std::uint8_t> b = std::move(spare_.back());
  spare_.pop_back();
  spare_bytes_ -= b.capacity();
  return b;
}

void Reassembler::recycle(std::vector<std::uint8_t> b) {
  const std::size_t cap = b.capacity();
  if (cap == 0 || spare_bytes_ + cap > cfg_.max_spare_bytes) return;  // b is freed here
  b.clear();
  spare_bytes_ += cap;
  spare_.push_back(std::move(b));
}

void Reassembler::recycle_completed() {
  recycle(std::move(completed_));
  completed_ = {};
}

}  // namespace weft::ip
