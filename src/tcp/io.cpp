// The byte API (tcp.hpp): send and recv, which copy, and consume,
// read_with and write_with, in place: the application reads and fills the
// rings' own spans, so a byte crosses the API with no copy of the layer's
// own. Each in-place call shares recv()'s or send()'s other half
// (recv_without_data and consumed, sendable and queued), so that the
// segments, window updates and ACKs are the same whichever way the bytes
// are moved.
#include <algorithm>

#include "tcp/tcp.hpp"

namespace weft {

using tcp::TcpState;

Result<tcp::Tcb*> TcpLayer::sendable(SocketId id) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  if (t->pending_error) {
    const auto e = *t->pending_error;
    t->pending_error.reset();
    return e;
  }
  if (t->reset) return std::errc::broken_pipe;
  switch (t->state) {
    case TcpState::closed:
      return t->tuple.remote.port.is_zero() ? std::errc::not_connected : std::errc::broken_pipe;
    case TcpState::listen:
    case TcpState::syn_sent:
    case TcpState::syn_received:
      // Linux queues data in SYN-SENT when blocking; a non-blocking socket
      // sees EAGAIN. ENOTCONN says "not yet" for a listener.
      return t->state == TcpState::listen ? std::errc::not_connected : std::errc::resource_unavailable_try_again;
    case TcpState::established:
    case TcpState::close_wait:
      break;
    case TcpState::fin_wait_1:
    case TcpState::fin_wait_2:
    case TcpState::closing:
    case TcpState::last_ack:
    case TcpState::time_wait:
      return std::errc::broken_pipe;
  }
  if (t->fin_queued) return std::errc::broken_pipe;
  return t;
}

std::size_t TcpLayer::queued(Tcb& t, std::size_t n, Instant now, bool more) {
  if (t.snd_una == t.snd_max) t.last_progress = now;
  output(t, now, more ? Push::more : Push::normal);
  rearm(t);
  return n;
}

Result<std::size_t> TcpLayer::send(SocketId id, std::span<const std::uint8_t> data, Instant now, bool more) {
  const Entry entry(*this);
  auto t = sendable(id);
  if (!t) return t.error();
  if (data.empty()) return std::size_t{0};
  Tcb& c = **t;
  const std::size_t room = snd_room(c);
  if (room == 0) return std::errc::resource_unavailable_try_again;
  return queued(c, c.data->snd.write(data.first(std::min(room, data.size()))), now, more);
}

std::optional<Result<TcpRecv>> TcpLayer::recv_without_data(Tcb* t, bool peek) {
  if (!t) return std::errc::bad_file_descriptor;  // user(): gone, stale or closed by the user
  if (t->data && !t->data->rcv.empty()) return std::nullopt;
  if (t->pending_error) {
    const auto e = *t->pending_error;
    if (!peek) t->pending_error.reset();
    return e;
  }
  if (t->reset) return std::errc::connection_reset;
  if (t->fin_received || t->rd_shut) return TcpRecv{0, true};
  switch (t->state) {
    case TcpState::closed:
    case TcpState::listen:
      return t->tuple.remote.port.is_zero() ? Result<TcpRecv>(std::errc::not_connected) : TcpRecv{0, true};
    case TcpState::syn_sent:
    case TcpState::syn_received:
    case TcpState::established:
    case TcpState::fin_wait_1:
    case TcpState::fin_wait_2:
      return std::errc::resource_unavailable_try_again;
    case TcpState::close_wait:
    case TcpState::closing:
    case TcpState::last_ack:
    case TcpState::time_wait:
      return TcpRecv{0, true};
  }
  return std::errc::resource_unavailable_try_again;  // not reached: every state is handled
}

std::size_t TcpLayer::consumed(Tcb& t, std::size_t n, Instant now) {
  t.data->rcv.consume(n);
  if (t.state == TcpState::time_wait && t.data->rcv.empty()) {
    // The last unread bytes of a connection in TIME-WAIT: now its buffers can go.
    t.snd_buf_seq = t.data_end();
    t.data.reset();
    t.cc.reset();
    return n;
  }
  maybe_window_update(t, now);
  rearm(t);
  return n;
}

Result<TcpRecv> TcpLayer::recv(SocketId id, std::span<std::uint8_t> buf, Instant now, bool peek) {
  const Entry entry(*this);
  Tcb* t = user(id);
  if (auto r = recv_without_data(t, peek)) return std::move(*r);
  if (buf.empty()) return TcpRecv{0};
  const std::size_t n = t->data->rcv.peek(0, buf);
  if (peek) return TcpRecv{n};
  return TcpRecv{consumed(*t, n, now)};
}

Result<TcpRecv> TcpLayer::consume(SocketId id, std::size_t n, Instant now) {
  const Entry entry(*this);
  Tcb* t = user(id);
  if (auto r = recv_without_data(t, /*peek=*/false)) return std::move(*r);
  if (n == 0) return TcpRecv{0};
  return TcpRecv{consumed(*t, std::min(n, t->data->rcv.size()), now)};
}

Result<tcp::ReadSpans> TcpLayer::recv_spans(SocketId id) {
  Tcb* t = user(id);
  // As recv(): a pending error is reported (and cleared) only when there
  // is nothing to read.
  if (auto r = recv_without_data(t, /*peek=*/false)) {
    if (!*r) return r->error();
    return tcp::ReadSpans{};  // end of stream
  }
  return t->data->rcv.readable();
}

Result<tcp::WriteSpans> TcpLayer::send_spans(SocketId id, std::size_t max) {
  auto t = sendable(id);
  if (!t) return t.error();
  if (max == 0) return tcp::WriteSpans{};  // as send() of nothing: 0, whatever the room
  Tcb& c = **t;
  const std::size_t room = snd_room(c);
  if (room == 0) return std::errc::resource_unavailable_try_again;
  return c.data->snd.writable(std::min(room, max));
}

Result<std::size_t> TcpLayer::send_filled(SocketId id, std::size_t n, Instant now, bool more) {
  const Entry entry(*this);
  Tcb* t = user(id);
  // f must not have closed s (tcp.hpp); n is at most what send_spans offered.
  if (!t || !t->data) return std::errc::bad_file_descriptor;
  if (n == 0) return std::size_t{0};
  t->data->snd.commit(n);
  return queued(*t, n, now, more);
}

}  // namespace weft
