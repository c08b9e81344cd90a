// The TCP socketpair (docs/client-design.md): the filler that keeps a
// connecting socket unwritable, the pump both ways (TCP -> client,
// client -> TCP), connections handed to a listener's process, and close(2)
// semantics.
#include "host/daemon_impl.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "control/fdpass.hpp"


namespace weft {

using control::AcceptRecord;
using control::DgramHeader;
using control::Op;
using control::Request;
using control::Response;
using control::SockKind;
using namespace daemon_detail;


// --------------------------------------------------------- the data pump
// A TCP socket's descriptor must not be writable before the handshake
// completes (a non-blocking connect reports completion as writability).
// Shrinking the client end's send buffer to the minimum and filling it
// does that; the filler is discarded and the buffer restored once the
// connection is established (or has failed).
void Daemon::Impl::fill(Sock& s) {
  int one = 1;
  ::setsockopt(s.cfd, SOL_SOCKET, SO_SNDBUF, &one, sizeof one);
  // Chunks, not single bytes: each send is a system call, and two 1 KiB
  // chunks fill the minimum buffer where single bytes took six.
  static constexpr std::uint8_t kZeros[kFillChunk] = {};
  for (;;) {
    ssize_t n = ::send(s.cfd, kZeros, sizeof kZeros, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) break;
    s.filler += static_cast<std::size_t>(n);
  }
}

void Daemon::Impl::unfill(Sock& s) {
  while (s.filler > 0) {
    ssize_t n = ::recv(s.dfd, buf.data(), std::min(s.filler, buf.size()), MSG_DONTWAIT);
    if (n <= 0) break;
    s.filler -= static_cast<std::size_t>(n);
  }
  s.filler = 0;
  int sz = static_cast<int>(kPairBuffer);
  ::setsockopt(s.cfd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
}

void Daemon::Impl::update_interest(Sock& s) {
  std::uint32_t m = 0;
  if (s.kind == SockKind::tcp) {
    if (s.st == St::established && s.want_in && !s.client_eof && !s.dead) m |= EPOLLIN;
  } else {
    m |= EPOLLIN;
  }
  if (s.want_out) m |= EPOLLOUT;
  if (m == s.mask) return;
  loop.modify(s.dfd, m, tag(kSock, s.handle));
  s.mask = m;
}

// The connection's stream ended (reset, timeout): the client's reads end,
// its writes fail, and `status` tells why.
void Daemon::Impl::end_stream(Sock& s, std::optional<std::errc> err) {
  if (err) s.end_err = err;
  ::shutdown(s.dfd, SHUT_RDWR);
  s.want_in = false;
  s.want_out = false;
  s.dead = true;
  update_interest(s);
}

// TCP -> client. Peek, write what the pair takes, consume that much: no
// staging copy per socket, and nothing is lost when the pair is full.
void Daemon::Impl::tcp_to_client(Sock& s) {
  auto& tcp = host.stack().tcp();
  while (!s.peer_eof_sent && !s.dead) {
    auto r = tcp.recv(s.sid, std::span<std::uint8_t>(buf.data(), kIoChunk), now, true);
    if (!r) {
      if (r.error() == std::errc::resource_unavailable_try_again) break;
      end_stream(s, r.error());
      return;
    }
    if (r->len == 0) {  // the peer's FIN: end of stream for the client
      ::shutdown(s.dfd, SHUT_WR);
      s.peer_eof_sent = true;
      break;
    }
    ssize_t w = ::send(s.dfd, buf.data(), r->len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s.want_out = true;
        break;
      }
      // EPIPE: the client shut its reading side; what arrives is dropped.
      w = static_cast<ssize_t>(r->len);
    }
    (void)tcp.recv(s.sid, std::span<std::uint8_t>(buf.data(), static_cast<std::size_t>(w)), now);  // consumes what the peek above returned: cannot fail
    if (static_cast<std::size_t>(w) < r->len) {
      s.want_out = true;
      break;
    }
  }
  update_interest(s);
}

// client -> TCP, within the free send buffer. While TCP has room
// (send_room), read that much from the pair, once, and hand it all over.
// With none, only peek at a byte: an end of stream still shows, send()
// says why it takes nothing (EAGAIN, EPIPE, an error), and the pair keeps
// its bytes.
void Daemon::Impl::client_to_tcp(Sock& s) {
  auto& tcp = host.stack().tcp();
  for (;;) {
    const std::size_t room = std::min(tcp.send_room(s.sid), kIoChunk);
    const bool peek = room == 0;
    const std::size_t want = peek ? 1 : room;
    ssize_t n = ::recv(s.dfd, buf.data(), want, MSG_DONTWAIT | (peek ? MSG_PEEK : 0));
    if (n < 0) break;  // EAGAIN
    if (n == 0) {      // the client shut down writing: FIN after its data
      s.client_eof = true;
      (void)tcp.shutdown(s.sid, Shutdown::write, now);  // fails only when the connection is gone, which end_stream reports
      break;
    }
    auto k = tcp.send(s.sid, std::span<const std::uint8_t>(buf.data(), static_cast<std::size_t>(n)), now);
    if (!k) {
      if (k.error() == std::errc::resource_unavailable_try_again) {
        s.want_in = false;  // until the TCP layer says writable
      } else {
        // The connection is gone; what the client writes is lost, as
        // with a kernel socket. Its next send sees EPIPE.
        end_stream(s, k.error() == std::errc::broken_pipe ? s.end_err : std::optional<std::errc>(k.error()));
        return;
      }
      break;
    }
    if (peek) (void)::recv(s.dfd, buf.data(), *k, MSG_DONTWAIT);  // what TCP took after all
    if (*k < static_cast<std::size_t>(n)) {
      s.want_in = false;
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
void Daemon::Impl::push_accepts(Sock& l) {
  auto& tcp = host.stack().tcp();
  auto it_client = clients.find(l.client);
  if (it_client == clients.end()) return;
  while (inq(l.cfd) / sizeof(AcceptRecord) < l.backlog) {
    if (tcp.pending_accepts(l.sid) == 0) break;
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
    auto a = tcp.accept(l.sid);
    if (!a) {
      ::close(p->dfd);
      ::close(p->cfd);
      break;
    }
    Sock s = new_sock(SockKind::tcp, *p, l.client);
    s.sid = a->id;
    s.st = St::established;
    tcp_sid[s.sid] = s.handle;
    auto local = tcp.local_endpoint(a->id).value_or(Endpoint{});
    AcceptRecord rec;
    rec.handle = s.handle;
    rec.local_addr = local.addr.value();
    rec.local_port = local.port.value();
    rec.peer_addr = a->peer.addr.value();
    rec.peer_port = a->peer.port.value();
    // The client's end travels with its record; the daemon keeps its own
    // (the duplicate of the client's end) as the original.
    if (control::send_with_fd(l.dfd, &rec, sizeof rec, p->cfd, MSG_DONTWAIT | MSG_NOSIGNAL) !=
        static_cast<ssize_t>(sizeof rec)) {
      ::close(p->dfd);
      ::close(p->cfd);
      tcp_sid.erase(a->id);
      (void)tcp.abort(a->id, now);  // the connection was just accepted: abort cannot fail
      break;
    }
    Sock& ref = adopt(std::move(s), it_client->second);
    l.pushed.push_back(ref.handle);
    while (l.pushed.size() > l.backlog) l.pushed.pop_front();
    tcp_to_client(ref);
    update_interest(ref);
  }
}

void Daemon::Impl::on_tcp_event(SocketId sid) {
  auto it = tcp_sid.find(sid);
  if (it == tcp_sid.end()) return;
  Sock& s = socks.at(it->second);
  auto& tcp = host.stack().tcp();
  std::uint32_t ev = tcp.events(sid);
  switch (s.st) {
    case St::connecting:
      if (ev & tcp_event::error) {
        auto e = tcp.take_error(sid);
        s.so_error = e;
        s.st = St::failed;
        unfill(s);
        end_stream(s, e);
      } else if (ev & tcp_event::writable) {
        s.st = St::established;
        unfill(s);
        s.want_in = true;
        tcp_to_client(s);
        client_to_tcp(s);
      }
      break;
    case St::listening:
      if (ev & tcp_event::readable) push_accepts(s);
      break;
    case St::established:
      tcp_to_client(s);
      // Writable matters only when the pair was left unread because the
      // send buffer was full; otherwise EPOLLIN interest is on and the
      // poll reports the client's bytes (an ACK making room would else
      // cost a read that finds nothing).
      if ((ev & tcp_event::writable) && !s.client_eof && !s.dead && !s.want_in) {
        s.want_in = true;
        client_to_tcp(s);
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
  if (s.kind == SockKind::tcp) {
    if (events & EPOLLOUT) {
      s.want_out = false;
      if (s.st == St::established) tcp_to_client(s);
      update_interest(s);
    }
    if ((events & EPOLLIN) && s.st == St::established) client_to_tcp(s);
    return;
  }
  if (events & EPOLLOUT) {
    s.want_out = false;
    deliver_dgrams(s);
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
  if (s.kind == SockKind::tcp) {
    tcp_sid.erase(s.sid);
    if (s.st == St::listening) {
      // Connections handed over but never accepted die with the listener.
      std::size_t waiting = inq(s.cfd) / sizeof(AcceptRecord);
      while (s.pushed.size() > waiting) s.pushed.pop_front();
      for (std::uint32_t child : s.pushed) {
        auto c = socks.find(child);
        if (c != socks.end()) {
          c->second.linger_zero = true;
          close_sock(child, true);
        }
      }
      (void)tcp.close(s.sid, now);  // our own socket: close cannot fail
    } else if (s.st == St::established) {
      std::size_t unread = inq(s.cfd) + tcp.info(s.sid).value_or(TcpInfo{}).recv_queue;
      if (reset_all || s.linger_zero || unread > 0) {
        ++counters.resets_on_close;
        (void)tcp.abort(s.sid, now);  // our own socket: abort cannot fail
      } else {
        if (!s.client_eof && !s.dead) {
          std::size_t pending = inq(s.dfd);
          if (pending > 0) {
            auto info = tcp.info(s.sid);
            (void)tcp.set_sndbuf(s.sid, info->send_queue + pending + tcp.config().sndbuf);  // growing cannot fail
            client_to_tcp(s);
          }
        }
        (void)tcp.close(s.sid, now);  // our own socket: close cannot fail
      }
    } else {
      (void)tcp.abort(s.sid, now);  // fresh, connecting, failed: nothing to flush
    }
  } else if (s.kind == SockKind::udp) {
    udp_sid.erase(s.sid);
    (void)host.stack().udp().close(s.sid);  // our own socket: close cannot fail
  } else {
    icmp_ident.erase(s.icmp_ident);
  }
  ::close(s.dfd);
  ::close(s.cfd);
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
