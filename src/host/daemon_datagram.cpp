// The UDP and ICMP socketpairs: SOCK_SEQPACKET, one datagram per record,
// each behind a DgramHeader (control/control.hpp) that carries its address
// or an asynchronous error.
#include "host/daemon_impl.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace weft {

using control::DgramHeader;
using namespace daemon_detail;

// ------------------------------------------------------------- datagrams
void Daemon::Impl::send_dgrams(Sock& s) {
  for (int i = 0; i < 64; ++i) {
    ssize_t n = ::recv(s.dfd, buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) break;
    if (n == 0) break;  // the client shut the pair
    if (static_cast<std::size_t>(n) < sizeof(DgramHeader) || static_cast<std::size_t>(n) > buf.size()) continue;
    DgramHeader h;
    std::memcpy(&h, buf.data(), sizeof h);
    std::span<const std::uint8_t> payload(buf.data() + sizeof h, static_cast<std::size_t>(n) - sizeof h);
    if (auto* u = std::get_if<DatagramPair>(&s.as)) {
      std::optional<Endpoint> to;
      if (h.addr != 0 || h.port != 0) to = Endpoint{Ipv4Addr{h.addr}, Port{h.port}};
      auto r = host.stack().udp().send_to(u->sid, payload, to, now);
      if (!r) report_dgram_error(s, r.error());
    } else {
      const std::uint16_t ident = std::get<EchoPair>(s.as).ident;
      auto r = host.stack().send_echo_request(Ipv4Addr{h.addr}, ident, h.port, payload, now);
      if (!r) report_dgram_error(s, r.error());
    }
  }
}

// Asynchronous errors reach the client as a header with err set; its next
// recv returns -1 with that errno (as Linux reports ICMP errors).
void Daemon::Impl::report_dgram_error(Sock& s, std::errc e) {
  DgramHeader h;
  h.err = static_cast<int>(e);
  (void)::send(s.dfd, &h, sizeof h,
               MSG_DONTWAIT | MSG_NOSIGNAL);  // a full pair drops the report, as a full socket buffer drops it
}

// Datagrams the stack holds for a UDP socket, into its pair until the pair
// is full; the one that did not fit waits (staged) for EPOLLOUT.
void Daemon::Impl::deliver_dgrams(Sock& s, DatagramPair& u) {
  if (!u.staged.empty()) {
    if (::send(s.dfd, u.staged.data(), u.staged.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
      if (errno == EAGAIN) {
        s.want_out = true;
        update_interest(s);
        return;
      }
    }
    u.staged.clear();
  }
  auto& udp = host.stack().udp();
  for (;;) {
    auto r = udp.recv_from(u.sid, std::span<std::uint8_t>(buf.data() + sizeof(DgramHeader), kIoChunk));
    DgramHeader h;
    std::size_t len = 0;
    if (!r) {
      if (r.error() == std::errc::resource_unavailable_try_again) break;
      h.err = static_cast<int>(r.error());
    } else {
      h.addr = r->from.addr.value();
      h.port = r->from.port.value();
      len = r->len;
    }
    std::memcpy(buf.data(), &h, sizeof h);
    if (::send(s.dfd, buf.data(), sizeof h + len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
      if (errno == EAGAIN) {
        u.staged.assign(buf.data(), buf.data() + sizeof h + len);
        s.want_out = true;
        break;
      }
    }
  }
  update_interest(s);
}

void Daemon::Impl::on_echo_reply(const EchoReply& e) {
  auto it = icmp_ident.find(e.ident);
  if (it == icmp_ident.end()) return;
  Sock& s = socks.at(it->second);
  // Replies are never staged: one the pair has no room for is dropped.
  DgramHeader h;
  h.addr = e.from.value();
  h.port = e.seq;
  h.ttl = e.ttl;
  // The reply's own data follows the header, so the process can check it
  // (ping compares it with what it sent) and read its timestamp back.
  std::size_t len = std::min(e.payload.size(), kIoChunk);
  std::memcpy(buf.data(), &h, sizeof h);
  std::memcpy(buf.data() + sizeof h, e.payload.data(), len);
  if (::send(s.dfd, buf.data(), sizeof h + len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno == EAGAIN) {
    // The process is not reading its replies: drop this one, as a full
    // socket buffer drops.
  }
}

}  // namespace weft
