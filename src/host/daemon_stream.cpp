// The TCP socketpair (docs/client-design.md): the filler that keeps a
// connecting socket unwritable, the pump both ways (TCP -> client,
// client -> TCP), connections handed to a listener's process, and close(2)
// semantics.
#include "host/daemon_impl.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include "control/fdpass.hpp"

namespace weft {

using control::AcceptRecord;
using control::SockKind;
using namespace daemon_detail;
using Phase = StreamPair::Phase;

// --------------------------------------------------------- the data pump
// A TCP socket's descriptor must not be writable before the handshake
// completes (a non-blocking connect reports completion as writability).
// Shrinking the client end's send buffer to the minimum and filling it
// does that; the filler is discarded and the buffer restored once the
// connection is established (or has failed).
void Daemon::Impl::fill(Sock& s, StreamPair& t) { t.filler = s.cfd.block_writes(); }

void Daemon::Impl::unfill(Sock& s, StreamPair& t) {
  while (t.filler > 0) {
    ssize_t n = ::recv(s.dfd, buf.data(), std::min(t.filler, buf.size()), MSG_DONTWAIT);
    if (n <= 0) break;
    t.filler -= static_cast<std::size_t>(n);
  }
  t.filler = 0;
  s.cfd.allow_writes();
}

std::size_t ClientEnd::block_writes() {
  int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &one, sizeof one);
  // Chunks, not single bytes: each send is a system call, and two 1 KiB
  // chunks fill the minimum buffer where single bytes took six.
  static constexpr std::uint8_t kZeros[kFillChunk] = {};
  std::size_t filled = 0;
  for (;;) {
    ssize_t n = ::send(fd_, kZeros, sizeof kZeros, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) break;
    filled += static_cast<std::size_t>(n);
  }
  return filled;
}

void ClientEnd::allow_writes() {
  int sz = static_cast<int>(kPairBuffer);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
}

void ClientEnd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

// Only an open stream is read (and not once the client shut down writing,
// nor after the end); a listener's descriptor carries no data; a datagram
// pair is always read.
void Daemon::Impl::update_interest(Sock& s) {
  std::uint32_t m = 0;
  if (auto* t = std::get_if<StreamPair>(&s.as)) {
    if (t->phase == Phase::open && t->want_in && !t->client_eof && !t->dead) m |= EPOLLIN;
  } else if (!std::holds_alternative<Listener>(s.as)) {
    m |= EPOLLIN;
  }
  if (s.want_out) m |= EPOLLOUT;
  if (m == s.mask) return;
  loop.modify(s.dfd, m, tag(kSock, s.handle));
  s.mask = m;
}

// The connection's stream ended (reset, timeout): the client's reads end,
// its writes fail, and `status` tells why.
void Daemon::Impl::end_stream(Sock& s, StreamPair& t, std::optional<std::errc> err) {
  if (err) t.end_err = err;
  ::shutdown(s.dfd, SHUT_RDWR);
  t.want_in = false;
  s.want_out = false;
  t.dead = true;
  update_interest(s);
}

// TCP -> client, with no copy of the daemon's own: the receive ring's
// readable bytes (one span, or two where they wrap) go to the pair in one
// sendmsg, and only what the pair took is consumed, so nothing is lost
// when it is full (docs/copies.md).
void Daemon::Impl::tcp_to_client(Sock& s, StreamPair& t) {
  auto& tcp = host.stack().tcp();
  while (!t.peer_eof_sent && !t.dead) {
    if (tcp.readable(t.sid) == 0) {
      // Nothing to move: recv's peek says why (EAGAIN, the end, an error)
      // and, unlike read_with, leaves a pending error for SO_ERROR.
      auto r = tcp.recv(t.sid, std::span<std::uint8_t>(), now, /*peek=*/true);
      if (!r) {
        if (r.error() == std::errc::resource_unavailable_try_again) break;
        end_stream(s, t, r.error());
        return;
      }
      if (!r->eof) break;  // not reached: nothing readable and no error is EAGAIN or the end
      // The peer's FIN: end of stream for the client.
      ::shutdown(s.dfd, SHUT_WR);
      t.peer_eof_sent = true;
      break;
    }
    std::size_t len = 0;  // what the ring offered
    bool full = false;    // the pair took nothing (EAGAIN)
    auto r = tcp.read_with(
        t.sid,
        [&](std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) -> std::size_t {
          len = a.size() + b.size();
          // sendmsg only reads the iovecs' bytes; iov_base is not const in the C API.
          iovec iov[2] = {{const_cast<std::uint8_t*>(a.data()), a.size()},
                          {const_cast<std::uint8_t*>(b.data()), b.size()}};
          msghdr m{};
          m.msg_iov = iov;
          m.msg_iovlen = b.empty() ? 1 : 2;
          const ssize_t w = ::sendmsg(s.dfd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
          if (w >= 0) return static_cast<std::size_t>(w);
          if (errno == EAGAIN || errno == EWOULDBLOCK) {
            full = true;
            return 0;
          }
          // EPIPE: the client shut its reading side; what arrives is dropped.
          return len;
        },
        now);
    if (!r) {  // not with bytes readable, but as recv() says
      if (r.error() == std::errc::resource_unavailable_try_again) break;
      end_stream(s, t, r.error());
      return;
    }
    if (full || r->len < len) {
      s.want_out = true;
      break;
    }
  }
  update_interest(s);
}

// client -> TCP, within the free send buffer. While TCP has room
// (send_room), read that much from the pair, once, straight into the send
// ring's free spans (write_with, one recvmsg), and queue it all. With none,
// or when TCP refuses bytes, only peek at a byte: an end of stream still
// shows, send() says why it takes nothing (EAGAIN, EPIPE, an error), and
// the pair keeps its bytes.
void Daemon::Impl::client_to_tcp(Sock& s, StreamPair& t) {
  auto& tcp = host.stack().tcp();
  for (;;) {
    const std::size_t room = std::min(tcp.send_room(t.sid), kIoChunk);
    ssize_t n = -1;        // what the pair gave: < 0 nothing yet, 0 its end
    std::size_t want = 1;  // what was asked of it
    bool peeked = true;    // n is a peek at one byte into buf
    Result<std::size_t> k = std::size_t{0};
    if (room > 0) {
      k = tcp.write_with(
          t.sid,
          [&](std::span<std::uint8_t> a, std::span<std::uint8_t> b) -> std::size_t {
            peeked = false;
            want = a.size() + b.size();
            iovec iov[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
            msghdr m{};
            m.msg_iov = iov;
            m.msg_iovlen = b.empty() ? 1 : 2;
            n = ::recvmsg(s.dfd, &m, MSG_DONTWAIT);
            return n > 0 ? static_cast<std::size_t>(n) : 0;
          },
          now, /*more=*/false, room);
    }
    // TCP refused before reading (its error is in k, and was reported
    // once), or had no room: a peek shows the end or whether bytes wait.
    if (peeked) n = ::recv(s.dfd, buf.data(), 1, MSG_DONTWAIT | MSG_PEEK);
    if (n < 0) break;  // EAGAIN
    if (n == 0) {      // the client shut down writing: FIN after its data
      t.client_eof = true;
      (void)tcp.shutdown(t.sid, Shutdown::write,
                         now);  // fails only when the connection is gone, which end_stream reports
      break;
    }
    if (peeked && room == 0)
      k = tcp.send(t.sid, std::span<const std::uint8_t>(buf.data(), static_cast<std::size_t>(n)), now);
    if (!k) {
      if (k.error() == std::errc::resource_unavailable_try_again) {
        t.want_in = false;  // until the TCP layer says writable
      } else {
        // The connection is gone; what the client writes is lost, as
        // with a kernel socket. Its next send sees EPIPE.
        end_stream(s, t, k.error() == std::errc::broken_pipe ? t.end_err : std::optional<std::errc>(k.error()));
        return;
      }
      break;
    }
    if (peeked) (void)::recv(s.dfd, buf.data(), *k, MSG_DONTWAIT);  // what TCP took after all
    if (*k < static_cast<std::size_t>(n)) {
      t.want_in = false;
      break;
    }
    // A short read took all the pair held: stop without a call that
    // would only say EAGAIN. The descriptor's interest is level-triggered,
    // so bytes or an EOF arriving after this wake the loop again.
    if (static_cast<std::size_t>(n) < want) break;
  }
  update_interest(s);
}

// Connections established on a listener are handed to the client at
// once, each as an AcceptRecord with its descriptor, up to the backlog:
// the listener's descriptor is readable exactly while one waits.
void Daemon::Impl::push_accepts(Sock& l, Listener& ls) {
  auto& tcp = host.stack().tcp();
  auto it_client = clients.find(l.client);
  if (it_client == clients.end()) return;
  while (l.cfd.unread() / sizeof(AcceptRecord) < ls.backlog) {
    if (tcp.pending_accepts(ls.sid) == 0) break;
    // At the socket limit or out of descriptors, the connection waits in
    // the listener's queue (as it waits in a kernel listener's when the
    // process does not call accept) until descriptors_freed().
    std::optional<NewPair> p;
    if (socks.size() < cfg.max_sockets)
      if (auto r = open_pair(SockKind::tcp); r) p = *r;
    if (!p) {
      if (socks.size() >= cfg.max_sockets) ++counters.socket_limit_hits;
      if (std::find(accept_waiting.begin(), accept_waiting.end(), l.handle) == accept_waiting.end())
        accept_waiting.push_back(l.handle);
      if (!resume_at) resume_at = now + std::chrono::seconds(1);
      break;
    }
    auto a = tcp.accept(ls.sid);
    if (!a) {
      ::close(p->dfd);
      ::close(p->cfd);
      break;
    }
    Sock s = new_sock(*p, l.client);
    s.as = StreamPair{.sid = a->id, .phase = Phase::open};
    AcceptRecord rec;
    auto local = tcp.local_endpoint(a->id).value_or(Endpoint{});
    rec.handle = s.handle;
    rec.local_addr = local.addr.value();
    rec.local_port = local.port.value();
    rec.peer_addr = a->peer.addr.value();
    rec.peer_port = a->peer.port.value();
    // The client's end travels with its record; the daemon keeps the
    // original as its duplicate of the client's end.
    if (control::send_with_fd(l.dfd, &rec, sizeof rec, p->cfd, MSG_DONTWAIT | MSG_NOSIGNAL) !=
        static_cast<ssize_t>(sizeof rec)) {
      ::close(s.dfd);               // and s.cfd, with s
      (void)tcp.abort(a->id, now);  // the connection was just accepted: abort cannot fail
      break;
    }
    tcp_sid[a->id] = s.handle;
    Sock& ref = adopt(std::move(s), it_client->second);
    ls.pushed.push_back(ref.handle);
    while (ls.pushed.size() > ls.backlog) ls.pushed.pop_front();
    tcp_to_client(ref, std::get<StreamPair>(ref.as));
    update_interest(ref);
  }
}

void Daemon::Impl::on_tcp_event(SocketId sid) {
  auto it = tcp_sid.find(sid);
  if (it == tcp_sid.end()) return;
  Sock& s = socks.at(it->second);
  auto& tcp = host.stack().tcp();
  std::uint32_t ev = tcp.events(sid);
  if (auto* ls = std::get_if<Listener>(&s.as)) {
    if (ev & tcp_event::readable) push_accepts(s, *ls);
    return;
  }
  auto* tp = std::get_if<StreamPair>(&s.as);
  if (!tp) return;
  StreamPair& t = *tp;
  switch (t.phase) {
    case Phase::connecting:
      if (ev & tcp_event::error) {
        auto e = tcp.take_error(sid);
        t.so_error = e;
        t.phase = Phase::failed;
        unfill(s, t);
        end_stream(s, t, e);
      } else if (ev & tcp_event::writable) {
        t.phase = Phase::open;
        unfill(s, t);
        t.want_in = true;
        tcp_to_client(s, t);
        client_to_tcp(s, t);
      }
      break;
    case Phase::open:
      tcp_to_client(s, t);
      // Writable matters only when the pair was left unread because the
      // send buffer was full; otherwise EPOLLIN interest is on and the
      // poll reports the client's bytes (an ACK making room would else
      // cost a read that finds nothing).
      if ((ev & tcp_event::writable) && !t.client_eof && !t.dead && !t.want_in) {
        t.want_in = true;
        client_to_tcp(s, t);
      }
      break;
    default:
      break;
  }
}

void Daemon::Impl::on_sock(std::uint32_t h, std::uint32_t events) {
  auto it = socks.find(h);
  if (it == socks.end()) return;
  Sock& s = it->second;
  if (auto* t = std::get_if<StreamPair>(&s.as)) {
    if (events & EPOLLOUT) {
      s.want_out = false;
      if (t->phase == Phase::open) tcp_to_client(s, *t);
      update_interest(s);
    }
    if ((events & EPOLLIN) && t->phase == Phase::open) client_to_tcp(s, *t);
    return;
  }
  if (std::holds_alternative<Listener>(s.as)) {
    if (events & EPOLLOUT) {
      s.want_out = false;
      update_interest(s);
    }
    return;
  }
  if (events & EPOLLOUT) {
    s.want_out = false;
    if (auto* u = std::get_if<DatagramPair>(&s.as)) deliver_dgrams(s, *u);
  }
  if (events & EPOLLIN) send_dgrams(s);
}

// ------------------------------------------------------------- closing
// Closes as close(2) on a kernel socket: RST when unread data would be
// discarded or SO_LINGER is 0, else FIN after every byte the process wrote
// (those still in the pair are moved into the TCP send buffer first, which
// grows to take them: the kernel had accepted them already).
void Daemon::Impl::close_sock(std::uint32_t h, bool reset_all) {
  auto it = socks.find(h);
  if (it == socks.end()) return;
  want_trim();
  Sock& s = it->second;
  auto& tcp = host.stack().tcp();
  if (auto* ls = std::get_if<Listener>(&s.as)) {
    tcp_sid.erase(ls->sid);
    // Connections handed over but never accepted die with the listener.
    std::size_t waiting = s.cfd.unread() / sizeof(AcceptRecord);
    while (ls->pushed.size() > waiting) ls->pushed.pop_front();
    for (std::uint32_t child : ls->pushed) {
      auto c = socks.find(child);
      if (c != socks.end()) {
        if (auto* ct = std::get_if<StreamPair>(&c->second.as)) ct->linger_zero = true;
        close_sock(child, true);
      }
    }
    (void)tcp.close(ls->sid, now);  // our own socket: close cannot fail
  } else if (auto* t = std::get_if<StreamPair>(&s.as)) {
    tcp_sid.erase(t->sid);
    if (t->phase == Phase::open) {
      std::size_t unread = s.cfd.unread() + tcp.info(t->sid).value_or(TcpInfo{}).recv_queue;
      if (reset_all || t->linger_zero || unread > 0) {
        ++counters.resets_on_close;
        (void)tcp.abort(t->sid, now);  // our own socket: abort cannot fail
      } else {
        if (!t->client_eof && !t->dead) {
          std::size_t pending = inq(s.dfd);
          if (pending > 0) {
            auto info = tcp.info(t->sid);
            (void)tcp.set_sndbuf(t->sid, info->send_queue + pending + tcp.config().sndbuf);  // growing cannot fail
            client_to_tcp(s, *t);
          }
        }
        (void)tcp.close(t->sid, now);  // our own socket: close cannot fail
      }
    } else {
      (void)tcp.abort(t->sid, now);  // fresh, connecting, failed: nothing to flush
    }
  } else if (auto* u = std::get_if<DatagramPair>(&s.as)) {
    udp_sid.erase(u->sid);
    (void)host.stack().udp().close(u->sid);  // our own socket: close cannot fail
  } else {
    icmp_ident.erase(std::get<EchoPair>(s.as).ident);
  }
  ::close(s.dfd);
  s.cfd.reset();
  if (auto c = clients.find(s.client); c != clients.end()) {
    auto& hs = c->second.handles;
    if (auto p = std::find(hs.begin(), hs.end(), h); p != hs.end()) {
      *p = hs.back();
      hs.pop_back();
    }
  }
  socks.erase(it);
  --counters.sockets_current;
  descriptors_freed();
}

}  // namespace weft
