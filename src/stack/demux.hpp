// The connection index: FourTuple -> Value, the first step of demultiplexing
// an arriving segment (then the listener, by port, in the PortTable). One
// hash lookup, whatever the number of connections: never a scan of sockets.
#pragma once

#include <sys/mman.h>

#include <array>
#include <bit>
#include <cstddef>
#include <new>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/siphash.hpp"
#include "wire/types.hpp"

namespace weft {

// Hashes a 4-tuple with SipHash-2-4 under a secret key. The remote half of
// every tuple is chosen by the peer; with an unkeyed or weak hash (such as
// the multiply-xorshift of std::hash<Endpoint>) an attacker could compute
// many tuples that share one home slot and turn each lookup into a long
// probe (hash flooding; Crosby & Wallach 2003). Without the key the slot of
// a tuple cannot be predicted. SipHash-2-4 of 12 bytes measured ~23 ns,
// small beside the cache miss a lookup in a large table takes anyway.
class FourTupleHash {
 public:
  explicit FourTupleHash(const SipKey& key) : sip_(key) {}

  std::size_t operator()(const FourTuple& t) const noexcept {
    return static_cast<std::size_t>(sip_(word0(t), word1(t)));
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
    void* p = ::operator new(bytes, std::align_val_t{alignment(bytes)});
    if (bytes >= kHugePage) ::madvise(p, bytes, MADV_HUGEPAGE);
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) { ::operator delete(p, std::align_val_t{alignment(n * sizeof(T))}); }
  friend bool operator==(const SlotAllocator&, const SlotAllocator&) { return true; }

 private:
  static std::size_t alignment(std::size_t bytes) { return bytes >= kHugePage ? kHugePage : alignof(T); }
};

// A map from FourTuple to Value (typically a SocketId): open addressing with
// linear probing, entries stored inline, at most half full.
//
// Why not std::unordered_map: in libstdc++ a lookup follows bucket ->
// previous node -> node, three dependent cache misses once the table
// outgrows the cache; here it is one miss into a run of adjacent slots
// (measured: 1M entries, ~3x faster; see the commit message). Deletion
// shifts the following entries back (no tombstones), so lookups never slow
// down with churn.
//
// Layout: a slot holds the tuple as two words (12 bytes), 32 bits of its
// hash (0 marks an empty slot) and the Value, aligned to a power of two
// (32 bytes for a SocketId), so examining a slot touches one cache line.
// The stored hash rejects most mismatches without comparing tuples and
// lets growing and erasing move entries without hashing again.
//
// Load: at most 1/2, so a hit examines at most (1 + 1/(1-1/2))/2 = 1.5
// slots and a miss 2.5 on average (Knuth, TAOCP 6.4), against 2.5 and 8.5
// at 3/4; misses matter, as every SYN and every spoofed segment is one.
//
// At scale a lookup is one DRAM miss. find() pays it in full; find_batch()
// hashes keys ahead and prefetches their home slots, so the misses of a
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
  bool insert(const FourTuple& t, Value v) {
    const std::uint32_t h = hash32(t);
    if (slot_of(t, h) != kNone) return false;
    if ((size_ + 1) * kLoadDen > slots_.size() * kLoadNum) grow(slots_.empty() ? kMinSlots : slots_.size() * 2);
    Slot& s = slots_[free_slot_from(h)];
    s.k0 = FourTupleHash::word0(t);
    s.k1 = FourTupleHash::word1(t);
    s.value = std::move(v);
    s.hash = h;
    ++size_;
    return true;
  }

  // Removes t. False if it was not present.
  bool erase(const FourTuple& t) {
    std::size_t hole = slot_of(t, hash32(t));
    if (hole == kNone) return false;
    // Backward shift: an entry after the hole moves into it unless the hole
    // lies before the entry's home slot (cyclically), where a lookup for
    // that entry would not look.
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t j = (hole + 1) & mask; slots_[j].hash != 0; j = (j + 1) & mask) {
      const std::size_t home = slots_[j].hash & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        slots_[hole] = std::move(slots_[j]);
        hole = j;
      }
    }
    slots_[hole].hash = 0;
    slots_[hole].value = Value{};  // release what the value holds now
    --size_;
    return true;
  }

  // The value for t, or nullptr.
  Value* find(const FourTuple& t) {
    const std::size_t i = slot_of(t, hash32(t));
    return i == kNone ? nullptr : &slots_[i].value;
  }
  const Value* find(const FourTuple& t) const {
    const std::size_t i = slot_of(t, hash32(t));
    return i == kNone ? nullptr : &slots_[i].value;
  }

  // find() for a burst of keys: out[i] = find(keys[i]) for each i < keys.size()
  // (out must be at least as long). The receive path's form: the hash of
  // key i + kAhead is computed and its home slot prefetched before key i
  // is resolved, so up to kAhead cache misses are in flight at once instead
  // of one.
  void find_batch(std::span<const FourTuple> keys, std::span<Value*> out) {
    const std::size_t n = keys.size();
    if (slots_.empty()) {
      for (std::size_t i = 0; i < n; ++i) out[i] = nullptr;
      return;
    }
    const std::size_t mask = slots_.size() - 1;
    std::array<std::uint32_t, kAhead> ahead;  // hashes of keys i .. i + kAhead - 1, by index mod kAhead
    for (std::size_t i = 0; i < n && i < kAhead; ++i) {
      ahead[i] = hash32(keys[i]);
      prefetch_run(ahead[i] & mask);
    }
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t h = ahead[i % kAhead];
      if (i + kAhead < n) {
        const std::uint32_t next = hash32(keys[i + kAhead]);
        ahead[i % kAhead] = next;
        prefetch_run(next & mask);
      }
      const std::size_t s = slot_of(keys[i], h);
      out[i] = s == kNone ? nullptr : &slots_[s].value;
    }
  }

  // How many slots find(t) examines, counting the empty slot that ends a
  // miss: the measure of probe length the benchmark reports. Not for the
  // data path (it hashes again).
  std::size_t probes_for(const FourTuple& t) const {
    if (slots_.empty()) return 0;
    const std::uint32_t h = hash32(t);
    const std::size_t mask = slots_.size() - 1;
    std::size_t n = 1;
    for (std::size_t i = h & mask; slots_[i].hash != 0; i = (i + 1) & mask, ++n)
      if (matches(slots_[i], t, h)) return n;
    return n;
  }

  std::size_t size() const { return size_; }
  // The number of slots (a power of two, or 0); size() / slot_count() is the load.
  std::size_t slot_count() const { return slots_.size(); }
  bool empty() const { return size_ == 0; }
  // The bytes of the slot array (what the index holds beyond the object).
  std::size_t memory_bytes() const { return slots_.size() * sizeof(Slot); }

  // Makes room for n entries without growing again.
  void reserve(std::size_t n) {
    std::size_t want = kMinSlots;
    while (n * kLoadDen > want * kLoadNum) want *= 2;
    if (want > slots_.size()) grow(want);
  }

  // Calls f(const FourTuple&, const Value&) for each entry, in no particular
  // order. The index must not be modified during the walk.
  template <class F>
  void for_each(F&& f) const {
    for (const Slot& s : slots_) {
      if (s.hash == 0) continue;
      const FourTuple t{{Ipv4Addr(static_cast<std::uint32_t>(s.k0)), Port(static_cast<std::uint16_t>(s.k0 >> 32))},
                        {Ipv4Addr(s.k1), Port(static_cast<std::uint16_t>(s.k0 >> 48))}};
      f(t, s.value);
    }
  }

  // Keys hashed ahead by find_batch(): enough misses in flight to cover a
  // DRAM latency, fewer than the core's miss buffers (~24 on x86 cores).
  static constexpr std::size_t kAhead = 16;

 private:
  struct Fields {
    std::uint64_t k0;
    std::uint32_t k1, hash;
    Value value;
  };
  // A power of two no smaller than the slot, for slots up to a cache line.
  static constexpr std::size_t kSlotAlign = sizeof(Fields) <= 64 ? std::bit_ceil(sizeof(Fields)) : alignof(Fields);
  struct alignas(kSlotAlign) Slot {
    std::uint64_t k0 = 0;    // FourTupleHash::word0
    std::uint32_t k1 = 0;    // FourTupleHash::word1
    std::uint32_t hash = 0;  // low 32 bits of the hash, never 0 in a used slot; home = hash & mask
    Value value{};
  };
  static constexpr std::size_t kNone = ~std::size_t{0};
  static constexpr std::size_t kMinSlots = 16;
  static constexpr std::size_t kLoadNum = 1, kLoadDen = 2;  // the maximum load

  // 32 bits of the hash, with 0 (the empty slot's mark) taken as 1.
  std::uint32_t hash32(const FourTuple& t) const {
    const auto h = static_cast<std::uint32_t>(hash_(t));
    return h == 0 ? 1 : h;
  }

  // Starts loading the cache line of slot i and the line of slot i + 1,
  // which is the next line when slot i is the last of its own: at load 1/2
  // about a third of hits go on to the next slot, and without this some of
  // them wait for a second miss that nothing prefetched. No branch: when
  // both slots share a line the second prefetch is a no-op, while a
  // branch on (i + 1) % slots-per-line mispredicts half the time (measured,
  // 1k entries: 17.5 ns per lookup with the branch, 12 without). s + 1 may
  // point one past the array; a prefetch never faults.
  void prefetch_run(std::size_t i) const {
    const Slot* s = slots_.data() + i;
    __builtin_prefetch(s);
    __builtin_prefetch(s + 1);
  }

  static bool matches(const Slot& s, const FourTuple& t, std::uint32_t h) {
    return s.hash == h && s.k0 == FourTupleHash::word0(t) && s.k1 == FourTupleHash::word1(t);
  }

  std::size_t slot_of(const FourTuple& t, std::uint32_t h) const {
    if (slots_.empty()) return kNone;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask; slots_[i].hash != 0; i = (i + 1) & mask)
      if (matches(slots_[i], t, h)) return i;
    return kNone;  // load < 1 guarantees an empty slot ends the run
  }

  std::size_t free_slot_from(std::uint32_t h) const {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = h & mask;
    while (slots_[i].hash != 0) i = (i + 1) & mask;
    return i;
  }

  // n: a power of two, at most 2^32 (homes come from 32 hash bits).
  void grow(std::size_t n) {
    std::vector<Slot, SlotAllocator<Slot>> old(n);
    old.swap(slots_);
    for (Slot& s : old)
      if (s.hash != 0) slots_[free_slot_from(s.hash)] = std::move(s);
  }

  FourTupleHash hash_;
  std::vector<Slot, SlotAllocator<Slot>> slots_;  // size 0 or a power of two
  std::size_t size_ = 0;
};

}  // namespace weft
