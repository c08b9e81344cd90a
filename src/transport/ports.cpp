#include "transport/ports.hpp"

#include <algorithm>
#include <array>
#include <cassert>

namespace weft {
namespace {

// Algorithm 4's table length. RFC 6056 suggests 10; Linux grew its
// table_perturb from 256 to 65536 entries in 2022 after Klein & Pinkas showed
// that a small table lets a remote observer link a device across networks.
// Entries are 16-bit, kept mod num_ephemeral (so no wrap bias): 128 KiB.
constexpr std::size_t kPerturbEntries = std::size_t{1} << 16;

// Two addresses overlap when a packet could match both bindings.
bool overlaps(Ipv4Addr a, Ipv4Addr b) { return a == b || a.is_any() || b.is_any(); }

// Domain-separation tags, so that the functions keyed by one secret are
// independent of each other.
enum : std::uint8_t { kTagF = 1, kTagG = 2, kTagBind = 3 };

std::uint64_t keyed(const SipKey& key, std::uint8_t tag, Ipv4Addr local, Endpoint remote) {
  const std::uint32_t l = local.value(), r = remote.addr.value();
  const std::uint16_t p = remote.port.value();
  const std::array<std::uint8_t, 11> msg{tag,
                                         std::uint8_t(l >> 24),
                                         std::uint8_t(l >> 16),
                                         std::uint8_t(l >> 8),
                                         std::uint8_t(l),
                                         std::uint8_t(r >> 24),
                                         std::uint8_t(r >> 16),
                                         std::uint8_t(r >> 8),
                                         std::uint8_t(r),
                                         std::uint8_t(p >> 8),
                                         std::uint8_t(p)};
  return siphash24(key, msg);
}

std::uint64_t keyed_draw(const SipKey& key, Ipv4Addr local, std::uint64_t n) {
  const std::uint32_t l = local.value();
  std::array<std::uint8_t, 13> msg{kTagBind, std::uint8_t(l >> 24), std::uint8_t(l >> 16), std::uint8_t(l >> 8),
                                   std::uint8_t(l)};
  for (std::size_t i = 0; i < 8; ++i) msg[5 + i] = std::uint8_t(n >> (56 - 8 * i));
  return siphash24(key, msg);
}

}  // namespace

PortTable::PortTable(PortTableConfig cfg)
    : cfg_(cfg), num_ephemeral_(std::uint32_t{cfg.ephemeral_hi} - cfg.ephemeral_lo + 1), perturb_(kPerturbEntries, 0) {
  assert(cfg.ephemeral_lo >= 1 && cfg.ephemeral_lo <= cfg.ephemeral_hi);
}

// RFC 6056 §3.3.4, Algorithm 4 ("Double-Hash Port Selection"), for
// connections:
//
//   offset = F(local_IP, remote_IP, remote_port, secret_key1)
//   index  = G(local_IP, remote_IP, remote_port, secret_key2)
//   repeat num_ephemeral times:
//     port = min_ephemeral + (offset + table[index]) % num_ephemeral
//     table[index]++
//     if suitable(port): return port
//
// Chosen over Algorithm 3 (one global next_ephemeral counter) because a
// global counter leaks: anyone who connects to a host of theirs twice learns
// from the difference how many connections the victim made in between, to
// anyone. With Algorithm 4 the counter is shared only by destinations that
// land in the same table slot. Both behave alike for one remote: successive
// connections to it get successive ports (offset is fixed, the counter
// steps by 1), which RFC 6056 accepts to keep TIME_WAIT reuse away; for
// different remotes the offsets are unrelated, so ports look random.
//
// F and G are SipHash-2-4 under the table's secret with distinct tags. Each
// table[index] is kept mod num_ephemeral, so over num_ephemeral steps it
// visits every residue exactly once: every port of the range is tried.
template <class Suitable>
std::optional<Port> PortTable::pick_for_connection(Ipv4Addr local, Endpoint remote, const Suitable& suitable) {
  const auto offset = static_cast<std::uint32_t>(keyed(cfg_.secret, kTagF, local, remote) % num_ephemeral_);
  std::uint16_t& counter = perturb_[keyed(cfg_.secret, kTagG, local, remote) % kPerturbEntries];
  return search(offset, counter, suitable);
}

// bind() with port 0: the remote is unknown, so F(local, remote) would be
// F(local) alone, a constant offset, and Algorithm 3 or 4 would hand out
// successive ports to successive binds from one address: predictable, which
// RFC 5452 rules out for a resolver's UDP source ports (an unconnected
// UDP socket bound to port 0 is exactly that). So in place of the remote we
// key F with a count of such draws: offset = F(local, n++, secret). Each
// bind starts at an unpredictable port, then searches the range from there.
template <class Suitable>
std::optional<Port> PortTable::pick_for_bind(Ipv4Addr local, const Suitable& suitable) {
  const auto offset = static_cast<std::uint32_t>(keyed_draw(cfg_.secret, local, bind_draws_++) % num_ephemeral_);
  std::uint16_t step = 0;
  return search(offset, step, suitable);
}

// Tries min + (offset + counter) % num for num successive counter values,
// advancing counter (kept mod num) once per candidate.
template <class Suitable>
std::optional<Port> PortTable::search(std::uint32_t offset, std::uint16_t& counter, const Suitable& suitable) {
  for (std::uint32_t count = 0; count < num_ephemeral_; ++count) {
    const Port port{static_cast<std::uint16_t>(cfg_.ephemeral_lo + (offset + counter) % num_ephemeral_)};
    counter = static_cast<std::uint16_t>((counter + 1u) % num_ephemeral_);
    ++counters_.ephemeral_probes;
    if (suitable(port)) return port;
  }
  ++counters_.ephemeral_exhausted;
  return std::nullopt;
}

const PortTable::PortBindings* PortTable::bindings_on(Port port) const {
  auto it = ports_.find(port.value());
  return it == ports_.end() ? nullptr : &it->second;
}

void PortTable::add(SocketId owner, Ipv4Addr addr, Port port, bool reuse_addr, Kind kind) {
  ports_[port.value()].push_back(Binding{owner, addr, reuse_addr, kind});
  owners_.emplace(owner, Endpoint{addr, port});
  ++counters_.binds;
}

Result<Port> PortTable::bind(const BindRequest& r) {
  if (owners_.contains(r.owner)) return std::errc::invalid_argument;

  Port port = r.port;
  if (port.is_zero()) {
    // Nothing at all may hold the port on an overlapping address.
    auto free_for_addr = [&](Port p) {
      const PortBindings* v = bindings_on(p);
      return v == nullptr ||
             std::none_of(v->begin(), v->end(), [&](const Binding& b) { return overlaps(b.addr, r.addr); });
    };
    auto picked = pick_for_bind(r.addr, free_for_addr);
    if (!picked) return std::errc::address_in_use;
    port = *picked;
  } else if (const PortBindings* v = bindings_on(port)) {
    // Sharing needs the consent of both sides (SO_REUSEADDR on each), and
    // never extends to a listener's port.
    const bool conflict = std::any_of(v->begin(), v->end(), [&](const Binding& b) {
      return overlaps(b.addr, r.addr) && !(b.reuse_addr && r.reuse_addr && !b.listening);
    });
    if (conflict) {
      ++counters_.addr_in_use;
      return std::errc::address_in_use;
    }
  }
  add(r.owner, r.addr, port, r.reuse_addr, Kind::bound);
  return port;
}

Result<Port> PortTable::bind_ephemeral_for(SocketId owner, Ipv4Addr local_addr, Endpoint remote,
                                           const std::function<bool(Port)>& four_tuple_free) {
  if (owners_.contains(owner)) return std::errc::invalid_argument;
  // A connection never takes a port that bind() holds (a listener's, say);
  // it may share one with other connections when the 4-tuples differ.
  auto suitable = [&](Port p) {
    if (const PortBindings* v = bindings_on(p)) {
      const bool held = std::any_of(v->begin(), v->end(), [&](const Binding& b) {
        return b.kind == Kind::bound && overlaps(b.addr, local_addr);
      });
      if (held) return false;
    }
    return four_tuple_free(p);
  };
  auto picked = pick_for_connection(local_addr, remote, suitable);
  if (!picked) return std::errc::address_not_available;
  add(owner, local_addr, *picked, false, Kind::connection);
  return *picked;
}

Status PortTable::listen(SocketId owner) {
  auto it = owners_.find(owner);
  if (it == owners_.end()) return std::errc::invalid_argument;
  PortBindings& v = ports_.at(it->second.port.value());
  Binding* mine = nullptr;
  for (Binding& b : v) {
    if (b.owner == owner) {
      mine = &b;
    } else if (b.listening && overlaps(b.addr, it->second.addr)) {
      ++counters_.addr_in_use;
      return std::errc::address_in_use;
    }
  }
  mine->listening = true;
  return ok_status();
}

void PortTable::release(SocketId owner) {
  auto it = owners_.find(owner);
  if (it == owners_.end()) return;
  auto pit = ports_.find(it->second.port.value());
  assert(pit != ports_.end());
  PortBindings& v = pit->second;
  // Order-preserving erase: lookup() relies on oldest-first order.
  v.erase(std::find_if(v.begin(), v.end(), [&](const Binding& b) { return b.owner == owner; }));
  if (v.empty()) ports_.erase(pit);
  owners_.erase(it);
}

std::optional<Endpoint> PortTable::binding_of(SocketId owner) const {
  auto it = owners_.find(owner);
  if (it == owners_.end()) return std::nullopt;
  return it->second;
}

std::optional<SocketId> PortTable::lookup(Ipv4Addr addr, Port port) const {
  const PortBindings* v = bindings_on(port);
  if (v == nullptr) return std::nullopt;
  std::optional<SocketId> wildcard;
  // Newest first, so that among equals the most recent binding wins.
  for (auto b = v->rbegin(); b != v->rend(); ++b) {
    if (b->kind != Kind::bound) continue;
    if (b->addr == addr) return b->owner;
    if (b->addr.is_any() && !wildcard) wildcard = b->owner;
  }
  return wildcard;
}

}  // namespace weft
