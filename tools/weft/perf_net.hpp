// The two transports weft perf measures (perf.hpp): a host daemon's sockets
// through libweft-client, and a Host embedded in this process.
#pragma once

#include <map>

#include "host/event_loop.hpp"
#include "host/host.hpp"
#include "perf.hpp"

namespace weft::perf {

// libweft-client descriptors (src/client/weft.h), non-blocking, and poll(2).
class DaemonNet final : public Net {
 public:
  ~DaemonNet() override;
  Result<Sock> listen(std::uint16_t port) override;
  Result<Sock> accept(Sock listener, Endpoint* peer) override;
  Result<Sock> connect(Endpoint to) override;
  Result<bool> connected(Sock s) override;
  Result<std::size_t> send(Sock s, std::span<const std::uint8_t> data) override;
  Result<std::size_t> recv(Sock s, std::span<std::uint8_t> buf) override;
  void shutdown_write(Sock s) override;
  void close(Sock s) override;
  void want_write(Sock s, bool on) override;
  std::optional<Endpoint> local_endpoint(Sock s) override;

  // Polls the open descriptors and drives `d` until it is done (true), or
  // until `signal_fd` (a signalfd, -1 for none) is readable (false). A
  // signalfd rather than a handler: under load poll never sleeps, and a
  // handler's signal would only be delivered when it did.
  // Errors: what poll reports.
  Result<bool> run(Driver& d, int signal_fd = -1);

 private:
  std::map<int, bool> watched_;  // descriptor -> waiting to write
};

// The TcpLayer of a Host in this process, driven by run_event_loop: the
// Driver runs from Host::step's TCP events (so what it sends goes out in
// the same step) and from after_step for its timers.
class EmbeddedNet final : public Net {
 public:
  explicit EmbeddedNet(Host& host) : host_(host), tcp_(host.stack().tcp()) {}
  Result<Sock> listen(std::uint16_t port) override;
  Result<Sock> accept(Sock listener, Endpoint* peer) override;
  Result<Sock> connect(Endpoint to) override;
  Result<bool> connected(Sock s) override;
  Result<std::size_t> send(Sock s, std::span<const std::uint8_t> data) override;
  Result<std::size_t> recv(Sock s, std::span<std::uint8_t> buf) override;
  void shutdown_write(Sock s) override;
  void close(Sock s) override;
  void want_write(Sock, bool) override {}  // TcpLayer events say when
  std::optional<Endpoint> local_endpoint(Sock s) override;

  // Drives `d` until it is done (then lingers up to `linger` so that our
  // last segments, a FIN or the ACK of the peer's, reach the peer), or
  // until SIGINT/SIGTERM. Returns whether `d` finished (false: a signal).
  // Errors: what the event loop reports.
  Result<bool> run(Driver& d, Duration linger = 2s);
  Instant now() const { return now_; }
  void set_now(Instant now) { now_ = now; }

 private:
  // A SocketId's 64 bits as a Sock and back (exact both ways).
  SocketId id(Sock s) const { return static_cast<SocketId>(s); }
  static Sock sock(SocketId id) { return static_cast<Sock>(id); }
  // Whether only listeners and connections in TIME-WAIT are left: nothing
  // more needs sending.
  bool quiet() const;

  Host& host_;
  TcpLayer& tcp_;
  Instant now_{};
  bool touched_ = false;  // a call that may have queued segments
};

}  // namespace weft::perf
