// The small services over TCP: echo (7, RFC 862), discard (9, RFC 863),
// daytime (13, RFC 867) and chargen (19, RFC 864), one listener each and one
// connection object per accepted socket, driven by the TcpLayer's readiness
// events on the embedded API (no threads, no blocking).
//
// Nothing is buffered here beyond the TCP layer's own rings: echo peeks at
// the receive ring, sends what the send ring takes and only then consumes
// that much, so a full send buffer closes the receive window (backpressure)
// and no byte is ever dropped. Chargen's pattern repeats every 95 lines, so
// a connection is only an offset into one precomputed table.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "services/services.hpp"
#include "stack/stack.hpp"

namespace weft {

// Per service ("services.tcp.echo.connections" ...).
struct TcpServiceCounters {
  std::uint64_t connections = 0;  // accepted
  std::uint64_t bytes_in = 0;     // read from clients
  std::uint64_t bytes_out = 0;    // queued to clients (taken by send)
  std::uint64_t closed = 0;       // ended cleanly (our FIN queued)
  std::uint64_t resets = 0;       // ended by an error (ECONNRESET, ETIMEDOUT ...)
  std::uint64_t active = 0;       // (gauge) connections open now
  template <class F>
  void visit(F&& f) const {
    f("connections", connections);
    f("bytes_in", bytes_in);
    f("bytes_out", bytes_out);
    f("closed", closed);
    f("resets", resets);
    f("active", active);
  }
};

class TcpServices {
 public:
  static constexpr std::size_t kBacklog = 1024;

  // Listens on the wildcard address for each enabled service.
  // Errors: whatever bind/listen report (EADDRINUSE).
  static Result<std::unique_ptr<TcpServices>> start(Stack& stack, ServiceSet set,
                                                    std::function<std::string()> daytime_text);
  // Aborts the open connections and closes the listeners.
  ~TcpServices();
  TcpServices(const TcpServices&) = delete;
  TcpServices& operator=(const TcpServices&) = delete;

  // Serves socket `id` after a readiness event; false if `id` is not ours.
  bool on_event(SocketId id, Instant now);
  // Whether `id` is one of the services' listeners or open connections
  // (netstat names the daemon as their owner).
  bool owns(SocketId id) const {
    if (conns_.count(id)) return true;
    for (auto& [l, kind] : listeners_)
      if (l == id) return true;
    return false;
  }

  const TcpServiceCounters& counters(Service s) const { return counters_[static_cast<std::size_t>(s)]; }
  std::size_t connection_count() const { return conns_.size(); }
  template <class F>
  void visit(F&& f) const {
    for (const ServiceInfo& s : kServices)
      counters(s.kind).visit([&](const char* name, std::uint64_t v) { f(s.name, name, v); });
  }

 private:
  struct Conn {
    Service kind{};
    std::uint64_t chargen_pos = 0;  // offset in the endless pattern
    std::string out;                // daytime: the text still to send
    std::size_t out_off = 0;
  };

  TcpServices(Stack& stack, std::function<std::string()> daytime_text);
  TcpLayer& tcp() { return stack_.tcp(); }
  TcpServiceCounters& ctr(Service s) { return counters_[static_cast<std::size_t>(s)]; }

  void accept_all(SocketId listener, Service kind, Instant now);
  // Each returns false when the connection is finished (closed and erased).
  bool serve(SocketId id, Conn& c, Instant now);
  bool serve_echo(SocketId id, Conn& c, Instant now);
  bool serve_discard(SocketId id, Conn& c, Instant now);
  bool serve_daytime(SocketId id, Conn& c, Instant now);
  bool serve_chargen(SocketId id, Conn& c, Instant now);
  enum class Input : std::uint8_t { more, eof, error };
  // Reads and throws away (counting) what is waiting.
  Input drain_input(SocketId id, Conn& c, Instant now);
  // drain_input(), then finish() at the input's end (cleanly) or on an
  // error (with a reset). True when the connection was finished.
  bool drain_or_finish(SocketId id, Conn& c, Instant now);
  // Ends the connection and erases `c`: close (FIN after what is queued),
  // or after an error abort (frees the socket at once).
  void finish(SocketId id, Conn& c, bool error, Instant now);

  Stack& stack_;
  std::function<std::string()> daytime_text_;
  std::vector<std::pair<SocketId, Service>> listeners_;
  std::unordered_map<SocketId, Conn> conns_;
  std::vector<std::uint8_t> chargen_table_;  // one period of the pattern, then kChunk more
  TcpServiceCounters counters_[4];
  Instant last_now_{};  // for the destructor's aborts
};

}  // namespace weft
