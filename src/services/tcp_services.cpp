#include "services/tcp_services.hpp"

#include <algorithm>
#include <cstring>
#include <optional>
#include <system_error>

namespace weft {

namespace {

constexpr std::size_t kChargenPeriod = 95 * 74;  // 95 lines of 72 characters + CR LF
constexpr std::size_t kChunk = 64 * 1024;        // most bytes handed to send() at once

bool would_block(std::errc e) { return e == std::errc::resource_unavailable_try_again; }

// Copies the bytes of (a, b), in order, into (x, y) as far as they fit;
// returns how many.
std::size_t copy_spans(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b, std::span<std::uint8_t> x,
                       std::span<std::uint8_t> y) {
  std::size_t done = 0;
  for (std::span<const std::uint8_t> from : {a, b}) {
    while (!from.empty()) {
      std::span<std::uint8_t>& to = x.empty() ? y : x;
      if (to.empty()) return done;
      const std::size_t n = std::min(from.size(), to.size());
      std::memcpy(to.data(), from.data(), n);
      from = from.subspan(n);
      to = to.subspan(n);
      done += n;
    }
  }
  return done;
}

}  // namespace

TcpServices::TcpServices(Stack& stack, std::function<std::string()> daytime_text)
    : stack_(stack), daytime_text_(std::move(daytime_text)) {
  chargen_table_.resize(kChargenPeriod + kChunk);
  ChargenStream s;
  s.fill(chargen_table_);
}

Result<std::unique_ptr<TcpServices>> TcpServices::start(Stack& stack, ServiceSet set,
                                                        std::function<std::string()> daytime_text) {
  std::unique_ptr<TcpServices> svc(new TcpServices(stack, std::move(daytime_text)));
  TcpLayer& tcp = stack.tcp();
  for (const ServiceInfo& s : kServices) {
    if (!set.has(s.kind)) continue;
    SocketId id = tcp.open();
    Status st = tcp.bind(id, Endpoint{Ipv4Addr::any(), Port{s.port}});
    if (st) st = tcp.listen(id, kBacklog);
    if (!st) {
      (void)tcp.close(id, Instant{});  // a socket just opened: close cannot fail
      return st.error();               // ~TcpServices closes the listeners already open
    }
    svc->listeners_.emplace_back(id, s.kind);
  }
  return svc;
}

TcpServices::~TcpServices() {
  // The host is going away: connections end with RST (no one will finish
  // a graceful close), listeners close.
  for (auto& [id, c] : conns_) (void)tcp().abort(id, last_now_);         // our own connections: abort cannot fail
  for (auto& [id, kind] : listeners_) (void)tcp().close(id, last_now_);  // our own listeners: close cannot fail
}

bool TcpServices::on_event(SocketId id, Instant now) {
  last_now_ = now;
  for (auto& [lid, kind] : listeners_)
    if (lid == id) {
      accept_all(id, kind, now);
      return true;
    }
  auto it = conns_.find(id);
  if (it == conns_.end()) return false;
  (void)serve(id, it->second, now);  // whether it ended: the connection's own event says so again
  return true;
}

void TcpServices::accept_all(SocketId listener, Service kind, Instant now) {
  for (;;) {
    auto a = tcp().accept(listener);
    if (!a) return;  // EAGAIN: the queue is empty
    const SocketId id = a->id;
    auto [it, inserted] = conns_.try_emplace(id);
    if (!inserted) it->second = Conn{};  // cannot happen: ids are unique while open
    Conn& c = it->second;
    c.kind = kind;
    ++ctr(kind).connections;
    ++ctr(kind).active;
    if (kind == Service::daytime) {
      c.out = daytime_text_ ? daytime_text_() : std::string{};
      c.out += "\r\n";
    }
    // Data may have arrived with the handshake's last ACK: serve at once.
    (void)serve(id, c, now);  // whether it ended: the connection's own event says so again
  }
}

bool TcpServices::serve(SocketId id, Conn& c, Instant now) {
  switch (c.kind) {
    case Service::echo:
      return serve_echo(id, c, now);
    case Service::discard:
      return serve_discard(id, c, now);
    case Service::daytime:
      return serve_daytime(id, c, now);
    case Service::chargen:
      return serve_chargen(id, c, now);
  }
  return true;
}

void TcpServices::finish(SocketId id, Conn& c, bool error, Instant now) {
  TcpServiceCounters& k = ctr(c.kind);
  if (error) {
    // Reset or timed out: nothing left to say; frees the socket (RST only
    // if the connection were still synchronized).
    ++k.resets;
    (void)tcp().abort(id, now);  // the connection ended already: abort only frees it
  } else {
    // FIN after everything queued; the layer finishes the close alone.
    ++k.closed;
    (void)tcp().close(id, now);  // our own connection: close cannot fail
  }
  --k.active;
  conns_.erase(id);
}

// The bytes are dropped in the receive ring (consume): nothing is copied
// only to be thrown away.
TcpServices::Input TcpServices::drain_input(SocketId id, Conn& c, Instant now) {
  for (;;) {
    auto r = tcp().consume(id, static_cast<std::size_t>(-1), now);
    if (!r) return would_block(r.error()) ? Input::more : Input::error;
    if (r->eof) return Input::eof;
    ctr(c.kind).bytes_in += r->len;
  }
}

// RFC 862: "Once a connection is established any data received is sent
// back. This continues until the calling user terminates the connection."
// Ring to ring: the received bytes, in place, are copied straight into the
// send ring's room, and only what it took is consumed; with the send
// buffer full, bytes stay in the receive ring and its window closes. One
// copy per byte, the one a send has to make.
bool TcpServices::serve_echo(SocketId id, Conn& c, Instant now) {
  TcpServiceCounters& k = ctr(c.kind);
  for (;;) {
    bool called = false, full = false;
    std::optional<std::errc> send_error;
    auto r = tcp().read_with(
        id,
        [&](std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
          called = true;
          const std::size_t in = a.size() + b.size();
          auto s = tcp().write_with(
              id, [&](std::span<std::uint8_t> x, std::span<std::uint8_t> y) { return copy_spans(a, b, x, y); }, now,
              /*more=*/false, in);
          if (!s) {
            send_error = s.error();
            return std::size_t{0};
          }
          full = *s < in;
          return *s;
        },
        now);
    if (!r) {
      if (would_block(r.error())) return true;
      finish(id, c, true, now);
      return false;
    }
    if (!called) {
      // The peer's FIN, after everything before it was echoed: our FIN
      // follows the echoed bytes (half-close done in order).
      finish(id, c, false, now);
      return false;
    }
    if (send_error) {
      if (would_block(*send_error)) return true;  // wait for writable
      finish(id, c, true, now);
      return false;
    }
    k.bytes_in += r->len;
    k.bytes_out += r->len;
    if (full) return true;  // send buffer full
  }
}

bool TcpServices::drain_or_finish(SocketId id, Conn& c, Instant now) {
  switch (drain_input(id, c, now)) {
    case Input::more:
      return false;
    case Input::eof:
      finish(id, c, false, now);
      return true;
    case Input::error:
      finish(id, c, true, now);
      return true;
  }
  return false;
}

// RFC 863: "simply throw away any data it receives."
bool TcpServices::serve_discard(SocketId id, Conn& c, Instant now) { return !drain_or_finish(id, c, now); }

// RFC 867: "send the current date and time as a character string ... and
// close the connection"; whatever the client sends is thrown away.
bool TcpServices::serve_daytime(SocketId id, Conn& c, Instant now) {
  TcpServiceCounters& k = ctr(c.kind);
  if (drain_input(id, c, now) == Input::error) {
    finish(id, c, true, now);
    return false;
  }
  while (c.out_off < c.out.size()) {
    auto rest = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(c.out.data()), c.out.size())
                    .subspan(c.out_off);
    auto s = tcp().send(id, rest, now);
    if (!s) {
      if (would_block(s.error())) return true;
      finish(id, c, true, now);
      return false;
    }
    c.out_off += *s;
    k.bytes_out += *s;
  }
  finish(id, c, false, now);
  return false;
}

// RFC 864: "Once a connection is established the server shall start
// sending data ... until the calling user terminates the connection";
// received data is thrown away. Sends only what the send buffer takes.
bool TcpServices::serve_chargen(SocketId id, Conn& c, Instant now) {
  TcpServiceCounters& k = ctr(c.kind);
  if (drain_or_finish(id, c, now)) return false;
  for (;;) {
    const std::size_t off = static_cast<std::size_t>(c.chargen_pos % kChargenPeriod);
    auto s = tcp().send(id, std::span<const std::uint8_t>(chargen_table_).subspan(off, kChunk), now);
    if (!s) {
      if (would_block(s.error())) return true;
      finish(id, c, true, now);
      return false;
    }
    c.chargen_pos += *s;
    k.bytes_out += *s;
    if (*s < kChunk) return true;  // send buffer full: wait for writable
  }
}

}  // namespace weft
