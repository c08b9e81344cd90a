// The connection index: FourTuple -> Value, the first step of demultiplexing
// an arriving segment (then the listener, by port, in the PortTable). One
// hash lookup, whatever the number of connections: never a scan of sockets.
#pragma once

#include <array>
#include <cstddef>
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

// A map from FourTuple to Value (typically a SocketId): open addressing with
// linear probing, entries stored inline, at most 3/4 full.
//
// Why not std::unordered_map: in libstdc++ a lookup follows bucket ->
// previous node -> node, three dependent cache misses once the table
// outgrows the cache; here it is one miss into a run of adjacent slots
// (measured: 1M entries, ~3x faster; see the commit message). Deletion
// shifts the following entries back (no tombstones), so lookups never slow
// down with churn. Each slot keeps 32 bits of its hash, so growing and
// shifting never run SipHash again, and most mismatches are rejected
// without comparing tuples.
//
// Contract: a pointer from find() is valid until the next insert() or
// erase(); both may move entries. Value must be default-constructible and
// move-assignable (empty slots hold a default Value).
template <class Value>
class ConnectionIndex {
  static_assert(std::is_default_constructible_v<Value> && std::is_move_assignable_v<Value>);

 public:
  explicit ConnectionIndex(const SipKey& secret) : hash_(secret) {}

  // Adds t -> v. False, and the index unchanged, if t is already present.
  bool insert(const FourTuple& t, Value v) {
    const auto h = static_cast<std::uint32_t>(hash_(t));
    if (slot_of(t, h) != kNone) return false;
    if ((size_ + 1) * 4 > slots_.size() * 3) grow(slots_.empty() ? kMinSlots : slots_.size() * 2);
    Slot& s = slots_[free_slot_from(h)];
    s.key = t;
    s.value = std::move(v);
    s.hash = h;
    s.used = true;
    ++size_;
    return true;
  }

  // Removes t. False if it was not present.
  bool erase(const FourTuple& t) {
    std::size_t hole = slot_of(t, static_cast<std::uint32_t>(hash_(t)));
    if (hole == kNone) return false;
    // Backward shift: an entry after the hole moves into it unless the hole
    // lies before the entry's home slot (cyclically), where a lookup for
    // that entry would not look.
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t j = (hole + 1) & mask; slots_[j].used; j = (j + 1) & mask) {
      const std::size_t home = slots_[j].hash & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        slots_[hole] = std::move(slots_[j]);
        hole = j;
      }
    }
    slots_[hole].used = false;
    slots_[hole].value = Value{};  // release what the value holds now
    --size_;
    return true;
  }

  // The value for t, or nullptr.
  Value* find(const FourTuple& t) {
    const std::size_t i = slot_of(t, static_cast<std::uint32_t>(hash_(t)));
    return i == kNone ? nullptr : &slots_[i].value;
  }
  const Value* find(const FourTuple& t) const {
    const std::size_t i = slot_of(t, static_cast<std::uint32_t>(hash_(t)));
    return i == kNone ? nullptr : &slots_[i].value;
  }

  // find() for each of keys: out[i] = find(keys[i]). out.size() >= keys.size().
  void find_batch(std::span<const FourTuple> keys, std::span<Value*> out) {
    for (std::size_t i = 0; i < keys.size(); ++i) out[i] = find(keys[i]);
  }

  // How many slots find(t) examines, counting the empty slot that ends a
  // miss: the measure of probe length the benchmark reports. Not for the
  // data path (it hashes again).
  std::size_t probes_for(const FourTuple& t) const {
    if (slots_.empty()) return 0;
    const auto h = static_cast<std::uint32_t>(hash_(t));
    const std::size_t mask = slots_.size() - 1;
    std::size_t n = 1;
    for (std::size_t i = h & mask; slots_[i].used; i = (i + 1) & mask, ++n)
      if (slots_[i].hash == h && slots_[i].key == t) return n;
    return n;
  }

  std::size_t size() const { return size_; }
  // The number of slots (a power of two, or 0); size() / slot_count() is the load.
  std::size_t slot_count() const { return slots_.size(); }
  bool empty() const { return size_ == 0; }

  // Makes room for n entries without growing again.
  void reserve(std::size_t n) {
    std::size_t want = kMinSlots;
    while (n * 4 > want * 3) want *= 2;
    if (want > slots_.size()) grow(want);
  }

  // Calls f(const FourTuple&, const Value&) for each entry, in no particular
  // order. The index must not be modified during the walk.
  template <class F>
  void for_each(F&& f) const {
    for (const Slot& s : slots_)
      if (s.used) f(s.key, s.value);
  }

 private:
  struct Slot {
    FourTuple key;
    Value value{};
    std::uint32_t hash = 0;  // low 32 bits of the SipHash; the home slot is hash & mask
    bool used = false;
  };
  static constexpr std::size_t kNone = ~std::size_t{0};
  static constexpr std::size_t kMinSlots = 16;

  std::size_t slot_of(const FourTuple& t, std::uint32_t h) const {
    if (slots_.empty()) return kNone;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask; slots_[i].used; i = (i + 1) & mask)
      if (slots_[i].hash == h && slots_[i].key == t) return i;
    return kNone;  // load < 1 guarantees an empty slot ends the run
  }

  std::size_t free_slot_from(std::uint32_t h) const {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = h & mask;
    while (slots_[i].used) i = (i + 1) & mask;
    return i;
  }

  // n: a power of two, at most 2^32 (homes come from 32 hash bits).
  void grow(std::size_t n) {
    std::vector<Slot> old(n);
    old.swap(slots_);
    for (Slot& s : old)
      if (s.used) slots_[free_slot_from(s.hash)] = std::move(s);
  }

  FourTupleHash hash_;
  std::vector<Slot> slots_;  // size 0 or a power of two
  std::size_t size_ = 0;
};

}  // namespace weft
