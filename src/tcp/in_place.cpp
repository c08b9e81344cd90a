// The byte API in place (tcp.hpp: consume, read_with, write_with): the
// application reads and fills the rings' own spans, so a byte crosses the
// API with no copy of the layer's own. Each call is recv()'s or send()'s
// other half, shared with it (tcp.cpp: recv_without_data and consumed,
// sendable and queued), so that the segments, window updates and ACKs are
// the same whichever way the bytes are moved.
#include <algorithm>

#include "tcp/tcp.hpp"

namespace weft {

Result<TcpRecv> TcpLayer::consume(SocketId id, std::size_t n, Instant now) {
  Tcb* t = get(id);
  if (auto r = recv_without_data(t, /*peek=*/false)) return std::move(*r);
  if (n == 0) return TcpRecv{0};
  return TcpRecv{consumed(*t, std::min(n, t->data->rcv.size()), now)};
}

Result<tcp::ReadSpans> TcpLayer::recv_spans(SocketId id) {
  Tcb* t = get(id);
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
  Tcb* t = get(id);
  // f must not have closed s (tcp.hpp); n is at most what send_spans offered.
  if (!t || t->user_closed || !t->data) return std::errc::bad_file_descriptor;
  if (n == 0) return std::size_t{0};
  t->data->snd.commit(n);
  return queued(*t, n, now, more);
}

}  // namespace weft
