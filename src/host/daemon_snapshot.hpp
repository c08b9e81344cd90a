// The netstat snapshot (docs/netstat-json.md) as a pure function: what the
// stack knows of its sockets, what the daemon knows of their pairs and
// owners, in; the JSON document, out. No descriptor is read here, so it is
// tested without a daemon (tests/unit/daemon_snapshot_test.cpp); the daemon
// gathers the input (Daemon::Impl::snapshot_input, daemon_snapshot.cpp).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/counters.hpp"
#include "tcp/tcp.hpp"
#include "udp/udp.hpp"

namespace weft {

// A process as netstat names it: pid, uid and program (program_name()).
struct SnapshotOwner {
  pid_t pid = 0;
  uid_t uid = 0;
  std::string program;
};

// What a weft socket's socketpair adds to the stack's view of it. Bytes in
// the pair count as the kernel would count them: unread by the process
// (recv_q) or written and not yet taken by the stack (send_q); a listener's
// recv_q counts the connections handed over and not yet accepted.
struct PairView {
  std::optional<SnapshotOwner> owner;  // none: its client is gone
  std::size_t recv_q = 0;
  std::size_t send_q = 0;
};

struct SnapshotInput {
  std::string name;      // the host's name
  std::string address;   // its IPv4 address, dotted
  std::string link;      // DaemonConfig::link_description
  pid_t pid = 0;         // the daemon's
  SnapshotOwner daemon;  // owner of the daemon's own sockets (services, unowned UDP)
  std::vector<TcpInfo> tcp;
  std::vector<UdpSocketInfo> udp;
  std::unordered_map<SocketId, PairView> tcp_pairs, udp_pairs;  // weft sockets of a process
  std::unordered_set<SocketId> tcp_services;                    // TCP sockets of the daemon's services
  CounterList counters;                                         // "group.name" (no dot: group "other")
};

// The document: schema, host, sockets (TCP, then UDP), counters by group.
// A TCP socket with no pair and no service is an orphan finishing its
// close: no owner, as the kernel shows it. Cannot fail.
nlohmann::json build_snapshot(const SnapshotInput& in);

}  // namespace weft
