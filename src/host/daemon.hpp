// The host daemon: one Host (stack + link + services) shared by many
// processes, each attached over the control socket (control/control.hpp).
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
  std::string name = "default";        // the host's name: RUNTIME/NAME/control.sock
  std::string runtime_dir;             // RUNTIME (control::runtime_dir()), absolute
  std::optional<gid_t> socket_group;   // group of the host's directory and socket (else none: 0700)
  std::vector<uid_t> privileged_uids;  // may bind ports below 1024, besides uid 0
  // Most weft sockets open at once (more get ENFILE; connections accepted
  // beyond it wait in the listener's queue). The open-file limit is raised
  // to fit; when it cannot be, start() refuses a value given explicitly
  // and lowers the default with a note.
  std::size_t max_sockets = 4096;
  bool max_sockets_given = false;
  std::string link_description;  // for netstat's header, e.g. "udp:127.0.0.1:9000"
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
  std::uint64_t socket_limit_hits = 0;      // a socket refused (ENFILE) or a connection kept waiting: --max-sockets
  std::uint64_t descriptor_exhaustion = 0;  // out of descriptors: accepting paused until one is freed
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
    f("socket_limit_hits", socket_limit_hits);
    f("descriptor_exhaustion", descriptor_exhaustion);
  }
};

class Daemon {
 public:
  // Checks the runtime directory (host/runtime_dir.hpp), makes the host's
  // own directory in it and the control socket there (replacing a stale
  // one; refusing when a live daemon answers on it), and raises the
  // open-file limit. `notes` receives one-line remarks for the operator.
  // Errors (std::runtime_error, one line): a runtime directory another
  // user could redirect (which component, whose, what mode), a host
  // directory or socket path that is not ours, a live daemon on the
  // socket, an open-file limit too low for max_sockets, bind/listen
  // failing.
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
