// weft perf's client and server state machines (perf.hpp), independent of
// the transport. Every handler is safe to call on a spurious event: it
// tries what its state allows and stops at EAGAIN.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "perf.hpp"
#include "wire/bytes.hpp"

namespace weft::perf {

namespace {

constexpr std::uint8_t kHeaderMagic[4] = {'W', 'F', 'T', 'P'};
constexpr std::uint8_t kAckMagic[4] = {'W', 'F', 'T', 'A'};
constexpr std::uint8_t kResultMagic[4] = {'W', 'F', 'T', 'R'};
// How long a client waits for the connection and the server's Ack, and for
// the test to end once its duration is over, before giving up.
constexpr Duration kGrace = 10s;
constexpr std::size_t kReadBuf = 256 * 1024;

bool would_block(std::errc e) { return e == std::errc::resource_unavailable_try_again; }

void store_be64(std::uint8_t* p, std::uint64_t v) {
  wire::store_be32(p, static_cast<std::uint32_t>(v >> 32));
  wire::store_be32(p + 4, static_cast<std::uint32_t>(v));
}
std::uint64_t load_be64(const std::uint8_t* p) {
  return (std::uint64_t{wire::load_be32(p)} << 32) | wire::load_be32(p + 4);
}

std::array<std::uint8_t, kAckLen> encode_ack(AckStatus s) {
  std::array<std::uint8_t, kAckLen> b{};
  std::memcpy(b.data(), kAckMagic, 4);
  wire::store_be32(b.data() + 4, static_cast<std::uint32_t>(s));
  return b;
}

// A byte pattern rather than zeros, so that nothing along the way could
// make the payload cheaper than real data.
void fill_pattern(std::vector<std::uint8_t>& b) {
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>('0' + i % 75);
}

double seconds_between(Instant a, Instant b) { return std::chrono::duration<double>(b - a).count(); }

}  // namespace

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::send:
      return "send";
    case Mode::recv:
      return "recv";
    case Mode::rr:
      return "rr";
    case Mode::crr:
      return "crr";
  }
  return "?";
}

std::optional<Mode> parse_mode(std::string_view s) {
  for (Mode m : {Mode::send, Mode::recv, Mode::rr, Mode::crr})
    if (s == mode_name(m)) return m;
  return std::nullopt;
}

std::array<std::uint8_t, kHeaderLen> encode(const Header& h) {
  std::array<std::uint8_t, kHeaderLen> b{};
  std::memcpy(b.data(), kHeaderMagic, 4);
  b[4] = kVersion;
  b[5] = h.kind;
  wire::store_be32(b.data() + 8, h.duration_ms);
  wire::store_be32(b.data() + 12, h.len);
  return b;
}

std::optional<Header> decode_header(std::span<const std::uint8_t, kHeaderLen> b) {
  if (std::memcmp(b.data(), kHeaderMagic, 4) != 0 || b[4] != kVersion) return std::nullopt;
  Header h;
  h.kind = b[5];
  h.duration_ms = wire::load_be32(b.data() + 8);
  h.len = wire::load_be32(b.data() + 12);
  if (h.kind > kKindCrrTxn || h.len == 0 || h.len > kMaxLen) return std::nullopt;
  if (h.kind != kKindCrrTxn && h.duration_ms == 0) return std::nullopt;
  return h;
}

std::array<std::uint8_t, kResultLen> encode(const ServerResult& r) {
  std::array<std::uint8_t, kResultLen> b{};
  std::memcpy(b.data(), kResultMagic, 4);
  wire::store_be32(b.data() + 4, r.status);
  store_be64(b.data() + 8, r.bytes);
  store_be64(b.data() + 16, r.transactions);
  store_be64(b.data() + 24, r.elapsed_us);
  return b;
}

std::optional<ServerResult> decode_result(std::span<const std::uint8_t, kResultLen> b) {
  if (std::memcmp(b.data(), kResultMagic, 4) != 0) return std::nullopt;
  ServerResult r;
  r.status = wire::load_be32(b.data() + 4);
  r.bytes = load_be64(b.data() + 8);
  r.transactions = load_be64(b.data() + 16);
  r.elapsed_us = load_be64(b.data() + 24);
  return r;
}

// ---------------------------------------------------------------- client

PerfClient::PerfClient(Net& net, ClientConfig cfg, std::function<void()> on_start,
                       std::function<void(const Sample&)> on_interval)
    : net_(net), cfg_(cfg), on_start_(std::move(on_start)), on_interval_(std::move(on_interval)), buf_(cfg.len) {
  fill_pattern(buf_);
  if (cfg_.mode == Mode::crr) {
    // Header and request in one buffer, handed over in one call: two calls
    // would be two segments where Nagle holds the second until the server's
    // delayed ACK of the first (40 ms a transaction).
    Header h;
    h.kind = kKindCrrTxn;
    h.len = static_cast<std::uint32_t>(cfg_.len);
    const auto hb = encode(h);
    txn_request_.assign(hb.begin(), hb.end());
    txn_request_.insert(txn_request_.end(), buf_.begin(), buf_.end());
  }
}

double PerfClient::secs(Instant t) const { return seconds_between(start_, t); }

void PerfClient::start(Instant now) {
  start_ = now;  // until the Ack: when the connection attempt began
  report_.remote = cfg_.server;
  auto s = net_.connect(cfg_.server);
  if (!s) return fail(fmt::format("connect {}: {}", cfg_.server.to_string(), errc_message(s.error())), now);
  ctl_ = *s;
  report_.id = ctl_;
  net_.want_write(ctl_, true);
}

void PerfClient::fail(std::string what, Instant) {
  if (st_ == St::done) return;
  error_ = std::move(what);
  if (txn_) net_.close(txn_->sock);
  txn_.reset();
  if (ctl_ >= 0) net_.close(ctl_);
  ctl_ = -1;
  st_ = St::done;
}

void PerfClient::finish(Instant) {
  report_.client = Sample{0, secs(stopped_), bytes_, txns_};
  // The last interval runs from the last tick to the end: it takes in
  // the drain of a recv test or the transaction in flight at the end,
  // rather than a line of its own for a sliver of time.
  if (cfg_.interval > Duration::zero()) {
    Sample s{cur_.start, secs(stopped_), bytes_ - cur_.bytes, txns_ - cur_.transactions};
    report_.intervals.push_back(s);
    if (on_interval_) on_interval_(s);
  }
  if (ctl_ >= 0) net_.close(ctl_);
  ctl_ = -1;
  st_ = St::done;
}

void PerfClient::on_event(Sock s, Instant now) {
  if (st_ == St::done) return;
  if (s == ctl_) {
    serve_ctl(now);
  } else if (txn_ && s == txn_->sock) {
    serve_txn(now);
  }
}

// Reads into buf until it holds buf.size() bytes (got counts them). False
// while incomplete, or after a failure (st_ is then done).
bool PerfClient::read_exact(std::span<std::uint8_t> buf, std::size_t& got, Instant now) {
  while (got < buf.size()) {
    auto r = net_.recv(ctl_, buf.subspan(got));
    if (!r) {
      if (!would_block(r.error())) fail(fmt::format("{}: {}", cfg_.server.to_string(), errc_message(r.error())), now);
      return false;
    }
    if (*r == 0) {
      fail(fmt::format("{}: the server closed the connection during the test", cfg_.server.to_string()), now);
      return false;
    }
    got += *r;
  }
  return true;
}

void PerfClient::serve_ctl(Instant now) {
  const std::string server = cfg_.server.to_string();
  if (st_ == St::connecting) {
    auto c = net_.connected(ctl_);
    if (!c) return fail(fmt::format("connect {}: {}", server, errc_message(c.error())), now);
    if (!*c) return;
    if (auto l = net_.local_endpoint(ctl_)) report_.local = *l;
    Header h;
    h.kind = static_cast<std::uint8_t>(cfg_.mode);
    h.duration_ms =
        static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.duration).count());
    h.len = static_cast<std::uint32_t>(cfg_.len);
    auto b = encode(h);
    out_.assign(b.begin(), b.end());
    out_off_ = 0;
    st_ = St::header;
  }
  if (st_ == St::header) {
    while (out_off_ < out_.size()) {
      auto r = net_.send(ctl_, std::span<const std::uint8_t>(out_).subspan(out_off_));
      if (!r) {
        if (would_block(r.error())) return;
        return fail(fmt::format("{}: {}", server, errc_message(r.error())), now);
      }
      out_off_ += *r;
    }
    net_.want_write(ctl_, false);
    got_ = 0;
    st_ = St::ack;
  }
  if (st_ == St::ack) {
    if (!read_exact(ack_, got_, now)) return;
    if (std::memcmp(ack_.data(), kAckMagic, 4) != 0)
      return fail(fmt::format("{}: not a weft perf server", server), now);
    switch (static_cast<AckStatus>(wire::load_be32(ack_.data() + 4))) {
      case AckStatus::ok:
        break;
      case AckStatus::busy:
        return fail(fmt::format("{}: the server is busy with another test", server), now);
      default:
        return fail(fmt::format("{}: the server refused the test (another weft perf version?)", server), now);
    }
    start_ = now;
    end_ = now + cfg_.duration;
    stopped_ = end_;
    next_tick_ = start_ + cfg_.interval;
    cur_ = Sample{};
    st_ = St::running;
    if (on_start_) on_start_();
    if (cfg_.mode == Mode::send || cfg_.mode == Mode::rr) net_.want_write(ctl_, true);
    if (cfg_.mode == Mode::crr) start_txn(now);
    if (st_ == St::done) return;
  }
  if (st_ == St::running) {
    switch (cfg_.mode) {
      case Mode::send:
        run_send(now);
        break;
      case Mode::recv:
        run_recv(now);
        break;
      case Mode::rr:
        run_rr(now);
        break;
      case Mode::crr: {
        // The test connection is idle until the end: anything on it means
        // the server gave up.
        std::uint8_t b[64];
        auto r = net_.recv(ctl_, b);
        if (!r && !would_block(r.error())) return fail(fmt::format("{}: {}", server, errc_message(r.error())), now);
        if (r) return fail(fmt::format("{}: the server ended the test early", server), now);
        break;
      }
    }
  }
  if (st_ == St::result) {
    if (got_ < kResultLen) {
      if (!read_exact(result_, got_, now)) return;
      auto res = decode_result(result_);
      if (!res) return fail(fmt::format("{}: the server's result is malformed", server), now);
      report_.server = Sample{0, static_cast<double>(res->elapsed_us) / 1e6, res->bytes, res->transactions};
    }
    // Then the server's end of stream, so that it closes first.
    std::uint8_t b[64];
    auto r = net_.recv(ctl_, b);
    if (!r) {
      if (would_block(r.error())) return;
      return fail(fmt::format("{}: {}", server, errc_message(r.error())), now);
    }
    if (*r > 0) return fail(fmt::format("{}: the server sent more than its result", server), now);
    finish(now);
  }
}

void PerfClient::run_send(Instant now) {
  // The server says nothing until our end of stream; end of stream or an
  // error from it now means it gave up.
  std::uint8_t b[64];
  auto r = net_.recv(ctl_, b);
  if (r || !would_block(r.error()))
    return fail(
        fmt::format("{}: {}", cfg_.server.to_string(), r ? "the server ended the test early" : errc_message(r.error())),
        now);
  while (now < end_) {
    auto s = net_.send(ctl_, buf_);
    if (!s) {
      if (would_block(s.error())) return;
      return fail(fmt::format("{}: {}", cfg_.server.to_string(), errc_message(s.error())), now);
    }
    bytes_ += *s;
  }
  end_running(now);
}

void PerfClient::run_recv(Instant now) {
  for (;;) {
    auto r = net_.recv(ctl_, buf_);
    if (!r) {
      if (would_block(r.error())) return;
      return fail(fmt::format("{}: {}", cfg_.server.to_string(), errc_message(r.error())), now);
    }
    if (*r == 0) {  // the server's end of stream: every byte is in
      stopped_ = now;
      tick(now);
      return finish(now);
    }
    bytes_ += *r;
  }
}

void PerfClient::run_rr(Instant now) {
  for (;;) {
    if (!rr_reading_) {
      auto s = net_.send(ctl_, std::span<const std::uint8_t>(buf_).subspan(rr_off_));
      if (!s) {
        if (would_block(s.error())) return;
        return fail(fmt::format("{}: {}", cfg_.server.to_string(), errc_message(s.error())), now);
      }
      rr_off_ += *s;
      if (rr_off_ < buf_.size()) continue;
      net_.want_write(ctl_, false);
      rr_reading_ = true;
      rr_off_ = 0;
    }
    auto r = net_.recv(ctl_, std::span<std::uint8_t>(buf_).subspan(rr_off_));
    if (!r) {
      if (would_block(r.error())) return;
      return fail(fmt::format("{}: {}", cfg_.server.to_string(), errc_message(r.error())), now);
    }
    if (*r == 0) return fail(fmt::format("{}: the server ended the test early", cfg_.server.to_string()), now);
    rr_off_ += *r;
    if (rr_off_ < buf_.size()) continue;
    rr_reading_ = false;
    rr_off_ = 0;
    count_txn(now);
    if (now >= end_) return end_running(now);
    net_.want_write(ctl_, true);
  }
}

void PerfClient::count_txn(Instant) { ++txns_; }

// Ends the sending side: our end of stream asks the server for its Result.
void PerfClient::end_running(Instant now) {
  stopped_ = now;
  tick(now);
  net_.want_write(ctl_, false);
  net_.shutdown_write(ctl_);
  got_ = 0;
  st_ = St::result;  // the Result comes once the server has seen our end
}

void PerfClient::start_txn(Instant now) {
  auto s = net_.connect(cfg_.server);
  if (!s) return fail(fmt::format("connect {}: {}", cfg_.server.to_string(), errc_message(s.error())), now);
  txn_ = Txn{};
  txn_->sock = *s;
  net_.want_write(*s, true);
}

void PerfClient::serve_txn(Instant now) {
  Txn& t = *txn_;
  const std::string server = cfg_.server.to_string();
  if (t.st == Txn::St::connecting) {
    auto c = net_.connected(t.sock);
    if (!c) return fail(fmt::format("connect {}: {}", server, errc_message(c.error())), now);
    if (!*c) return;
    t.st = Txn::St::request;
    t.off = 0;
  }
  if (t.st == Txn::St::request) {
    while (t.off < txn_request_.size()) {
      auto s = net_.send(t.sock, std::span<const std::uint8_t>(txn_request_).subspan(t.off));
      if (!s) {
        if (would_block(s.error())) return;
        return fail(fmt::format("{}: {}", server, errc_message(s.error())), now);
      }
      t.off += *s;
    }
    net_.want_write(t.sock, false);
    t.st = Txn::St::response;
    t.off = 0;
  }
  for (;;) {
    // The response, then the server's end of stream (it closes first).
    auto want = t.st == Txn::St::response ? std::span<std::uint8_t>(buf_).subspan(t.off)
                                          : std::span<std::uint8_t>(buf_).first(1);
    auto r = net_.recv(t.sock, want);
    if (!r) {
      if (would_block(r.error())) return;
      return fail(fmt::format("{}: {}", server, errc_message(r.error())), now);
    }
    if (t.st == Txn::St::response) {
      if (*r == 0) return fail(fmt::format("{}: the server closed a crr connection before answering", server), now);
      t.off += *r;
      if (t.off == buf_.size()) t.st = Txn::St::eof;
      continue;
    }
    if (*r != 0) return fail(fmt::format("{}: the server answered more than asked", server), now);
    net_.close(t.sock);
    txn_.reset();
    count_txn(now);
    if (now >= end_) return end_running(now);
    return start_txn(now);
  }
}

// Emits the intervals that ended by `now`, except the last one of the
// duration, which finish() reports up to the real end.
void PerfClient::tick(Instant now) {
  if (cfg_.interval <= Duration::zero()) return;
  while (next_tick_ <= now && next_tick_ < end_) {
    Sample s{cur_.start, secs(next_tick_), bytes_ - cur_.bytes, txns_ - cur_.transactions};
    report_.intervals.push_back(s);
    if (on_interval_) on_interval_(s);
    cur_ = Sample{s.end, s.end, bytes_, txns_};
    next_tick_ += cfg_.interval;
  }
}

void PerfClient::on_time(Instant now) {
  switch (st_) {
    case St::connecting:
    case St::header:
    case St::ack:
      if (now - start_ >= kGrace) {
        if (st_ == St::connecting)
          return fail(fmt::format("connect {}: {}", cfg_.server.to_string(), errc_message(std::errc::timed_out)), now);
        return fail(fmt::format("{}: no answer to the test header", cfg_.server.to_string()), now);
      }
      return;
    case St::running:
    case St::result:
      if (st_ == St::running) tick(now);
      if (cfg_.mode == Mode::send && st_ == St::running && now >= end_) return end_running(now);
      if (now - end_ >= kGrace)
        return fail(fmt::format("{}: the test did not end within {} s of its duration", cfg_.server.to_string(),
                                std::chrono::duration_cast<std::chrono::seconds>(kGrace).count()),
                    now);
      return;
    case St::done:
      return;
  }
}

std::optional<Instant> PerfClient::deadline() const {
  switch (st_) {
    case St::connecting:
    case St::header:
    case St::ack:
      return start_ + kGrace;
    case St::running:
    case St::result: {
      Instant d = end_ + kGrace;
      if (st_ == St::running) {
        if (cfg_.interval > Duration::zero() && next_tick_ < end_) d = std::min(d, next_tick_);
        if (cfg_.mode == Mode::send) d = std::min(d, end_);
      }
      return d;
    }
    case St::done:
      return std::nullopt;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- server

PerfServer::PerfServer(Net& net, std::uint16_t port, bool one_off, std::function<void(const ServerTest&)> on_begin,
                       std::function<void(const ServerTest&)> on_end, std::function<void(const std::string&)> note)
    : net_(net),
      port_(port),
      one_off_(one_off),
      on_begin_(std::move(on_begin)),
      on_end_(std::move(on_end)),
      note_(std::move(note)),
      buf_(kReadBuf) {}

Status PerfServer::start() {
  auto l = net_.listen(port_);
  if (!l) return l.error();
  listener_ = *l;
  return ok_status();
}

void PerfServer::stop(Instant now) {
  if (auto it = conns_.find(active_); it != conns_.end()) end_test(it->second, now, "the server was stopped");
  std::vector<Sock> socks;
  for (auto& [s, c] : conns_) socks.push_back(s);
  for (Sock s : socks) net_.close(s);
  conns_.clear();
  active_ = -1;
  if (listener_ >= 0) net_.close(listener_);
  listener_ = -1;
}

void PerfServer::on_event(Sock s, Instant now) {
  if (s == listener_) return accept_all(now);
  if (conns_.count(s)) serve(s, now);
}

void PerfServer::accept_all(Instant now) {
  for (;;) {
    Endpoint peer{};
    auto a = net_.accept(listener_, &peer);
    if (!a) {
      // A connection that died in the queue is its own business; anything
      // else (ENETDOWN: the daemon went away) ends the server.
      if (!would_block(a.error()) && a.error() != std::errc::connection_aborted)
        error_ = fmt::format("accept: {}", errc_message(a.error()));
      return;
    }
    Conn& c = conns_[*a];
    c = Conn{};
    c.sock = *a;
    c.peer = peer;
    serve(*a, now);  // the header may be there already
  }
}

ServerTest PerfServer::describe(const Conn& c, Instant now) const {
  ServerTest t;
  t.id = c.sock;
  t.peer = c.peer;
  t.mode = static_cast<Mode>(c.h.kind);
  t.len = c.h.len;
  t.duration_ms = c.h.duration_ms;
  t.sample = Sample{0, seconds_between(c.start, now), c.bytes, c.txns};
  return t;
}

void PerfServer::set_want_write(Conn& c, bool on) {
  if (c.wants_write == on) return;
  c.wants_write = on;
  net_.want_write(c.sock, on);
}

// Ends the connection: the test it carried (if any) ends with `err`.
void PerfServer::drop(Sock s, Instant now, const std::string& err) {
  auto it = conns_.find(s);
  if (it == conns_.end()) return;
  if (it->second.is_test) end_test(it->second, now, err);
  net_.close(s);
  conns_.erase(it);
}

void PerfServer::end_test(Conn& c, Instant now, const std::string& err) {
  if (!c.is_test) return;
  ServerTest t = describe(c, c.stopped.value_or(now));
  t.error = err;
  c.is_test = false;
  active_ = -1;
  ++tests_done_;
  if (on_end_) on_end_(t);
}

void PerfServer::queue(Conn& c, std::span<const std::uint8_t> bytes) {
  c.out.insert(c.out.end(), bytes.begin(), bytes.end());
}

void PerfServer::serve(Sock s, Instant now) {
  Conn* cp = &conns_.at(s);
  // Pending Ack/Result first: nothing else goes out before it.
  while (cp->out_off < cp->out.size()) {
    auto r = net_.send(s, std::span<const std::uint8_t>(cp->out).subspan(cp->out_off));
    if (!r) {
      if (would_block(r.error())) return set_want_write(*cp, true);
      return drop(s, now, errc_message(r.error()));
    }
    cp->out_off += *r;
  }
  cp->out.clear();
  cp->out_off = 0;
  if (cp->close_when_flushed) return drop(s, now, "");
  set_want_write(*cp, false);  // until there is more to send

  if (cp->st == Conn::St::header) {
    while (cp->hdr_got < kHeaderLen) {
      auto r = net_.recv(s, std::span<std::uint8_t>(cp->hdr).subspan(cp->hdr_got));
      if (!r) {
        if (would_block(r.error())) return;
        return drop(s, now, "");
      }
      if (*r == 0) return drop(s, now, "");
      cp->hdr_got += *r;
    }
    on_header(*cp, now);
    if (!conns_.count(s)) return;
    cp = &conns_.at(s);
    if (!cp->out.empty()) return serve(s, now);  // the Ack, and a close if refused
  }
  Conn& c = *cp;
  if (c.st != Conn::St::running) return;
  const bool txn = c.h.kind == kKindCrrTxn;
  const Mode mode = static_cast<Mode>(txn ? static_cast<std::uint8_t>(Mode::crr) : c.h.kind);

  // Input: counted (send), framed into transactions (rr, crr_txn), or
  // unexpected (recv, crr's idle test connection).
  bool eof = false;
  for (;;) {
    auto r = net_.recv(s, buf_);
    if (!r) {
      if (would_block(r.error())) break;
      return drop(s, now, errc_message(r.error()));
    }
    if (*r == 0) {
      eof = true;
      break;
    }
    c.bytes += *r;
    if (txn) {
      c.partial += *r;
      if (c.partial >= c.h.len && c.owed == 0 && !c.answered) {
        c.owed = c.h.len;
        c.answered = true;
      }
    } else if (mode == Mode::rr) {
      c.partial += *r;
      while (c.partial >= c.h.len) {
        c.partial -= c.h.len;
        c.owed += c.h.len;
        ++c.txns;
      }
    }
  }

  // Output: responses owed (rr, crr_txn) or the stream (recv).
  auto send_some = [&](std::uint64_t limit) -> bool {  // false: the connection was dropped
    while (limit > 0) {
      // recv writes `len` bytes at a time, as the client asked (iperf -l).
      const std::size_t most = mode == Mode::recv ? std::min<std::size_t>(c.h.len, payload_.size()) : payload_.size();
      auto chunk =
          std::span<const std::uint8_t>(payload_).first(static_cast<std::size_t>(std::min<std::uint64_t>(limit, most)));
      auto r = net_.send(s, chunk);
      if (!r) {
        if (would_block(r.error())) {
          set_want_write(c, true);
          return true;
        }
        drop(s, now, errc_message(r.error()));
        return false;
      }
      limit -= *r;
      if (mode == Mode::recv) c.bytes += *r;
      if (mode != Mode::recv) c.owed -= *r;
    }
    set_want_write(c, false);
    return true;
  };

  if (txn) {
    if (c.owed > 0 && !send_some(c.owed)) return;
    if (c.answered && c.owed == 0) {
      // Answered: count it for the running crr test, and close first.
      if (auto it = conns_.find(active_); it != conns_.end() && static_cast<Mode>(it->second.h.kind) == Mode::crr)
        ++it->second.txns;
      return drop(s, now, "");
    }
    if (eof) return drop(s, now, "");
    return;
  }
  switch (mode) {
    case Mode::send:
    case Mode::crr:
      if (!eof) return;
      finish_test(c, now);
      return serve(s, now);  // sends the Result, then closes
    case Mode::rr:
      if (c.owed > 0 && !send_some(c.owed)) return;
      if (!eof || c.owed > 0) return;  // the Result goes after every response
      finish_test(c, now);
      return serve(s, now);
    case Mode::recv:
      if (eof) return drop(s, now, "the client closed the connection before the end");
      if (now >= c.end) {
        // The duration is over: end of stream after what is queued.
        c.stopped = now;
        return drop(s, now, "");
      }
      send_some(std::numeric_limits<std::uint64_t>::max() / 2);
      return;
  }
}

// The client's end of stream on a send, rr or crr test: the Result.
void PerfServer::finish_test(Conn& c, Instant now) {
  c.stopped = now;
  ServerResult r;
  r.bytes = c.bytes;
  r.transactions = c.txns;
  r.elapsed_us =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now - c.start).count());
  queue(c, encode(r));
  c.close_when_flushed = true;
  end_test(c, now, "");
}

void PerfServer::on_header(Conn& c, Instant now) {
  auto h = decode_header(c.hdr);
  if (!h) {
    if (note_) note_(fmt::format("{}: not a weft perf header (version {}); refused", c.peer.to_string(), c.hdr[4]));
    queue(c, encode_ack(AckStatus::bad_header));
    c.close_when_flushed = true;
    return;
  }
  c.h = *h;
  if (h->kind == kKindCrrTxn) {
    auto it = conns_.find(active_);
    if (it == conns_.end() || static_cast<Mode>(it->second.h.kind) != Mode::crr) {
      drop(c.sock, now, "");  // no crr test is running: a stray
      return;
    }
    c.st = Conn::St::running;
    if (payload_.size() < h->len) {
      payload_.resize(h->len);
      fill_pattern(payload_);
    }
    return;
  }
  if (active_ >= 0) {
    if (note_) {
      const auto& a = conns_.at(active_);
      note_(fmt::format("{}: refused, busy with the test from {}", c.peer.to_string(), a.peer.to_string()));
    }
    queue(c, encode_ack(AckStatus::busy));
    c.close_when_flushed = true;
    return;
  }
  active_ = c.sock;
  c.is_test = true;
  c.st = Conn::St::running;
  c.start = now;
  c.end = now + std::chrono::milliseconds(h->duration_ms);
  const std::size_t want = static_cast<Mode>(h->kind) == Mode::recv ? h->len : std::min<std::size_t>(h->len, kReadBuf);
  if (payload_.size() < want) {
    payload_.resize(want);
    fill_pattern(payload_);
  }
  queue(c, encode_ack(AckStatus::ok));
  if (static_cast<Mode>(h->kind) == Mode::recv) set_want_write(c, true);
  if (on_begin_) on_begin_(describe(c, now));
}

void PerfServer::on_time(Instant now) {
  // A recv test ends by the clock, even while the client's window is shut.
  auto it = conns_.find(active_);
  if (it != conns_.end() && static_cast<Mode>(it->second.h.kind) == Mode::recv && now >= it->second.end)
    serve(active_, now);
}

std::optional<Instant> PerfServer::deadline() const {
  auto it = conns_.find(active_);
  if (it != conns_.end() && static_cast<Mode>(it->second.h.kind) == Mode::recv) return it->second.end;
  return std::nullopt;
}

}  // namespace weft::perf
