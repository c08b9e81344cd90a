// A host: one Stack joined to one Link, with its services. Host::step() is
// the whole per-wakeup job and is the same whichever clock drives it: the
// epoll loop (real time, event_loop.hpp) or the simulation (sim_driver.hpp).
#pragma once

#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "link/link.hpp"
#include "services/services.hpp"
#include "services/tcp_services.hpp"
#include "stack/stack.hpp"

namespace weft {

struct LinkCounters {
  std::uint64_t rx_packets = 0;
  std::uint64_t rx_bytes = 0;
  std::uint64_t tx_packets = 0;
  std::uint64_t tx_bytes = 0;
  std::uint64_t tx_errors = 0;  // the link refused a packet
  template <class F>
  void visit(F&& f) const {
    f("rx_packets", rx_packets);
    f("rx_bytes", rx_bytes);
    f("tx_packets", tx_packets);
    f("tx_bytes", tx_bytes);
    f("tx_errors", tx_errors);
  }
};

class Host {
 public:
  // Packets read from the link per step before the stack's own work runs,
  // so a flood cannot starve timers and services.
  static constexpr int kRxBatch = 256;

  Host(StackConfig cfg, Link& link);
  ~Host();

  // Starts the services in `set`, over UDP and TCP. Errors: what bind
  // reports (EADDRINUSE).
  Status start_services(ServiceSet set, std::function<std::string()> daytime_text);

  // Does everything due at `now`: reads the link, runs the stack, the
  // services and application callbacks, and sends what is queued.
  // `link_readable` false is an event loop's word that its poll did not
  // report the link's descriptor readable: then only packets the link holds
  // already (its next_deadline() is due) are read, and the system call
  // that would only say EAGAIN is saved.
  void step(Instant now, bool link_readable = true);
  // When step() next has work (nullopt: only when the link has input).
  std::optional<Instant> next_deadline() const;

  // Application code sharing the host (tests, tools): called for readable
  // UDP sockets the services do not own.
  void set_on_udp_readable(std::function<void(SocketId, Instant)> f) { on_udp_readable_ = std::move(f); }
  // Called for TCP sockets whose readiness may have changed (check
  // stack().tcp().events(id)) that the services do not own; from
  // Host::step, never from inside the stack.
  void set_on_tcp_event(std::function<void(SocketId, Instant)> f) { on_tcp_event_ = std::move(f); }

  Stack& stack() { return stack_; }
  const Stack& stack() const { return stack_; }
  Link& link() { return link_; }
  const LinkCounters& link_counters() const { return link_counters_; }
  const TcpServices* tcp_services() const { return tcp_services_.get(); }
  // Stack, link and service counters, named "link.rx_packets" etc.
  CounterList all_counters() const;

 private:
  void flush(Instant now);
  void dispatch(Instant now);

  Stack stack_;
  Link& link_;
  std::unique_ptr<UdpServices> udp_services_;
  std::unique_ptr<TcpServices> tcp_services_;
  std::vector<SocketId> ready_;
  std::vector<SocketId> dispatching_;
  std::function<void(SocketId, Instant)> on_udp_readable_;
  std::vector<SocketId> tcp_ready_;
  std::vector<SocketId> tcp_dispatching_;
  std::function<void(SocketId, Instant)> on_tcp_event_;
  std::vector<std::uint8_t> rx_buf_ = std::vector<std::uint8_t>(65536);
  bool rx_backlog_ = false;
  LinkCounters link_counters_;
};

}  // namespace weft
