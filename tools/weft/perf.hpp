// weft perf: an iperf-like measurement of weft TCP, over the host daemon
// (libweft-client) or embedded (a Host in this process, the TcpLayer API).
//
// The test logic (PerfClient, PerfServer) is written once, as non-blocking
// state machines over a small socket interface (Net). DaemonNet drives it
// with libweft-client descriptors and poll(2); EmbeddedNet with a Host and
// its event loop. So "daemon vs embedded" compares the two ways of reaching
// the stack under the same test code, not two implementations of the test.
//
// Wire protocol on the test connection (integers big-endian):
//   client -> server  Header, 32 bytes: "WFTP", version (1), kind, 2 bytes 0,
//                     duration_ms (u32), length (u32), 16 bytes 0.
//   server -> client  Ack, 8 bytes: "WFTA", status (u32: 0 ok, 1 busy,
//                     2 bad header). The client starts its clock here, so
//                     the header's round trip is not part of the test.
//   ... the test (below) ...
//   server -> client  Result, 32 bytes: "WFTR", status (u32), bytes (u64),
//                     transactions (u64), elapsed_us (u64): what the server
//                     counted between its Ack and the client's end of
//                     stream. Sent in send, rr and crr; not in recv, where
//                     the client is the receiver and counts for itself.
// send: the client streams until the duration is over, then shuts down its
//   write side; the server counts and answers with the Result.
// recv: the server streams for the duration, then closes.
// rr: the client sends `length` bytes, the server answers `length` bytes,
//   repeatedly; the client ends with a shutdown, the server sends the Result.
// crr: the test connection stays idle; each transaction is a connection of
//   its own that starts with a Header of kind crr_txn and `length` request
//   bytes, which the server answers with `length` bytes and closes. The
//   server closes first, so TIME-WAIT stays on its side and the client's
//   ephemeral ports are not used up at thousands of connections a second.
// One test at a time: a second test connection gets Ack status busy.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.hpp"
#include "base/time.hpp"
#include "wire/types.hpp"

namespace weft::perf {

enum class Mode : std::uint8_t { send = 0, recv = 1, rr = 2, crr = 3 };
const char* mode_name(Mode m);
std::optional<Mode> parse_mode(std::string_view s);
inline bool is_bulk(Mode m) { return m == Mode::send || m == Mode::recv; }

constexpr std::uint16_t kDefaultPort = 5201;
constexpr std::uint8_t kVersion = 1;
constexpr std::uint8_t kKindCrrTxn = 4;  // Header.kind of one crr transaction
constexpr std::size_t kHeaderLen = 32;
constexpr std::size_t kAckLen = 8;
constexpr std::size_t kResultLen = 32;
constexpr std::size_t kMaxLen = 16u << 20;

enum class AckStatus : std::uint32_t { ok = 0, busy = 1, bad_header = 2 };

struct Header {
  std::uint8_t kind = 0;  // a Mode, or kKindCrrTxn
  std::uint32_t duration_ms = 0;
  std::uint32_t len = 0;
};
std::array<std::uint8_t, kHeaderLen> encode(const Header& h);
// nullopt: not a weft perf header of this version.
std::optional<Header> decode_header(std::span<const std::uint8_t, kHeaderLen> b);

struct ServerResult {
  std::uint32_t status = 0;
  std::uint64_t bytes = 0;
  std::uint64_t transactions = 0;
  std::uint64_t elapsed_us = 0;
};
std::array<std::uint8_t, kResultLen> encode(const ServerResult& r);
std::optional<ServerResult> decode_result(std::span<const std::uint8_t, kResultLen> b);

// A socket of the transport under test: a descriptor or a SocketId.
using Sock = std::int64_t;

// The non-blocking socket calls the tests need. Errors are errno values:
// EAGAIN means "not now, wait for the next event on this socket".
class Net {
 public:
  virtual ~Net() = default;
  // A listener on the wildcard address.
  virtual Result<Sock> listen(std::uint16_t port) = 0;
  // EAGAIN: none waiting.
  virtual Result<Sock> accept(Sock listener, Endpoint* peer) = 0;
  // Starts a connection; connected() says when it is done.
  virtual Result<Sock> connect(Endpoint to) = 0;
  // true: established; false: still connecting; error: it failed.
  virtual Result<bool> connected(Sock s) = 0;
  virtual Result<std::size_t> send(Sock s, std::span<const std::uint8_t> data) = 0;
  // 0 for a non-empty buffer: end of stream.
  virtual Result<std::size_t> recv(Sock s, std::span<std::uint8_t> buf) = 0;
  virtual void shutdown_write(Sock s) = 0;
  virtual void close(Sock s) = 0;
  // Whether the owner waits to write on `s` (poll's POLLOUT); reading is
  // always watched. Transports with edge events ignore it.
  virtual void want_write(Sock s, bool on) = 0;
  virtual std::optional<Endpoint> local_endpoint(Sock s) = 0;
};

// What drives a test: the transport calls on_event for a socket whose
// readiness may have changed, on_time after every wakeup, and sleeps no
// later than deadline().
class Driver {
 public:
  virtual ~Driver() = default;
  virtual void on_event(Sock s, Instant now) = 0;
  virtual void on_time(Instant now) = 0;
  virtual std::optional<Instant> deadline() const = 0;
  virtual bool done() const = 0;
};

// One line of the report: what one side counted over [start, end] seconds
// since the test began.
struct Sample {
  double start = 0, end = 0;
  std::uint64_t bytes = 0;
  std::uint64_t transactions = 0;
  double seconds() const { return end - start; }
};

struct ClientConfig {
  Endpoint server;
  Mode mode = Mode::send;
  Duration duration = 10s;
  Duration interval = 1s;  // 0: no interval lines
  std::size_t len = 128 * 1024;
};

struct ClientReport {
  Sock id = -1;  // the test connection
  Endpoint local{}, remote{};
  std::vector<Sample> intervals;
  Sample client;                 // what this side sent or received
  std::optional<Sample> server;  // the server's Result (not in recv)
};

class PerfClient final : public Driver {
 public:
  // on_start: the server accepted the test (report().local is known);
  // on_interval: each interval as it ends (for live output).
  PerfClient(Net& net, ClientConfig cfg, std::function<void()> on_start,
             std::function<void(const Sample&)> on_interval);
  // Opens the test connection. Errors come back through error().
  void start(Instant now);

  void on_event(Sock s, Instant now) override;
  void on_time(Instant now) override;
  std::optional<Instant> deadline() const override;
  bool done() const override { return st_ == St::done; }

  // After done(): the failure ("connect 192.0.2.20:5201: Connection
  // refused"), or the report.
  const std::optional<std::string>& error() const { return error_; }
  const ClientReport& report() const { return report_; }

 private:
  enum class St : std::uint8_t { connecting, header, ack, running, result, done };
  struct Txn {  // one crr transaction's connection
    Sock sock = -1;
    enum class St : std::uint8_t { connecting, request, response, eof } st = St::connecting;
    std::size_t off = 0;  // request bytes sent / response bytes received
  };

  void fail(std::string what, Instant now);
  void finish(Instant now);
  void serve_ctl(Instant now);
  bool read_exact(std::span<std::uint8_t> buf, std::size_t& got, Instant now);
  void run_send(Instant now);
  void run_recv(Instant now);
  void run_rr(Instant now);
  void start_txn(Instant now);
  void serve_txn(Instant now);
  void end_running(Instant now);
  void begin_result(Instant now);
  void tick(Instant now);
  double secs(Instant t) const;
  void count_txn(Instant now);

  Net& net_;
  ClientConfig cfg_;
  std::function<void()> on_start_;
  std::function<void(const Sample&)> on_interval_;
  St st_ = St::connecting;
  Sock ctl_ = -1;
  std::vector<std::uint8_t> out_;  // header to send
  std::size_t out_off_ = 0;
  std::array<std::uint8_t, kAckLen> ack_{};
  std::array<std::uint8_t, kResultLen> result_{};
  std::size_t got_ = 0;
  std::vector<std::uint8_t> buf_;          // payload to send, or room to receive
  std::vector<std::uint8_t> txn_request_;  // crr: a transaction's Header and request
  Instant start_{}, end_{}, stopped_{};
  Instant next_tick_{};
  Sample cur_;
  std::uint64_t bytes_ = 0, txns_ = 0;
  std::size_t rr_off_ = 0;   // request bytes sent or response bytes received
  bool rr_reading_ = false;  // waiting for the response
  std::optional<Txn> txn_;
  std::optional<std::string> error_;
  ClientReport report_;
};

// A test as the server sees it, when it begins and when it ends.
struct ServerTest {
  Sock id = -1;
  Endpoint peer{};
  Mode mode = Mode::send;
  std::uint32_t len = 0;
  std::uint32_t duration_ms = 0;
  Sample sample;      // bytes received (send, rr) or sent (recv); transactions (rr, crr)
  std::string error;  // at the end: empty when the test completed
};

class PerfServer final : public Driver {
 public:
  // on_begin/on_end: each test as it begins and ends; note: one-line
  // remarks (refused headers, a busy server).
  PerfServer(Net& net, std::uint16_t port, bool one_off, std::function<void(const ServerTest&)> on_begin,
             std::function<void(const ServerTest&)> on_end, std::function<void(const std::string&)> note);
  // Listens. Errors: what listen reports (EADDRINUSE, ENETDOWN).
  Status start();

  void on_event(Sock s, Instant now) override;
  void on_time(Instant now) override;
  std::optional<Instant> deadline() const override;
  bool done() const override { return error_ || (one_off_ && tests_done_ > 0 && conns_.empty()); }
  // Why the server cannot go on ("accept: Network is down": the daemon
  // went away), once done().
  const std::optional<std::string>& error() const { return error_; }

  // Closes every connection and the listener; a test still running ends
  // (on_end) with an error.
  void stop(Instant now);

 private:
  struct Conn {
    Sock sock = -1;
    Endpoint peer{};
    enum class St : std::uint8_t { header, running } st = St::header;
    Header h;
    std::array<std::uint8_t, kHeaderLen> hdr{};
    std::size_t hdr_got = 0;
    std::vector<std::uint8_t> out;  // Ack and Result, sent before anything else
    std::size_t out_off = 0;
    bool close_when_flushed = false;
    bool wants_write = false;
    bool is_test = false;  // the running test's connection (not a crr transaction)
    Instant start{}, end{};
    std::optional<Instant> stopped;
    std::uint64_t bytes = 0, txns = 0;
    std::uint64_t partial = 0;  // rr, crr_txn: request bytes received of the current transaction
    std::uint64_t owed = 0;     // response bytes still to send
    bool answered = false;      // crr_txn: the response is owed or sent
  };

  void accept_all(Instant now);
  void serve(Sock s, Instant now);
  void on_header(Conn& c, Instant now);
  void finish_test(Conn& c, Instant now);
  void end_test(Conn& c, Instant now, const std::string& err);
  void drop(Sock s, Instant now, const std::string& err);
  void queue(Conn& c, std::span<const std::uint8_t> bytes);
  void set_want_write(Conn& c, bool on);
  ServerTest describe(const Conn& c, Instant now) const;

  Net& net_;
  std::uint16_t port_;
  bool one_off_;
  std::function<void(const ServerTest&)> on_begin_, on_end_;
  std::function<void(const std::string&)> note_;
  Sock listener_ = -1;
  std::unordered_map<Sock, Conn> conns_;
  Sock active_ = -1;  // the running test's connection
  int tests_done_ = 0;
  std::optional<std::string> error_;
  std::vector<std::uint8_t> buf_;
  std::vector<std::uint8_t> payload_;
};

}  // namespace weft::perf
