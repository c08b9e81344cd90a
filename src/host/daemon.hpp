// The host daemon: one Host (stack + link + services) shared by many
// processes, each attached over the control socket (host/control.hpp).
//
// Every weft socket a process opens is a socketpair. The process holds one
// end as an ordinary descriptor, so its own poll/epoll, blocking reads and
// backpressure work; the daemon holds the other end (`dfd`) and moves bytes
// between it and the TCP/UDP socket, and keeps a duplicate of the
// process's end (`cfd`) so that it can (a) count the bytes sitting in the
// pair's buffers in Recv-Q/Send-Q, (b) make the descriptor unwritable
// until a TCP handshake completes, and (c) see the process's unread data
// when it closes. docs/client-design.md has the whole design.
//
// Ownership: a socket belongs to the client (pid, uid, program, from
// SO_PEERCRED and /proc) whose control connection created it. When that
// connection ends (exit, kill -9, or garbage on it) every socket it held is
// closed as the kernel closes a dead process's sockets.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "host/event_loop.hpp"
#include "host/host.hpp"

namespace weft {

struct DaemonConfig {
  std::string name = "default";       // the host's name: NAME.sock
  std::string socket_path;            // resolved control socket path
  std::optional<gid_t> socket_group;  // group of the control socket (else the daemon's)
  std::vector<uid_t> privileged_uids; // may bind ports below 1024, besides uid 0
  std::size_t max_sockets = 4096;     // sizing for the open-file limit
  std::string link_description;       // for netstat's header, e.g. "udp:127.0.0.1:9000"
};

struct DaemonCounters {
  std::uint64_t clients_accepted = 0;
  std::uint64_t clients_current = 0;  // gauge
  std::uint64_t clients_gone = 0;     // control connection ended (exit, crash)
  std::uint64_t protocol_errors = 0;  // garbage on a control connection
  std::uint64_t version_mismatches = 0;
  std::uint64_t sockets_opened = 0;
  std::uint64_t sockets_current = 0;  // gauge
  std::uint64_t orphaned_closes = 0;  // sockets closed because their process went away
  std::uint64_t resets_on_close = 0;  // closed with RST: unread data or linger 0
  std::uint64_t privileged_denied = 0;
  template <class F>
  void visit(F&& f) const {
    f("clients_accepted", clients_accepted);
    f("clients_current", clients_current);
    f("clients_gone", clients_gone);
    f("protocol_errors", protocol_errors);
    f("version_mismatches", version_mismatches);
    f("sockets_opened", sockets_opened);
    f("sockets_current", sockets_current);
    f("orphaned_closes", orphaned_closes);
    f("resets_on_close", resets_on_close);
    f("privileged_denied", privileged_denied);
  }
};

class Daemon {
 public:
  // Creates the control socket (replacing a stale one; refusing when a live
  // daemon answers on it) and raises the open-file limit. `notes` receives
  // one-line remarks for the operator (e.g. an open-file limit too low for
  // max_sockets).
  // Errors (as a message): the runtime directory cannot be made, the socket
  // is in use by a live daemon, bind/chmod/chown fail.
  static std::unique_ptr<Daemon> start(Host& host, DaemonConfig cfg, std::vector<std::string>& notes);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Serves until SIGINT or SIGTERM, then resets every connection, tells the
  // clients (their descriptors end, calls fail with ECONNRESET/ENETDOWN) and
  // returns. Errors: what epoll/signalfd report.
  Status run(const EventLoopHooks& hooks);

  // The netstat snapshot (docs/netstat-json.md).
  nlohmann::json snapshot() const;
  const DaemonCounters& counters() const;
  CounterList all_counters() const;

 private:
  struct Impl;
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace weft
