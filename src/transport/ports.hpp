// The port table: which socket holds which (address, port) of one transport
// protocol. This is how many processes share one IP address: ports keep them
// apart. Each protocol has its own table (UDP port 7 and TCP port 7 are
// different ports).
//
// Pure code: no I/O, no clock; the only randomness is the secret in the
// config, from which ephemeral ports are derived (RFC 6056).
//
// Two kinds of binding live here:
//  - bound:      made by bind() (explicit port or port 0). The socket accepts
//                packets from any remote, so lookup() finds it, and it holds
//                its port exclusively on every overlapping address unless
//                both it and the newcomer set reuse_addr.
//  - connection: made by bind_ephemeral_for() for an outgoing connection.
//                Connections from the same local address may share a local
//                port as long as their 4-tuples differ (the caller's
//                four_tuple_free predicate decides that), as Linux does in
//                __inet_hash_connect; this lets one address hold far more
//                outgoing connections than there are ephemeral ports. They
//                are found by 4-tuple in the ConnectionIndex, not by lookup().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include "base/result.hpp"
#include "base/siphash.hpp"
#include "transport/socket_id.hpp"
#include "wire/types.hpp"

namespace weft {

struct PortTableConfig {
  // The ephemeral range, inclusive; 1 <= lo <= hi. The default is the IANA
  // dynamic range (RFC 6335 §6), which RFC 6056 §3.2 recommends.
  std::uint16_t ephemeral_lo = 49152, ephemeral_hi = 65535;
  // Keys the ephemeral port choice. Give each table its own secret.
  SipKey secret{};
};

struct BindRequest {
  SocketId owner;
  Ipv4Addr addr;  // Ipv4Addr::any() = wildcard
  Port port;      // 0 = pick an ephemeral port
  bool reuse_addr = false;
};

struct PortTableCounters {
  std::uint64_t binds = 0;                // bindings made, by bind() or bind_ephemeral_for()
  std::uint64_t addr_in_use = 0;          // bind() of an explicit port refused with EADDRINUSE
  std::uint64_t ephemeral_exhausted = 0;  // no ephemeral port was free
  std::uint64_t ephemeral_probes = 0;     // candidate ports examined by the ephemeral search

  template <class F>
  void visit(F&& f) const {
    f("binds", binds);
    f("addr_in_use", addr_in_use);
    f("ephemeral_exhausted", ephemeral_exhausted);
    f("ephemeral_probes", ephemeral_probes);
  }
};

class PortTable {
 public:
  // Precondition: 1 <= cfg.ephemeral_lo <= cfg.ephemeral_hi (asserted).
  explicit PortTable(PortTableConfig cfg);

  // Binds (addr, port) for r.owner and returns the port bound.
  //
  // Port 0 draws an ephemeral port. The remote is not known yet, so instead
  // of RFC 6056's F(local, remote) it is keyed by (r.addr, a draw count):
  // successive port-0 binds are unpredictable, not sequential (ports.cpp
  // says why). The port drawn is one nothing holds on an overlapping
  // address (reuse_addr is not a licence to be handed someone else's port).
  //
  // Errors:
  //  EINVAL      r.owner already has a binding.
  //  EADDRINUSE  another binding holds the port on an overlapping address
  //              (the same address, or either one is the wildcard), unless
  //              both set reuse_addr and it does not listen; or port 0 and
  //              no ephemeral port is free.
  // EADDRNOTAVAIL (an address the host does not own) is the caller's check.
  Result<Port> bind(const BindRequest& r);

  // Picks an ephemeral local port for a connection from local_addr to
  // `remote` and binds it for `owner` as a connection binding (see above).
  // A candidate is taken when no bind()-made binding holds it on an
  // overlapping address and four_tuple_free(port) says the 4-tuple
  // (local_addr, port, remote) is not in use. The caller must enter the new
  // connection in its ConnectionIndex before the next call, so that the
  // predicate sees it.
  //
  // Errors:
  //  EINVAL         owner already has a binding.
  //  EADDRNOTAVAIL  every port in the range was unsuitable (what Linux
  //                 reports from connect()).
  Result<Port> bind_ephemeral_for(SocketId owner, Ipv4Addr local_addr, Endpoint remote,
                                  const std::function<bool(Port)>& four_tuple_free);

  // TCP's listen(): marks owner's binding as listening. From then on no
  // other socket may bind an overlapping address on the port, even with
  // SO_REUSEADDR on both (Linux's rule; sharing a listener's port needs
  // SO_REUSEPORT, which weft does not offer).
  // Errors:
  //  EINVAL      owner has no binding.
  //  EADDRINUSE  another binding on an overlapping address already listens.
  Status listen(SocketId owner);

  // Frees owner's binding; a no-op if it has none.
  void release(SocketId owner);

  std::optional<Endpoint> binding_of(SocketId owner) const;

  // The socket bound by bind() to exactly (addr, port), else to (any, port).
  // Connection bindings are never returned: their packets are demultiplexed
  // by 4-tuple. When reuse_addr lets several sockets share the same address
  // and port, the most recently bound one is returned (the newest listener
  // takes over, and the older one is back in front when it is released).
  std::optional<SocketId> lookup(Ipv4Addr addr, Port port) const;

  // Number of bindings (one per owner).
  std::size_t size() const { return owners_.size(); }

  // Calls f(SocketId, Endpoint) for every binding, in no particular order.
  // The table must not be modified during the walk.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [owner, local] : owners_) f(owner, local);
  }

  const PortTableConfig& config() const { return cfg_; }
  const PortTableCounters& counters() const { return counters_; }

 private:
  enum class Kind : std::uint8_t { bound, connection };
  struct Binding {
    SocketId owner;
    Ipv4Addr addr;
    bool reuse_addr;
    Kind kind;
    bool listening = false;
  };
  // Bindings on one port, oldest first. Usually one.
  using PortBindings = std::vector<Binding>;

  // Ephemeral port choice (defined and used in ports.cpp only); nullopt
  // when no candidate is suitable.
  template <class Suitable>
  std::optional<Port> pick_for_connection(Ipv4Addr local, Endpoint remote, const Suitable& suitable);
  template <class Suitable>
  std::optional<Port> pick_for_bind(Ipv4Addr local, const Suitable& suitable);
  template <class Suitable>
  std::optional<Port> search(std::uint32_t offset, std::uint16_t& counter, const Suitable& suitable);
  const PortBindings* bindings_on(Port port) const;
  void add(SocketId owner, Ipv4Addr addr, Port port, bool reuse_addr, Kind kind);

  PortTableConfig cfg_;
  std::uint32_t num_ephemeral_;
  std::unordered_map<std::uint16_t, PortBindings> ports_;
  std::unordered_map<SocketId, Endpoint> owners_;
  std::vector<std::uint16_t> perturb_;  // Algorithm 4's table[], each entry kept mod num_ephemeral_
  std::uint64_t bind_draws_ = 0;        // bind(port 0) draws so far, keys the next one
  PortTableCounters counters_;
};

}  // namespace weft
