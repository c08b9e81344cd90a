// The connection index: FourTuple -> Value, the first step of demultiplexing
// an arriving segment (then the listener, by port, in the PortTable). One
// hash lookup, whatever the number of connections: never a scan of sockets.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/siphash.hpp"
#include "wire/types.hpp"

namespace weft {

// Hashes a 4-tuple with SipHash-1-3 under a secret key. The remote half of
// every tuple is chosen by the peer; with an unkeyed or weak hash (such as
// the multiply-xorshift of std::hash<Endpoint>) an attacker could compute
// many tuples that share one home bucket and turn each lookup into a long
// probe (hash flooding; Crosby & Wallach 2003). Without the key the bucket
// of a tuple cannot be predicted. SipHash-2-4 of 12 bytes measured ~23 ns
// (1-3 does fewer rounds), small beside the cache miss a lookup in a large
// table takes anyway.
class FourTupleHash {
 public:
  explicit FourTupleHash(const SipKey& key) : sip_(key) {}

  std::size_t operator()(const FourTuple& t) const noexcept {
    return static_cast<std::size_t>(sip_(word0(t), word1(t)));
  }
  // The same hash, of a tuple already in its stored form (word0, word1).
  std::size_t of_words(std::uint64_t w0, std::uint32_t w1) const noexcept {
    return static_cast<std::size_t>(sip_(w0, w1));
  }

  // The tuple's 12 bytes as two words: local addr, local port, remote port;
  // remote addr. Also the form ConnectionIndex stores and compares.
  static std::uint64_t word0(const FourTuple& t) noexcept {
    return std::uint64_t{t.local.addr.value()} | (std::uint64_t{t.local.port.value()} << 32) |
           (std::uint64_t{t.remote.port.value()} << 48);
  }
  static std::uint32_t word1(const FourTuple& t) noexcept { return t.remote.addr.value(); }

 private:
  SipHash12<1, 3> sip_;
};

// The allocator of the slot array: aligned to the slot (so no slot
// straddles a cache line), and for arrays of 2 MiB or more aligned to 2 MiB
// and marked MADV_HUGEPAGE, so that a table of a million connections is
// mapped by a few dozen TLB entries instead of ~16,000 and a random lookup
// misses the cache but not the TLB. The advice is a hint: with transparent
// huge pages off, or under a sanitizer, the memory is the same, in 4 KiB
// pages.
template <class T>
struct SlotAllocator {
  using value_type = T;
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;

  SlotAllocator() = default;
  template <class U>
  explicit SlotAllocator(const SlotAllocator<U>&) {}

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    void* p = ::operator new (bytes, std::align_val_t{alignment(bytes)});
    if (bytes >= kHugePage) ::madvise(p, bytes, MADV_HUGEPAGE);
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) { ::operator delete (p, std::align_val_t{alignment(n * sizeof(T))}); }
  friend bool operator==(const SlotAllocator&, const SlotAllocator&) { return true; }

 private:
  static std::size_t alignment(std::size_t bytes) { return bytes >= kHugePage ? kHugePage : alignof(T); }
};

// A map from FourTuple to Value (typically a SocketSlot): open addressing with
// linear probing over buckets of four slots, entries stored inline, at most
// half full.
//
// Why not std::unordered_map: in libstdc++ a lookup follows bucket ->
// previous node -> node, three dependent cache misses once the table
// outgrows the cache; here it is one miss into one bucket (measured: 1M
// entries, ~3x faster; see the history of this file). Deletion shifts
// entries back (no tombstones), so lookups never slow down with churn.
//
// Layout. A slot is the tuple as two words (12 bytes) and the Value: 16
// bytes for a 4-byte Value such as SocketSlot, half the 32 of a slot that
// also stored 32 bits of the hash. Four slots make a bucket, aligned to its
// size rounded up to a power of two (at most a cache line), so a SocketSlot
// bucket is exactly one 64-byte cache line. A tuple's home is a bucket
// (hash & bucket mask); a lookup examines the whole home bucket, and only if
// that is full and the tuple is not in it, the next bucket, and so on: a
// "probe" is one bucket, which for 16-byte slots is one cache line, the unit
// a lookup actually waits for. probes_for() counts buckets.
//
// Why buckets rather than a lower load or Robin Hood. Slot-by-slot linear
// probing at load a examines (1 + 1/(1-a))/2 slots per hit (Knuth, TAOCP
// 6.4): 1.5 at a = 1/2, so a table allowed to fill to 1/2 cannot promise
// 1.5, and Robin Hood only narrows the spread around the same mean. A
// lower maximum load costs memory, the opposite of what a million
// connections need. With four slots to a bucket a hit goes past its home
// bucket only when four or more tuples share it or the run of full buckets
// before it spills into it: at load 0.49 about 1.05 buckets per hit and 1.2
// per miss (bench_demux), against 1.5 and 2.5 slots before, and since a
// bucket is a cache line, one miss into DRAM per lookup and one line to
// prefetch (the slot-by-slot table prefetched two, for the runs that
// crossed a line).
//
// Empty slots. With no hash stored, a slot is empty when its two words are
// zero: the all-zero 4-tuple (0.0.0.0:0 <-> 0.0.0.0:0), which is never a
// connection (port 0 and address 0.0.0.0 are not valid endpoints of one). It
// cannot be inserted (insert() asserts, and returns false without
// asserts) and is never found. The price of not storing the hash: growing
// and erasing hash the entries they move again (SipHash-1-3, tens of ns).
//
// Load: at most 1/2 of the slots, so a bucket holds two entries on average;
// misses matter as much as hits, as every SYN and every spoofed segment is
// one.
//
// At scale a lookup is one DRAM miss. find() pays it in full; find_batch()
// hashes keys ahead and prefetches their home buckets, so the misses of a
// burst of segments overlap (see bench/demux.cpp).
//
// Contract: a pointer from find() or find_batch() is valid until the next
// insert() or erase(); both may move entries. Value must be
// default-constructible and move-assignable (empty slots hold a default
// Value).
template <class Value>
class ConnectionIndex {
  static_assert(std::is_default_constructible_v<Value> && std::is_move_assignable_v<Value>);

 public:
  explicit ConnectionIndex(const SipKey& secret) : hash_(secret) {}

  // Adds t -> v. False, and the index unchanged, if t is already present.
  // t must not be the all-zero tuple (the empty-slot mark; see above).
  bool insert(const FourTuple& t, Value v) {
    const std::uint64_t k0 = FourTupleHash::word0(t);
    const std::uint32_t k1 = FourTupleHash::word1(t);
    assert(!is_reserved(k0, k1) && "ConnectionIndex: the all-zero 4-tuple marks empty slots");
    if (is_reserved(k0, k1)) return false;
    const std::size_t h = hash_.of_words(k0, k1);
    if (slot_of(k0, k1, h) != nullptr) return false;
    if ((size_ + 1) * kLoadDen > slot_count() * kLoadNum) grow(buckets_.empty() ? kMinSlots : slot_count() * 2);
    Slot& s = *free_slot_from(h & bucket_mask());
    s.k0 = k0;
    s.k1 = k1;
    s.value = std::move(v);
    ++size_;
    return true;
  }

  // Removes t. False if it was not present.
  bool erase(const FourTuple& t) {
    const std::uint64_t k0 = FourTupleHash::word0(t);
    const std::uint32_t k1 = FourTupleHash::word1(t);
    Slot* hole = slot_of(k0, k1, hash_.of_words(k0, k1));
    if (hole == nullptr) return false;
    // Backward shift, by bucket. Invariant: an entry outside its home
    // bucket has every bucket from its home up to its own full. The hole
    // in bucket hb breaks it for entries after hb whose home is at or
    // before hb (cyclically); one of them, if any, moves into the hole,
    // which moves on to its bucket. A bucket that had an empty slot ends
    // the walk: no entry beyond it can have been placed past it.
    const std::size_t mask = bucket_mask();
    std::size_t hb = bucket_index(hole);
    for (std::size_t j = (hb + 1) & mask;; j = (j + 1) & mask) {
      Slot* movable = nullptr;
      bool had_empty = false;
      for (Slot& s : buckets_[j].slots) {
        if (s.empty()) {
          had_empty = true;
        } else if (movable == nullptr) {
          const std::size_t home = hash_.of_words(s.k0, s.k1) & mask;
          if (((j - home) & mask) >= ((j - hb) & mask)) movable = &s;
        }
      }
      if (movable != nullptr) {
        *hole = std::move(*movable);
        hole = movable;
        hb = j;
      }
      if (had_empty) break;
    }
    hole->k0 = 0;
    hole->k1 = 0;
    hole->value = Value{};  // release what the value holds now
    --size_;
    return true;
  }

  // The value for t, or nullptr.
  Value* find(const FourTuple& t) {
    const std::uint64_t k0 = FourTupleHash::word0(t);
    const std::uint32_t k1 = FourTupleHash::word1(t);
    Slot* s = slot_of(k0, k1, hash_.of_words(k0, k1));
    return s == nullptr ? nullptr : &s->value;
  }
  const Value* find(const FourTuple& t) const { return const_cast<ConnectionIndex*>(this)->find(t); }

  // find() for a burst of keys: out[i] = find(keys[i]) for each i < keys.size()
  // (out must be at least as long). The receive path's form: the hash of
  // key i + kAhead is computed and its home bucket prefetched before key i
  // is resolved, so up to kAhead cache misses are in flight at once instead
  // of one.
  void find_batch(std::span<const FourTuple> keys, std::span<Value*> out) {
    const std::size_t n = keys.size();
    if (buckets_.empty()) {
      for (std::size_t i = 0; i < n; ++i) out[i] = nullptr;
      return;
    }
    const std::size_t mask = bucket_mask();
    std::array<std::size_t, kAhead> ahead;  // home buckets of keys i .. i + kAhead - 1, by index mod kAhead
    for (std::size_t i = 0; i < n && i < kAhead; ++i) {
      ahead[i] = hash_(keys[i]) & mask;
      __builtin_prefetch(&buckets_[ahead[i]]);
    }
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t b = ahead[i % kAhead];
      if (i + kAhead < n) {
        const std::size_t next = hash_(keys[i + kAhead]) & mask;
        ahead[i % kAhead] = next;
        __builtin_prefetch(&buckets_[next]);
      }
      Slot* s = slot_in(FourTupleHash::word0(keys[i]), FourTupleHash::word1(keys[i]), b);
      out[i] = s == nullptr ? nullptr : &s->value;
    }
  }

  // How many buckets find(t) examines (for a SocketSlot index, cache lines),
  // counting the bucket with an empty slot that ends a miss: the measure of
  // probe length the benchmark reports. Not for the data path (it hashes
  // again).
  std::size_t probes_for(const FourTuple& t) const {
    if (buckets_.empty()) return 0;
    const std::uint64_t k0 = FourTupleHash::word0(t);
    const std::uint32_t k1 = FourTupleHash::word1(t);
    const std::size_t mask = bucket_mask();
    std::size_t n = 1;
    for (std::size_t b = hash_.of_words(k0, k1) & mask;; b = (b + 1) & mask, ++n) {
      bool has_empty = false;
      for (const Slot& s : buckets_[b].slots) {
        if (s.k0 == k0 && s.k1 == k1 && !is_reserved(k0, k1)) return n;
        has_empty |= s.empty();
      }
      if (has_empty) return n;
    }
  }

  std::size_t size() const { return size_; }
  // The number of slots (a power of two, or 0); size() / slot_count() is the load.
  std::size_t slot_count() const { return buckets_.size() * kBucketSlots; }
  bool empty() const { return size_ == 0; }
  // The bytes of the slot array (what the index holds beyond the object).
  std::size_t memory_bytes() const { return buckets_.size() * sizeof(Bucket); }

  // Makes room for n entries without growing again.
  void reserve(std::size_t n) {
    std::size_t want = kMinSlots;
    while (n * kLoadDen > want * kLoadNum) want *= 2;
    if (want > slot_count()) grow(want);
  }

  // Calls f(const FourTuple&, const Value&) for each entry, in no particular
  // order. The index must not be modified during the walk.
  template <class F>
  void for_each(F&& f) const {
    for (const Bucket& b : buckets_) {
      for (const Slot& s : b.slots) {
        if (s.empty()) continue;
        const FourTuple t{{Ipv4Addr(static_cast<std::uint32_t>(s.k0)), Port(static_cast<std::uint16_t>(s.k0 >> 32))},
                          {Ipv4Addr(s.k1), Port(static_cast<std::uint16_t>(s.k0 >> 48))}};
        f(t, s.value);
      }
    }
  }

  // Keys hashed ahead by find_batch(): enough misses in flight to cover a
  // DRAM latency, fewer than the core's miss buffers (~24 on x86 cores).
  static constexpr std::size_t kAhead = 16;

 private:
  struct Slot {
    std::uint64_t k0 = 0;  // FourTupleHash::word0; with k1, 0 marks an empty slot
    std::uint32_t k1 = 0;  // FourTupleHash::word1
    Value value{};
    bool empty() const { return (k0 | k1) == 0; }
  };
  static constexpr std::size_t kBucketSlots = 4;
  static constexpr std::size_t kBucketBytes = kBucketSlots * sizeof(Slot);
  // A power of two no smaller than the bucket, up to a cache line: a
  // SocketSlot bucket (4 x 16 bytes) is one whole line.
  static constexpr std::size_t kBucketAlign =
      std::max(alignof(Slot), kBucketBytes <= 64 ? std::bit_ceil(kBucketBytes) : std::size_t{64});
  struct alignas(kBucketAlign) Bucket {
    std::array<Slot, kBucketSlots> slots{};
  };
  static_assert(!std::is_same_v<Value, std::uint32_t> || sizeof(Bucket) == 64,
                "a bucket of 4-byte values is one cache line");
  static constexpr std::size_t kMinSlots = 16;              // 4 buckets
  static constexpr std::size_t kLoadNum = 1, kLoadDen = 2;  // the maximum load, of slots

  static bool is_reserved(std::uint64_t k0, std::uint32_t k1) { return (k0 | k1) == 0; }

  std::size_t bucket_mask() const { return buckets_.size() - 1; }
  std::size_t bucket_index(const Slot* s) const {
    return static_cast<std::size_t>(reinterpret_cast<const char*>(s) - reinterpret_cast<const char*>(buckets_.data())) /
           sizeof(Bucket);
  }

  // The slot holding (k0, k1), searching from bucket b; nullptr if none.
  // The table is not empty. Each bucket is matched without a branch per
  // slot (a bit mask of the matching slots and one of the empty ones): which
  // slot of its bucket a tuple sits in is random, and a branch on each slot
  // mispredicted about once per lookup (measured, 1k entries: 20 ns per
  // batched lookup with the branches, 12-14.5 without).
  Slot* slot_in(std::uint64_t k0, std::uint32_t k1, std::size_t b) {
    if (is_reserved(k0, k1)) return nullptr;  // would match an empty slot
    const std::size_t mask = bucket_mask();
    for (;; b = (b + 1) & mask) {
      Bucket& bucket = buckets_[b];
      unsigned match = 0, empty = 0;
      for (unsigned i = 0; i < kBucketSlots; ++i) {
        const Slot& s = bucket.slots[i];
        match |= static_cast<unsigned>((s.k0 == k0) & (s.k1 == k1)) << i;
        empty |= static_cast<unsigned>(s.empty()) << i;
      }
      if (match != 0) return &bucket.slots[static_cast<std::size_t>(std::countr_zero(match))];
      if (empty != 0) return nullptr;  // load <= 1/2 guarantees such a bucket
    }
  }
  Slot* slot_of(std::uint64_t k0, std::uint32_t k1, std::size_t h) {
    return buckets_.empty() ? nullptr : slot_in(k0, k1, h & bucket_mask());
  }

  // The first empty slot from bucket b on.
  Slot* free_slot_from(std::size_t b) {
    const std::size_t mask = bucket_mask();
    for (;; b = (b + 1) & mask)
      for (Slot& s : buckets_[b].slots)
        if (s.empty()) return &s;
  }

  // n: the new number of slots, a power of two no smaller than kMinSlots.
  void grow(std::size_t n) {
    std::vector<Bucket, SlotAllocator<Bucket>> old(n / kBucketSlots);
    old.swap(buckets_);
    const std::size_t mask = bucket_mask();
    for (Bucket& b : old) {
      for (Slot& s : b.slots) {
        if (s.empty()) continue;
        Slot& to = *free_slot_from(hash_.of_words(s.k0, s.k1) & mask);
        to = std::move(s);
      }
    }
  }

  FourTupleHash hash_;
  std::vector<Bucket, SlotAllocator<Bucket>> buckets_;  // size 0 or a power of two
  std::size_t size_ = 0;
};

}  // namespace weft
