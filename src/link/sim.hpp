// SimNetwork: hosts in one process joined by a simulated IP network that runs
// on the callers' time and a seeded Rng, so every run with the same seed and
// the same calls delivers the same packets at the same instants.
//
// Each attached host gets a SimLink. A packet sent on one is routed by its
// IPv4 destination (bytes 16..19, read directly: the network must carry
// malformed packets too, and must not depend on the wire parsers) to the
// SimLink owning that address, after the impairments below. There is no
// clock: send() stamps with the `now` it is given, receive(buf, now) hands
// out what has arrived by `now`, and next_deadline() tells the driver when
// to call again. This is smoltcp's fault_injector and gVisor's channel link
// folded into one in-process network.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/rng.hpp"
#include "base/time.hpp"
#include "link/link.hpp"
#include "wire/types.hpp"

namespace weft {

// What the network does to each packet, decided per packet in this order
// (fixed, so runs are reproducible): the sender's bandwidth queue, loss,
// duplication; then for each copy: corruption, delay + jitter, reordering.
struct Impairments {
  double loss = 0;       // probability a packet is dropped in flight
  double duplicate = 0;  // probability a second copy is delivered too
  double reorder = 0;    // probability a copy is held back by reorder_extra_delay
  double corrupt = 0;    // probability one random bit of a copy is flipped
  Duration delay{0};     // one-way propagation delay
  Duration jitter{0};    // extra delay, uniform in [0, jitter]
  Duration reorder_extra_delay{std::chrono::milliseconds(10)};
  std::uint64_t bandwidth_bps = 0;          // per sending link; 0 = unlimited
  std::size_t queue_limit_bytes = 1 << 20;  // sender's queue when bandwidth is limited
  // An ECN-capable router (RFC 3168 §5): a packet marked ECT(0) or ECT(1)
  // is delivered with CE instead of being lost in flight, and is marked CE
  // once the sender's queue is past half its limit (a full queue still
  // drops).
  bool ecn_mark = false;
};

// Counted network-wide (SimNetwork::counters) and per link (SimLink::counters,
// where each event is charged to the sending link except `delivered` and
// `rx_buffer_small`, which belong to the receiver).
struct SimCounters {
  std::uint64_t sent = 0;       // send() calls
  std::uint64_t delivered = 0;  // packets handed out by receive()
  std::uint64_t lost = 0;
  std::uint64_t duplicated = 0;       // extra copies created
  std::uint64_t reordered = 0;        // copies held back
  std::uint64_t corrupted = 0;        // copies with a bit flipped
  std::uint64_t queue_drop = 0;       // sender's bandwidth queue was full
  std::uint64_t no_route = 0;         // too short for an IPv4 header, or no host has the destination
  std::uint64_t too_big = 0;          // over the sender's or the receiver's MTU
  std::uint64_t rx_buffer_small = 0;  // receive() buffer shorter than the packet
  std::uint64_t ce_marked = 0;        // ECN-capable packets marked CE (for loss in flight, or a queue past half full)

  template <class F>
  void visit(F&& f) const {
    f("sent", sent);
    f("delivered", delivered);
    f("lost", lost);
    f("duplicated", duplicated);
    f("reordered", reordered);
    f("corrupted", corrupted);
    f("queue_drop", queue_drop);
    f("no_route", no_route);
    f("too_big", too_big);
    f("rx_buffer_small", rx_buffer_small);
    f("ce_marked", ce_marked);
  }
};

class SimNetwork;

class SimLink final : public Link {
 public:
  // send() returns false for packets it refuses outright (too big, no route,
  // queue full) and true once the network accepted the packet, even if the
  // network then loses it: the sender cannot know. Parts are joined: the
  // network's queue holds a copy of each packet anyway.
  using Link::send;
  bool send(PacketParts packet, Instant now) override;
  std::size_t receive(std::span<std::uint8_t> buf, Instant now) override;
  std::optional<Instant> next_deadline() const override;
  std::size_t mtu() const override { return mtu_; }
  std::string name() const override;

  Ipv4Addr address() const { return addr_; }
  const SimCounters& counters() const { return counters_; }
  // Packets in flight towards this link.
  std::size_t pending() const { return inbox_.size(); }

  SimLink(const SimLink&) = delete;
  SimLink& operator=(const SimLink&) = delete;

 private:
  friend class SimNetwork;
  SimLink(SimNetwork& net, Ipv4Addr addr, std::size_t mtu) : net_(net), addr_(addr), mtu_(mtu) {}

  // One packet in flight. Ordered by (at, seq): delivery time, ties in the
  // order the network accepted them, so delivery order never depends on
  // heap internals.
  struct InFlight {
    Instant at;
    std::uint64_t seq;
    std::vector<std::uint8_t> bytes;
  };
  // std::push_heap builds a max-heap; "greater" puts the earliest on top.
  static bool later(const InFlight& a, const InFlight& b) { return a.at != b.at ? a.at > b.at : a.seq > b.seq; }

  SimNetwork& net_;
  Ipv4Addr addr_;
  std::size_t mtu_;
  SimCounters counters_;
  std::vector<InFlight> inbox_;        // min-heap by (at, seq); capacity is kept
  Instant busy_until_{};               // when this link's transmitter goes idle
  std::vector<std::uint8_t> scratch_;  // a packet sent in parts, joined
};

class SimNetwork {
 public:
  explicit SimNetwork(std::uint64_t seed, Impairments imp = {});
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  // Adds a host with address `addr`; the link lives as long as the network.
  // Attaching an address twice routes it to the newer link.
  SimLink& attach(Ipv4Addr addr, std::size_t mtu = 1500);
  // Delivers packets for `addr` to `to` as well (a host with several
  // addresses, or a router's far side). `to` must come from attach() on this
  // network; a later route for the same address replaces the earlier one.
  void add_route(Ipv4Addr addr, Link& to);

  // Takes effect for packets sent from now on (packets in flight keep their
  // fate), so a test can open a partition or clear the impairments mid-run.
  void set_impairments(const Impairments& imp) { imp_ = imp; }
  const Impairments& impairments() const { return imp_; }

  // The earliest pending delivery on any link.
  std::optional<Instant> next_deadline() const;

  const SimCounters& counters() const { return counters_; }

 private:
  friend class SimLink;
  bool transmit(SimLink& from, std::span<const std::uint8_t> packet, Instant now);
  void enqueue(SimLink& to, std::span<const std::uint8_t> packet, Instant at, bool flip_bit, bool mark_ce = false);
  std::vector<std::uint8_t> take_buffer();
  void recycle(std::vector<std::uint8_t>&& buf);
  // Bumps a counter on the network and on a link together.
  static void count(std::uint64_t SimCounters::*field, SimCounters& a, SimCounters& b) {
    ++(a.*field);
    ++(b.*field);
  }

  Rng rng_;
  Impairments imp_;
  SimCounters counters_;
  std::uint64_t next_seq_ = 0;
  std::size_t max_mtu_ = 0;
  std::vector<std::unique_ptr<SimLink>> links_;  // unique_ptr: stable addresses
  std::unordered_map<Ipv4Addr, SimLink*> routes_;
  // Free list of packet buffers. A buffer's capacity is kept when it comes
  // back, so once the pool is warm, sending does not allocate.
  std::vector<std::vector<std::uint8_t>> pool_;
};

}  // namespace weft
