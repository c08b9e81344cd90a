#include "link/sim.hpp"

#include "wire/checksum.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace weft {

namespace {
// ECT(0) or ECT(1) in the IPv4 header (RFC 3168 §5): the sender said the
// transport will react to CE. (packet is at least a header: routed above.)
bool ecn_capable(std::span<const std::uint8_t> packet) {
  const std::uint8_t e = packet[1] & 0b11;
  return e == 0b01 || e == 0b10;
}
}  // namespace

namespace {

constexpr std::uint64_t kNsPerSec = 1'000'000'000;

// Time for `bytes` to leave a transmitter of `bps`, rounded up so that the
// link never runs faster than configured.
Duration serialization_time(std::size_t bytes, std::uint64_t bps) {
  unsigned __int128 bits_ns = static_cast<unsigned __int128>(bytes) * 8 * kNsPerSec;
  return Duration{static_cast<Duration::rep>((bits_ns + bps - 1) / bps)};
}

// Bytes still waiting in a transmitter that stays busy for `backlog` more.
std::uint64_t backlog_bytes(Duration backlog, std::uint64_t bps) {
  if (backlog <= Duration::zero()) return 0;
  unsigned __int128 bits_ns = static_cast<unsigned __int128>(backlog.count()) * bps;
  return static_cast<std::uint64_t>((bits_ns + 8 * kNsPerSec - 1) / (8 * kNsPerSec));
}

}  // namespace

// --- SimLink ---------------------------------------------------------------

bool SimLink::send(PacketParts packet, Instant now) { return net_.transmit(*this, contiguous(packet, scratch_), now); }

std::size_t SimLink::receive(std::span<std::uint8_t> buf, Instant now) {
  while (!inbox_.empty() && inbox_.front().at <= now) {
    std::pop_heap(inbox_.begin(), inbox_.end(), later);
    std::vector<std::uint8_t> bytes = std::move(inbox_.back().bytes);
    inbox_.pop_back();
    const std::size_t n = bytes.size();
    if (n > buf.size()) {
      // The Link contract: never truncate. Drop it and try the next one.
      SimNetwork::count(&SimCounters::rx_buffer_small, net_.counters_, counters_);
      net_.recycle(std::move(bytes));
      continue;
    }
    std::copy_n(bytes.data(), n, buf.data());
    SimNetwork::count(&SimCounters::delivered, net_.counters_, counters_);
    net_.recycle(std::move(bytes));
    return n;
  }
  return 0;
}

std::optional<Instant> SimLink::next_deadline() const {
  if (inbox_.empty()) return std::nullopt;
  return inbox_.front().at;
}

std::string SimLink::name() const { return "sim:" + addr_.to_string(); }

// --- SimNetwork ------------------------------------------------------------

SimNetwork::SimNetwork(std::uint64_t seed, Impairments imp) : rng_(seed), imp_(imp) {}

SimLink& SimNetwork::attach(Ipv4Addr addr, std::size_t mtu) {
  links_.push_back(std::unique_ptr<SimLink>(new SimLink(*this, addr, mtu)));
  SimLink& link = *links_.back();
  routes_[addr] = &link;
  // Pooled buffers are reserved at the largest MTU so that any packet a link
  // accepts fits without the buffer growing.
  if (mtu > max_mtu_) {
    max_mtu_ = mtu;
    for (auto& b : pool_) b.reserve(max_mtu_);
  }
  return link;
}

void SimNetwork::add_route(Ipv4Addr addr, Link& to) {
  for (auto& l : links_) {
    if (l.get() == &to) {
      routes_[addr] = l.get();
      return;
    }
  }
  // A route to a link of another network would deliver into a network whose
  // time and Rng are not ours: a test bug, so fail loudly even in Release.
  std::fprintf(stderr, "SimNetwork::add_route: %s is not a link of this network\n", to.name().c_str());
  std::abort();
}

std::optional<Instant> SimNetwork::next_deadline() const {
  std::optional<Instant> best;
  for (const auto& l : links_) {
    auto d = l->next_deadline();
    if (d && (!best || *d < *best)) best = d;
  }
  return best;
}

bool SimNetwork::transmit(SimLink& from, std::span<const std::uint8_t> packet, Instant now) {
  count(&SimCounters::sent, counters_, from.counters_);
  if (packet.size() > from.mtu_) {
    count(&SimCounters::too_big, counters_, from.counters_);
    return false;
  }
  // Route on the IPv4 destination, bytes 16..19. Anything shorter than an
  // IPv4 header has no destination to route on.
  SimLink* to = nullptr;
  if (packet.size() >= 20) {
    const Ipv4Addr dst(packet[16], packet[17], packet[18], packet[19]);
    if (auto it = routes_.find(dst); it != routes_.end()) to = it->second;
  }
  if (to == nullptr) {
    count(&SimCounters::no_route, counters_, from.counters_);
    return false;
  }
  // A narrower receiving link stands for a narrower hop on the path; it
  // drops silently (no ICMP "fragmentation needed" is simulated).
  if (packet.size() > to->mtu_) {
    count(&SimCounters::too_big, counters_, from.counters_);
    return false;
  }

  // 1. The sender's transmitter: packets queue behind each other and leave
  //    at the configured rate. Queueing comes first because it happens on
  //    the sending host; a packet lost later still used the bandwidth.
  bool mark_ce = false;
  Instant departure = now;
  if (imp_.bandwidth_bps != 0) {
    const Instant start = std::max(now, from.busy_until_);
    const std::size_t queued = backlog_bytes(start - now, imp_.bandwidth_bps) + packet.size();
    if (queued > imp_.queue_limit_bytes) {
      // A full buffer drops, ECN or not: marking must not let it grow.
      count(&SimCounters::queue_drop, counters_, from.counters_);
      return false;
    }
    // An ECN-capable router marks before it must drop: past half the
    // buffer (as RED's and CoDel's marking thresholds do).
    if (imp_.ecn_mark && ecn_capable(packet) && queued > imp_.queue_limit_bytes / 2) mark_ce = true;
    from.busy_until_ = start + serialization_time(packet.size(), imp_.bandwidth_bps);
    departure = from.busy_until_;  // when its last bit is on the wire
  }

  // 2. Loss in flight.
  if (rng_.chance(imp_.loss)) {
    if (!(imp_.ecn_mark && ecn_capable(packet))) {
      count(&SimCounters::lost, counters_, from.counters_);
      return true;
    }
    mark_ce = true;
  }
  if (mark_ce) count(&SimCounters::ce_marked, counters_, from.counters_);
  // 3. Duplication: each copy then travels on its own (own corruption,
  //    jitter and reordering), as copies made by a faulty hop would.
  int copies = 1;
  if (rng_.chance(imp_.duplicate)) {
    count(&SimCounters::duplicated, counters_, from.counters_);
    copies = 2;
  }
  for (int c = 0; c < copies; ++c) {
    // 4. Corruption (the bit itself is chosen in enqueue()).
    const bool flip = rng_.chance(imp_.corrupt);
    if (flip) count(&SimCounters::corrupted, counters_, from.counters_);
    // 5. Delay plus jitter in [0, jitter]: jitter only ever adds, so
    //    `delay` is the path's minimum one-way latency.
    Instant at = departure + imp_.delay;
    if (imp_.jitter > Duration::zero())
      at += Duration{static_cast<Duration::rep>(rng_.below(static_cast<std::uint64_t>(imp_.jitter.count()) + 1))};
    // 6. Reordering: hold this copy back so that later packets overtake it.
    if (rng_.chance(imp_.reorder)) {
      count(&SimCounters::reordered, counters_, from.counters_);
      at += imp_.reorder_extra_delay;
    }
    enqueue(*to, packet, at, flip, mark_ce);
  }
  return true;
}

void SimNetwork::enqueue(SimLink& to, std::span<const std::uint8_t> packet, Instant at, bool flip_bit, bool mark_ce) {
  std::vector<std::uint8_t> buf = take_buffer();
  buf.assign(packet.begin(), packet.end());
  if (mark_ce) {
    // CE in the low two bits of byte 1, the header checksum updated for
    // the word that holds it (RFC 1624).
    const std::uint16_t old_word = static_cast<std::uint16_t>(buf[0] << 8 | buf[1]);
    buf[1] = static_cast<std::uint8_t>(buf[1] | 0b11);
    const std::uint16_t new_word = static_cast<std::uint16_t>(buf[0] << 8 | buf[1]);
    const std::uint16_t sum = static_cast<std::uint16_t>(buf[10] << 8 | buf[11]);
    const std::uint16_t updated = wire::checksum_update16(sum, old_word, new_word);
    buf[10] = static_cast<std::uint8_t>(updated >> 8);
    buf[11] = static_cast<std::uint8_t>(updated);
  }
  if (flip_bit) {
    // Exactly one bit anywhere, headers included: a single-bit error always
    // changes a ones'-complement sum, so the Internet checksum covering that
    // byte is guaranteed to catch it (a UDP checksum of 0 covers nothing).
    const auto byte = rng_.below(buf.size());
    buf[byte] = static_cast<std::uint8_t>(buf[byte] ^ (1u << rng_.below(8)));
  }
  to.inbox_.push_back(SimLink::InFlight{at, next_seq_++, std::move(buf)});
  std::push_heap(to.inbox_.begin(), to.inbox_.end(), SimLink::later);
}

std::vector<std::uint8_t> SimNetwork::take_buffer() {
  if (pool_.empty()) {
    std::vector<std::uint8_t> b;
    b.reserve(max_mtu_);
    return b;
  }
  std::vector<std::uint8_t> b = std::move(pool_.back());
  pool_.pop_back();
  return b;
}

void SimNetwork::recycle(std::vector<std::uint8_t>&& buf) {
  buf.clear();  // keeps capacity
  pool_.push_back(std::move(buf));
}

}  // namespace weft
