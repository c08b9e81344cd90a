// IPv4 fragment reassembly (RFC 791 §3.2, "reassembly" procedure).
//
// Pure code: the caller parses the IPv4 header (src/wire) and hands in the
// fields that matter here, plus the current time. Nothing in this file reads
// a clock or does I/O.
//
// Policy, and why:
//  * Overlaps kill the datagram. Any byte covered by two fragments drops the
//    whole datagram (RFC 5722's rule for IPv6, which Linux applies to IPv4
//    too). Overlaps are how teardrop crashed stacks and how fragment-based
//    IDS evasion works: two copies of a byte with different values leave the
//    receiver free to pick either. An exact duplicate (same offset, length,
//    MF flag and bytes) is what a retransmitting or duplicating network
//    produces; it is ignored and counted as `duplicate`. Same range with
//    different bytes is an overlap, not a duplicate.
//  * Received fragments are therefore disjoint, so a datagram is complete
//    exactly when its final fragment is known and the bytes received add up
//    to its length: RFC 815's hole list reduces to one counter.
//  * Memory is bounded by max_total_bytes, counted as each datagram's buffer
//    extent [0, highest end received), gaps included: a lone 8-byte fragment
//    at offset 65000 pins 65008 bytes, and counting only its 8 bytes would
//    let an attacker hold 8000x the cap.
//  * When a fragment would take the total over the cap, the OLDEST other
//    datagrams are evicted first (counted memory_drop), the same as when the
//    table is full. The oldest datagram is the one most likely to have lost a
//    fragment and to be waiting only for its timeout; dropping the new
//    fragment instead would let a flood of incomplete datagrams lock every
//    legitimate datagram out for a whole timeout (30 s). Eviction costs O(1)
//    per evicted datagram (front of the arrival list), and each datagram is
//    evicted at most once. Only when the fragment's own datagram alone
//    exceeds the cap is that datagram dropped.
//  * The timeout runs from the first fragment (as Linux and RFC 1122's fixed
//    reassembly timeout do), not restarted by later fragments, so a trickle
//    of fragments cannot keep a datagram alive forever.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory_resource>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "base/time.hpp"
#include "wire/types.hpp"

namespace weft::ip {

// RFC 791 §3.2: fragments belong to the same datagram when source,
// destination, protocol and identification all match.
struct FragmentKey {
  Ipv4Addr src, dst;
  std::uint8_t protocol = 0;
  std::uint16_t ident = 0;
  constexpr bool operator==(const FragmentKey&) const = default;
};

// One fragment, already parsed from its IPv4 header.
struct FragmentInfo {
  FragmentKey key;
  std::uint16_t offset_bytes = 0;         // fragment offset field * 8
  bool more_fragments = false;            // the MF flag
  std::span<const std::uint8_t> payload;  // the bytes after the IP header, up to total length
};

struct ReassemblyConfig {
  std::size_t max_datagram_bytes = 65535 - 20;  // largest payload a 20-byte header allows
  std::size_t max_total_bytes = 4 << 20;        // over all datagrams in progress
  std::size_t max_fragments_per_datagram = 64;  // distinct fragments; duplicates do not count
  std::size_t max_datagrams = 256;              // datagrams in progress
  Duration timeout = 30s;                       // from the first fragment
  // Capacity of idle buffers kept for reuse by later datagrams, so that
  // steady-state reassembly does not allocate. Not part of bytes_held().
  std::size_t max_spare_bytes = 1 << 20;
};

struct ReassemblyCounters {
  std::uint64_t fragments_in = 0;        // every call to add()
  std::uint64_t reassembled = 0;         // datagrams completed
  std::uint64_t duplicate = 0;           // exact duplicates ignored
  std::uint64_t timed_out = 0;           // datagrams dropped by the timeout
  std::uint64_t overlap_drop = 0;        // datagrams dropped: two fragments cover one byte
  std::uint64_t oversize_drop = 0;       // fragments/datagrams past max_datagram_bytes
  std::uint64_t misaligned_drop = 0;     // offset, or non-final length, not a multiple of 8
  std::uint64_t empty_drop = 0;          // zero-length fragment
  std::uint64_t end_mismatch = 0;        // datagrams dropped: final fragments disagree on the end, or data past it
  std::uint64_t too_many_fragments = 0;  // datagrams dropped: over max_fragments_per_datagram
  std::uint64_t memory_drop = 0;         // datagrams dropped or evicted for max_total_bytes
  std::uint64_t table_full = 0;          // datagrams evicted for max_datagrams

  template <class F>
  void visit(F&& f) const {
    f("fragments_in", fragments_in);
    f("reassembled", reassembled);
    f("duplicate", duplicate);
    f("timed_out", timed_out);
    f("overlap_drop", overlap_drop);
    f("oversize_drop", oversize_drop);
    f("misaligned_drop", misaligned_drop);
    f("empty_drop", empty_drop);
    f("end_mismatch", end_mismatch);
    f("too_many_fragments", too_many_fragments);
    f("memory_drop", memory_drop);
    f("table_full", table_full);
  }
};

}  // namespace weft::ip

template <>
struct std::hash<weft::ip::FragmentKey> {
  std::size_t operator()(const weft::ip::FragmentKey& k) const noexcept {
    // Chains are bounded by max_datagrams, so even crafted collisions cost
    // at most that many key compares per fragment.
    std::uint64_t x = (std::uint64_t{k.src.value()} << 32) | k.dst.value();
    x ^= ((std::uint64_t{k.protocol} << 16) | k.ident) * 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return static_cast<std::size_t>(x ^ (x >> 31));
  }
};

namespace weft::ip {

class Reassembler {
 public:
  explicit Reassembler(ReassemblyConfig cfg = {});
  // Not copyable or movable: the map allocates from pool_, a member.
  Reassembler(const Reassembler&) = delete;
  Reassembler& operator=(const Reassembler&) = delete;

  // Adds one fragment. Returns the reassembled payload (the transport bytes,
  // without IP header) when this fragment completes a datagram; the span
  // stays valid until the next call to add() or expire().
  // Datagrams whose timeout has passed at `now` are expired first, so a late
  // fragment never completes a datagram that has timed out, however rarely
  // the caller runs expire(). `now` must not go backwards.
  std::optional<std::span<const std::uint8_t>> add(const FragmentInfo& f, Instant now);

  // Drops datagrams whose first fragment arrived `timeout` or more ago
  // (deadline <= now); returns how many. O(expired).
  std::size_t expire(Instant now);

  // The earliest deadline of a datagram in progress: when to call expire().
  std::optional<Instant> next_deadline() const;

  const ReassemblyCounters& counters() const { return counters_; }

  // Sum over datagrams in progress of their buffer extent (see top of file).
  // Never exceeds max_total_bytes.
  std::size_t bytes_held() const { return bytes_held_; }

  // Datagrams in progress.
  std::size_t datagrams() const { return map_.size(); }

 private:
  static constexpr std::uint32_t kNone = ~std::uint32_t{0};

  // A received fragment: [begin, end), and its MF flag. Kept sorted by
  // begin; never overlapping.
  struct Piece {
    std::uint32_t begin;
    std::uint32_t end;
    bool more;
  };

  // A datagram in progress. Slots are created as needed up to max_datagrams
  // and reused; the live ones are linked in order of first arrival, which
  // is deadline order (the timeout is the same for all).
  struct Slot {
    FragmentKey key;
    Instant deadline;
    std::uint32_t prev = kNone, next = kNone;
    std::vector<std::uint8_t> buf;  // size() == highest end received
    std::vector<Piece> pieces;
    std::size_t received = 0;                // sum of piece lengths
    std::optional<std::uint32_t> final_end;  // set by the fragment with MF = 0
  };

  // Why a datagram is dropped, for the counters.
  enum class Drop { timeout, overlap, oversize, misaligned, empty, end_mismatch, too_many, memory, table_full };

  std::uint32_t create(const FragmentKey& key, Instant now);
  void drop(std::uint32_t slot, Drop why);
  void release(std::uint32_t slot);  // unlink, unmap, recycle; no counting
  void drop_key(const FragmentKey& key, Drop why);
  void count(Drop why);
  bool make_room(std::size_t bytes, std::uint32_t keep);
  std::size_t expire_due(Instant now);
  std::vector<std::uint8_t> take_buffer();
  void recycle(std::vector<std::uint8_t> b);  // keeps b as a spare, or frees it
  void recycle_completed();

  ReassemblyConfig cfg_;
  ReassemblyCounters counters_;
  std::size_t bytes_held_ = 0;

  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::uint32_t oldest_ = kNone, newest_ = kNone;

  // Map nodes come from a pool, so inserting a datagram reuses the node of
  // one that finished instead of calling malloc.
  std::pmr::unsynchronized_pool_resource pool_;
  std::pmr::unordered_map<FragmentKey, std::uint32_t> map_{&pool_};

  std::vector<std::vector<std::uint8_t>> spare_;  // idle buffers, LIFO
  std::size_t spare_bytes_ = 0;                   // their total capacity
  std::vector<std::uint8_t> completed_;           // what the last add() returned
};

}  // namespace weft::ip
