// The control server: control connections accepted and their requests
// validated and dispatched (control/control.hpp); responses queued and
// flushed without blocking; accepting paused while out of descriptors.
#include "host/daemon_impl.hpp"

#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include <fmt/format.h>

#include "control/fdpass.hpp"
#include "netstat/system_sockets.hpp"
#include "tcp/sockopt.hpp"
#include "udp/sockopt.hpp"

namespace weft {

using control::AcceptRecord;
using control::DgramHeader;
using control::Op;
using control::Request;
using control::Response;
using control::SockKind;
using namespace daemon_detail;

namespace daemon_detail {

std::runtime_error sys_error(const std::string& what) {
  return std::runtime_error(fmt::format("{}: {}", what, std::strerror(errno)));
}

std::size_t inq(int fd) {
  int n = 0;
  if (fd < 0 || ::ioctl(fd, SIOCINQ, &n) != 0 || n < 0) return 0;
  return static_cast<std::size_t>(n);
}

// The program as net-tools netstat names it (netstat_program_name: argv[0]
// from /proc/PID/cmdline, cut to its base name when it is a full path), so
// weft's sockets and the kernel's name the same process the same way; a
// process without a command line falls back to its short name (comm).
std::string program_name(pid_t pid) {
  std::ifstream cmd(fmt::format("/proc/{}/cmdline", pid), std::ios::binary);
  std::string raw;
  if (cmd) raw.assign(std::istreambuf_iterator<char>(cmd), std::istreambuf_iterator<char>());
  std::string name = netstat_program_name(raw);
  if (!name.empty()) return name;
  std::ifstream comm(fmt::format("/proc/{}/comm", pid));
  std::string c;
  if (comm) std::getline(comm, c);
  return c.empty() ? "-" : c;
}

}  // namespace daemon_detail

namespace {
// An AF_UNIX pair's capacity each way is the sender's SO_SNDBUF (the
// receiver's SO_RCVBUF is not consulted), so only that is set, on both ends.
void set_pair_buffers(int dfd, int cfd) {
  int sz = static_cast<int>(kPairBuffer);
  for (int fd : {dfd, cfd}) ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
}
}  // namespace

// ---------------------------------------------------------------- clients
void Daemon::Impl::accept_clients() {
  for (;;) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) pause_accepting();
      return;  // EAGAIN, or a connection that went away before we took it
    }
    ucred cr{};
    socklen_t len = sizeof cr;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
      ::close(fd);
      continue;
    }
    int sz = static_cast<int>(kPairBuffer);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    Client c;
    c.id = next_client++;
    c.fd = fd;
    c.pid = cr.pid;
    c.uid = cr.uid;
    c.program = program_name(cr.pid);
    epoll_add(fd, EPOLLIN, tag(kClient, c.id));
    clients.emplace(c.id, std::move(c));
    ++counters.clients_accepted;
    ++counters.clients_current;
  }
}

void Daemon::Impl::client_gone(std::uint32_t cid, bool by_error) {
  auto it = clients.find(cid);
  if (it == clients.end()) return;
  Client& c = it->second;
  // Every socket it held closes as the kernel closes a dead process's:
  // FIN after the data it wrote; RST where its unread data is discarded.
  auto handles = std::move(c.handles);
  for (std::uint32_t h : handles) {
    if (socks.count(h)) {
      ++counters.orphaned_closes;
      close_sock(h, false);
    }
  }
  drop_responses(c);
  ::close(c.fd);
  clients.erase(it);
  --counters.clients_current;
  ++counters.clients_gone;
  if (by_error) ++counters.protocol_errors;
  descriptors_freed();
}

// Responses that will never be sent: the descriptors they carry are
// closed with them (each is a socket's third descriptor).
void Daemon::Impl::drop_responses(Client& c) {
  for (auto& o : c.out)
    if (o.fd >= 0) ::close(o.fd);
  c.out.clear();
}

void Daemon::Impl::pause_accepting() {
  if (accept_paused) return;
  accept_paused = true;
  resume_at = now + std::chrono::seconds(1);
  ++counters.descriptor_exhaustion;
  loop.modify(listen_fd, 0, tag(kListen, 0));
}

void Daemon::Impl::resume_accepting() {
  if (accept_paused) {
    accept_paused = false;
    loop.modify(listen_fd, EPOLLIN, tag(kListen, 0));
  }
  if (!accept_waiting.empty()) {
    auto waiting = std::move(accept_waiting);
    accept_waiting.clear();
    for (std::uint32_t h : waiting)
      if (auto it = socks.find(h); it != socks.end() && std::holds_alternative<Listener>(it->second.as))
        push_accepts(it->second, std::get<Listener>(it->second.as));
  }
  if (!accept_paused && accept_waiting.empty()) resume_at.reset();
}

void Daemon::Impl::resume_if_due() {
  if (freed || (resume_at && now >= *resume_at)) {
    freed = false;
    resume_at.reset();
    resume_accepting();
  }
}

void Daemon::Impl::send_response(Client& c, const Response& r, int pass_fd, std::string extra) {
  Client::Out o;
  o.bytes.assign(reinterpret_cast<const char*>(&r), sizeof r);
  o.fd = pass_fd;
  c.out.push_back(std::move(o));
  for (std::size_t off = 0; off < extra.size(); off += control::kChunk)
    c.out.push_back(Client::Out{extra.substr(off, control::kChunk), -1});
  flush_client(c);
}

// Sends queued responses; a client that does not read them gets them
// later (EPOLLOUT), never by blocking the daemon.
void Daemon::Impl::flush_client(Client& c) {
  while (!c.out.empty()) {
    auto& o = c.out.front();
    ssize_t n = control::send_with_fd(c.fd, o.bytes.data(), o.bytes.size(), o.fd, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // The client is gone (its EPOLLHUP follows): what it was sent is
      // dropped, and the descriptors with it.
      drop_responses(c);
      descriptors_freed();
      break;
    }
    if (o.fd >= 0) {
      ::close(o.fd);
      descriptors_freed();
    }
    c.out.pop_front();
  }
  set_client_interest(c);
}

void Daemon::Impl::set_client_interest(Client& c) {
  loop.modify(c.fd, (reading(c) ? EPOLLIN : 0u) | (c.out.empty() ? 0u : EPOLLOUT), tag(kClient, c.id));
}

void Daemon::Impl::on_client(std::uint32_t cid, std::uint32_t events) {
  auto it = clients.find(cid);
  if (it == clients.end()) return;
  if (events & EPOLLOUT) flush_client(it->second);
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  if (!reading(it->second)) {
    if (events & (EPOLLHUP | EPOLLERR)) client_gone(cid, false);
    return;
  }
  for (int i = 0; i < 64; ++i) {  // a bounded batch per wakeup: fairness
    it = clients.find(cid);
    if (it == clients.end() || !reading(it->second)) return;
    Request rq;
    // One byte more than a request: a longer message shows as MSG_TRUNC.
    // Descriptors are never part of a request: any sent anyway are closed
    // (no fd_out).
    char raw[sizeof(Request) + 1];
    int msg_flags = 0;
    ssize_t n =
        control::recv_with_fd(it->second.fd, raw, sizeof raw, MSG_DONTWAIT | MSG_CMSG_CLOEXEC, nullptr, &msg_flags);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      client_gone(cid, false);
      return;
    }
    Client& c = it->second;
    if (static_cast<std::size_t>(n) != sizeof(Request) || (msg_flags & MSG_TRUNC)) {
      protocol_error(c, "request of the wrong size");
      return;
    }
    std::memcpy(&rq, raw, sizeof rq);
    if (rq.magic != control::kMagic) {
      protocol_error(c, "bad magic");
      return;
    }
    if (!c.greeted && rq.op != Op::hello) {
      protocol_error(c, "first request must be hello");
      return;
    }
    if (!handle_request(c, rq)) return;
  }
}

void Daemon::Impl::protocol_error(Client& c, const char* /*why*/) {
  Response r;
  r.err = EPROTO;
  send_response(c, r);
  client_gone(c.id, true);
}

bool Daemon::Impl::may_act(const Client& c, const Sock& s) { return s.client == c.id; }

// The socket `h` when `c` may act on it, else none (EBADF: as a descriptor
// another process holds is not the caller's).
Sock* Daemon::Impl::owned(Client& c, std::uint32_t h) {
  auto it = socks.find(h);
  if (it == socks.end() || !may_act(c, it->second)) return nullptr;
  return &it->second;
}

// Returns false when the client is gone.
bool Daemon::Impl::handle_request(Client& c, const Request& rq) {
  Response r;
  r.op = rq.op;
  r.handle = rq.handle;
  auto fail = [&](std::errc e) {
    r.err = static_cast<int>(e);
    send_response(c, r);
    return true;
  };
  switch (rq.op) {
    case Op::hello:
      r.value = control::kVersion;
      if (rq.arg0 != static_cast<std::int32_t>(control::kVersion)) {
        ++counters.version_mismatches;
        r.err = EPROTONOSUPPORT;
        send_response(c, r);
        client_gone(c.id, false);
        return false;
      }
      c.greeted = true;
      send_response(c, r);
      return true;
    case Op::socket:
      return op_socket(c, rq, r);
    case Op::snapshot: {
      std::string js = snapshot().dump();
      want_trim();  // the document and its tree, a node per field, are freed once sent
      r.value = static_cast<std::int64_t>(js.size());
      send_response(c, r, -1, std::move(js));
      return true;
    }
    default:
      break;
  }
  Sock* s = owned(c, rq.handle);
  if (!s) return fail(std::errc::bad_file_descriptor);
  Endpoint ep{Ipv4Addr{rq.addr}, Port{rq.port}};
  switch (rq.op) {
    case Op::bind: {
      // Ports below 1024 are privileged (the well-known range, 0-1023):
      // the caller's uid is the kernel's word (SO_PEERCRED), never its own.
      if (rq.port != 0 && rq.port < 1024 && c.uid != 0 &&
          std::find(cfg.privileged_uids.begin(), cfg.privileged_uids.end(), c.uid) == cfg.privileged_uids.end()) {
        ++counters.privileged_denied;
        return fail(std::errc::permission_denied);
      }
      const SockKind kind = s->kind();
      Status st = kind == SockKind::tcp   ? host.stack().tcp().bind(*s->sid(), ep)
                  : kind == SockKind::udp ? host.stack().udp().bind(*s->sid(), ep)
                                          : Status{std::errc::operation_not_supported};
      if (!st) return fail(st.error());
      break;
    }
    case Op::listen: {
      if (s->kind() != SockKind::tcp) return fail(std::errc::operation_not_supported);
      const SocketId sid = *s->sid();
      std::size_t backlog = rq.arg0 <= 0 ? 1 : static_cast<std::size_t>(rq.arg0);
      backlog = std::min(backlog, host.stack().tcp().config().max_backlog);
      if (auto st = host.stack().tcp().listen(sid, backlog); !st) return fail(st.error());
      if (auto* l = std::get_if<Listener>(&s->as)) {
        l->backlog = backlog;  // listen again: a new backlog
      } else {
        s->as = Listener{.sid = sid, .backlog = backlog};  // its descriptor carries no data
      }
      update_interest(*s);
      break;
    }
    case Op::connect: {
      if (std::holds_alternative<Listener>(s->as)) return fail(std::errc::invalid_argument);
      if (auto* t = std::get_if<StreamPair>(&s->as)) {
        if (auto st = host.stack().tcp().connect(t->sid, ep, now); !st) return fail(st.error());
        t->phase = StreamPair::Phase::connecting;
      } else if (auto* u = std::get_if<DatagramPair>(&s->as)) {
        if (auto st = host.stack().udp().connect(u->sid, ep); !st) return fail(st.error());
        u->peer = ep;
      } else {
        return fail(std::errc::operation_not_supported);
      }
      break;
    }
    case Op::shutdown: {
      if (s->kind() != SockKind::tcp) return fail(std::errc::operation_not_supported);
      auto* t = std::get_if<StreamPair>(&s->as);
      if (!t || (t->phase != StreamPair::Phase::open && t->phase != StreamPair::Phase::connecting))
        return fail(std::errc::not_connected);
      // SHUT_WR itself travels in band (the client shuts its end; the FIN
      // follows the data it wrote); SHUT_RD is told here.
      if (rq.arg0 == SHUT_RD || rq.arg0 == SHUT_RDWR) {
        if (auto st = host.stack().tcp().shutdown(t->sid, Shutdown::read, now); !st) return fail(st.error());
      }
      break;
    }
    case Op::close:
      if (auto* t = std::get_if<StreamPair>(&s->as); t && rq.arg0 == 1) t->linger_zero = true;
      close_sock(rq.handle, false);
      break;
    case Op::getsockname: {
      const SockKind kind = s->kind();
      std::optional<Endpoint> e = kind == SockKind::tcp   ? host.stack().tcp().local_endpoint(*s->sid())
                                  : kind == SockKind::udp ? host.stack().udp().local_endpoint(*s->sid())
                                                          : std::nullopt;
      if (e) {
        r.addr = e->addr.value();
        r.port = e->port.value();
      }
      break;
    }
    case Op::getpeername: {
      std::optional<Endpoint> e;
      if (auto* t = std::get_if<StreamPair>(&s->as)) {
        if (t->phase == StreamPair::Phase::open) e = host.stack().tcp().remote_endpoint(t->sid);
      } else if (auto* u = std::get_if<DatagramPair>(&s->as)) {
        e = u->peer;
      }
      if (!e) return fail(std::errc::not_connected);
      r.addr = e->addr.value();
      r.port = e->port.value();
      break;
    }
    case Op::setsockopt:
      if (auto st = set_option(*s, rq.arg0, rq.arg1, rq.value); !st) return fail(st.error());
      break;
    case Op::getsockopt: {
      auto v = get_option(*s, rq.arg0, rq.arg1);
      if (!v) return fail(v.error());
      r.value = *v;
      break;
    }
    case Op::status: {
      auto* t = std::get_if<StreamPair>(&s->as);
      r.err = t && t->end_err ? static_cast<int>(*t->end_err) : 0;
      send_response(c, r);
      return true;
    }
    default:
      protocol_error(c, "unknown op");
      return false;
  }
  send_response(c, r);
  return true;
}

// Linux's answers, Linux's ranges. A TCP socket's options go through the
// one module every front end shares (src/tcp/sockopt.hpp: names, ranges,
// errno, the SO_RCVBUF/SO_SNDBUF rule of docs/conformance.md), a UDP
// socket's through src/udp/sockopt.hpp. The
// request carries an int64 but setsockopt(2) an int, so any value
// outside int's range is EINVAL first (SO_LINGER packs its two fields).
Status Daemon::Impl::set_option(Sock& s, int level, int name, std::int64_t v) {
  auto& tcp = host.stack().tcp();
  auto& udp = host.stack().udp();
  const SockKind kind = s.kind();
  if (level == SOL_SOCKET && name == SO_LINGER) {
    // value: bit 32 = l_onoff, low 32 bits = l_linger seconds.
    if (kind != SockKind::tcp) return std::errc::no_protocol_option;
    const bool lon = (v >> 32) & 1;
    const auto secs = static_cast<std::uint32_t>(v & 0xffffffff);
    if (auto* t = std::get_if<StreamPair>(&s.as)) t->linger_zero = lon && secs == 0;
    return tcp.set_linger(*s.sid(), lon ? std::optional<Duration>(std::chrono::seconds(secs)) : std::nullopt);
  }
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) return std::errc::invalid_argument;
  const int iv = static_cast<int>(v);
  if (kind == SockKind::tcp) {
    if (level == SOL_SOCKET) return tcp::set_socket_option(tcp, *s.sid(), name, iv, now);
    if (level == IPPROTO_TCP) return tcp::set_tcp_option(tcp, *s.sid(), name, iv, now);
    return std::errc::no_protocol_option;
  }
  if (level != SOL_SOCKET) return std::errc::no_protocol_option;
  // An ICMP socket has no UDP socket: EBADF, as the UDP layer answers for
  // an id it does not know.
  const auto* u = std::get_if<DatagramPair>(&s.as);
  return udp::set_socket_option(udp, u ? std::optional<SocketId>(u->sid) : std::nullopt, name, iv);
}

Result<std::int64_t> Daemon::Impl::get_option(Sock& s, int level, int name) {
  if (level == SOL_SOCKET && name == SO_ERROR) {
    std::optional<std::errc> e;
    if (auto* t = std::get_if<StreamPair>(&s.as)) {
      e = std::exchange(t->so_error, std::nullopt);
      if (!e && t->phase == StreamPair::Phase::open) e = host.stack().tcp().take_error(t->sid);
    }
    return std::int64_t{e ? static_cast<int>(*e) : 0};
  }
  if (level == SOL_SOCKET && name == SO_ACCEPTCONN) return std::int64_t{std::holds_alternative<Listener>(s.as)};
  if (s.kind() == SockKind::tcp) {
    auto& tcp = host.stack().tcp();
    const SocketId sid = *s.sid();
    Result<int> r = level == SOL_SOCKET    ? tcp::get_socket_option(tcp, sid, name)
                    : level == IPPROTO_TCP ? tcp::get_tcp_option(tcp, sid, name)
                                           : Result<int>(std::errc::no_protocol_option);
    if (!r) return r.error();
    return std::int64_t{*r};
  }
  // A UDP socket's: src/udp/sockopt.hpp. An ICMP socket answers none.
  if (const auto* u = std::get_if<DatagramPair>(&s.as); u && level == SOL_SOCKET) {
    Result<int> r = udp::get_socket_option(host.stack().udp(), u->sid, name);
    if (!r) return r.error();
    return std::int64_t{*r};
  }
  return std::errc::no_protocol_option;
}

bool Daemon::Impl::op_socket(Client& c, const Request& rq, Response& r) {
  auto kind = static_cast<SockKind>(rq.arg0);
  if (kind != SockKind::tcp && kind != SockKind::udp && kind != SockKind::icmp) {
    r.err = EPROTONOSUPPORT;
    send_response(c, r);
    return true;
  }
  if (socks.size() >= cfg.max_sockets) {
    ++counters.socket_limit_hits;
    r.err = ENFILE;  // the host's limit, as the kernel's fs.file-max gives ENFILE
    send_response(c, r);
    return true;
  }
  auto p = open_pair(kind);
  if (!p) {
    r.err = p.errno_value();  // EMFILE/ENFILE: the daemon is at its limit
    send_response(c, r);
    return true;
  }
  // The client gets a descriptor of its own; the daemon keeps the original
  // as its duplicate of the client's end.
  int pass = ::fcntl(p->cfd, F_DUPFD_CLOEXEC, 0);
  if (pass < 0) {
    r.err = errno;
    ::close(p->dfd);
    ::close(p->cfd);
    send_response(c, r);
    return true;
  }
  Sock s = new_sock(*p, c.id);
  if (kind == SockKind::tcp) {
    StreamPair t{.sid = host.stack().tcp().open()};
    tcp_sid[t.sid] = s.handle;
    fill(s, t);
    t.want_in = false;  // nothing to read until connected
    s.as = std::move(t);
  } else if (kind == SockKind::udp) {
    DatagramPair u{.sid = host.stack().udp().open()};
    udp_sid[u.sid] = s.handle;
    s.as = std::move(u);
  } else {
    // An echo identifier per socket, as Linux ping sockets use their port.
    while (icmp_ident.count(next_ident) || next_ident == 0) ++next_ident;
    EchoPair e{.ident = next_ident++};
    icmp_ident[e.ident] = s.handle;
    s.as = e;
  }
  Sock& ref = adopt(std::move(s), c);
  update_interest(ref);
  r.handle = ref.handle;
  send_response(c, r, pass);
  return true;
}

// ------------------------------------------------------ the one creation path
Result<Daemon::Impl::NewPair> Daemon::Impl::open_pair(SockKind kind) {
  int sv[2];
  const int type = kind == SockKind::tcp ? SOCK_STREAM : SOCK_SEQPACKET;
  if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) return std::errc{errno};
  int fl = ::fcntl(sv[0], F_GETFL);
  ::fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);  // the daemon's end only: flags are per open file
  set_pair_buffers(sv[0], sv[1]);
  return NewPair{sv[0], sv[1]};
}

Sock Daemon::Impl::new_sock(NewPair p, std::uint32_t client) {
  Sock s;
  s.handle = next_handle++;
  s.dfd = p.dfd;
  s.cfd = ClientEnd(p.cfd);
  s.client = client;
  return s;
}

Sock& Daemon::Impl::adopt(Sock&& s, Client& c) {
  const std::uint32_t h = s.handle;
  Sock& ref = socks.emplace(h, std::move(s)).first->second;
  ref.mask = 0;
  epoll_add(ref.dfd, 0, tag(kSock, h));
  c.handles.push_back(h);
  ++counters.sockets_opened;
  ++counters.sockets_current;
  return ref;
}

}  // namespace weft
