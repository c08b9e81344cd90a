// libweft-client: the C API (weft.h) and the C++ helpers (client.hpp).
//
// One control connection per process, opened at the first socket and
// guarded by a mutex; each call is one request and one response on it.
// Calls that wait (blocking accept, recv, send, connect) wait on the
// socket's own descriptor, never while holding the control connection, so
// one thread blocked in accept does not stall another's send.
#include "client/client.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "client/weft.h"
#include "control/control.hpp"
#include "control/fdpass.hpp"
#include "wire/sockaddr.hpp"

namespace weft::client {

namespace {

using control::AcceptRecord;
using control::DgramHeader;
using control::Op;
using control::Request;
using control::Response;
using control::SockKind;

thread_local std::string t_detail;

static_assert(WEFT_TCP_ECN == control::kTcpEcnOption, "weft.h and the control protocol agree");

// A connection to one daemon's control socket.
class Conn {
 public:
  ~Conn() { drop(); }
  // Errors: ENETDOWN (no daemon there), EPROTONOSUPPORT (version), and
  // EACCES (the socket's mode or group keeps us out, or the daemon runs as
  // a uid that is neither root nor ours).
  int open(const std::string& host) {
    auto path = control::control_socket_path(host);
    if (!path) {
      t_detail = "no runtime directory: set WEFT_RUNTIME_DIR or XDG_RUNTIME_DIR";
      return ENETDOWN;
    }
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path->size() >= sizeof sa.sun_path) {
      t_detail = "control socket path too long: " + *path;
      return ENAMETOOLONG;
    }
    std::memcpy(sa.sun_path, path->c_str(), path->size() + 1);
    fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return errno;
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      int e = errno;
      t_detail = "no weft host '" + host + "' at " + *path + ": " + std::strerror(e);
      drop();
      return e == EACCES ? EACCES : ENETDOWN;
    }
    // Whoever serves this socket gets everything the program sends. Trust
    // only root or ourselves (the kernel's word, SO_PEERCRED): another
    // user's process answering at the path we were given is refused, as
    // ssh-agent's and systemd's clients refuse a socket of the wrong uid.
    ucred cr{};
    socklen_t crl = sizeof cr;
    if (::getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &cr, &crl) != 0) {
      int e = errno;
      t_detail = "weft host '" + host + "' at " + *path + ": SO_PEERCRED: " + std::strerror(e);
      drop();
      return EACCES;
    }
    if (cr.uid != 0 && cr.uid != ::geteuid()) {
      t_detail = "weft host '" + host + "' at " + *path + " is served by uid " + std::to_string(cr.uid) +
                 ", neither root nor this process's uid " + std::to_string(::geteuid()) + ": not trusted";
      drop();
      return EACCES;
    }
    Request rq;
    rq.op = Op::hello;
    rq.arg0 = static_cast<std::int32_t>(control::kVersion);
    Response r;
    if (int e = call(rq, r, nullptr); e != 0) return e;
    if (r.err == EPROTONOSUPPORT) {
      t_detail = "weft host '" + host + "' speaks control protocol version " + std::to_string(r.value) +
                 ", this client speaks " + std::to_string(control::kVersion);
      drop();
      return EPROTONOSUPPORT;
    }
    if (r.err != 0) {
      drop();
      return r.err;
    }
    return 0;
  }
  bool is_open() const { return fd_ >= 0; }
  void drop() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Sends rq and waits for its response (and descriptor). Returns 0 or the
  // transport's errno (ENETDOWN when the daemon went away).
  int call(const Request& rq, Response& r, int* fd_out) {
    if (fd_ < 0) return ENETDOWN;
    if (::send(fd_, &rq, sizeof rq, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof rq)) return lost();
    int got = -1;
    ssize_t n = control::recv_with_fd(fd_, &r, sizeof r, MSG_CMSG_CLOEXEC, fd_out ? &got : nullptr);
    if (n != static_cast<ssize_t>(sizeof r) || r.magic != control::kMagic) {
      if (got >= 0) ::close(got);
      return lost();
    }
    if (fd_out) *fd_out = got;
    return 0;
  }
  // The payload after a snapshot response: `len` bytes in chunks.
  int read_payload(std::size_t len, std::string& out) {
    out.resize(len);
    std::size_t off = 0;
    while (off < len) {
      ssize_t n = ::recv(fd_, out.data() + off, len - off, 0);
      if (n <= 0) return lost();
      off += static_cast<std::size_t>(n);
    }
    return 0;
  }

 private:
  int lost() {
    t_detail = "the weft host closed the control connection";
    drop();
    return ENETDOWN;
  }
  int fd_ = -1;
};

struct Entry {
  std::uint32_t handle = 0;
  SockKind kind = SockKind::tcp;
  enum class St : std::uint8_t { fresh, connecting, connected, listening } st = St::fresh;
  bool end_reported = false;  // the reason for end of stream was fetched
  std::optional<int> end_err;
  bool connected_udp = false;
  bool linger_zero = false;
  int last_ttl = -1;
};

struct State {
  std::mutex mu;
  Conn conn;
  std::string host;  // chosen by weft_set_host, else WEFT_HOST
  std::unordered_map<int, Entry> table;
};

State& make_state();
State& state() {
  static State& s = make_state();
  return s;
}

// After fork() the child must not share the parent's control connection:
// the daemon knows that connection as the parent (SO_PEERCRED is taken at
// connect), and replies would go to whichever process reads first. The
// child starts afresh; descriptors it inherited are not weft sockets for
// it (ENOTSOCK), since the daemon cannot tell the two processes' uses apart.
State& make_state() {
  static State* s = new State;  // never destroyed: usable from atexit handlers
  ::pthread_atfork([] { s->mu.lock(); }, [] { s->mu.unlock(); },
                   [] {
                     s->conn.drop();
                     s->table.clear();
                     s->mu.unlock();
                   });
  return *s;
}

// Runs one request on the process's control connection (opening it first).
int rpc(Request rq, Response& r, int* fd_out = nullptr) {
  State& s = state();
  std::lock_guard lk(s.mu);
  if (!s.conn.is_open()) {
    if (int e = s.conn.open(s.host.empty() ? control::default_host() : s.host); e != 0) return e;
  }
  if (int e = s.conn.call(rq, r, fd_out); e != 0) return e;
  return r.err;
}

int fail(int e) {
  errno = e;
  return -1;
}

// Looks up a weft descriptor. EBADF for no descriptor at all, ENOTSOCK for
// one that is not a weft socket.
std::optional<Entry> lookup(int fd, int& err) {
  State& s = state();
  std::lock_guard lk(s.mu);
  auto it = s.table.find(fd);
  if (it == s.table.end()) {
    err = ::fcntl(fd, F_GETFD) < 0 ? EBADF : ENOTSOCK;
    return std::nullopt;
  }
  return it->second;
}

template <class F>
void update(int fd, F&& f) {
  State& s = state();
  std::lock_guard lk(s.mu);
  if (auto it = s.table.find(fd); it != s.table.end()) f(it->second);
}

// A caller's address into a request's (addr, port), length checked before
// the family as Linux's inet_bind and tcp_v4_connect do; 0 or errno.
int parse_sockaddr(const sockaddr* a, socklen_t len, std::uint32_t& addr, std::uint16_t& port) {
  Endpoint ep;
  if (const auto e = endpoint_from(a, len, ep, SockaddrCheck::length_first); e != std::errc{})
    return static_cast<int>(e);
  addr = ep.addr.value();
  port = ep.port.value();
  return 0;
}

void fill_sockaddr(std::uint32_t addr, std::uint16_t port, sockaddr* out, socklen_t* len) {
  copy_out(Endpoint{Ipv4Addr{addr}, Port{port}}, out, len);
}

Request req(Op op, std::uint32_t handle) {
  Request r;
  r.op = op;
  r.handle = handle;
  return r;
}

// Why a TCP stream ended, asked once: 0 for a clean end of stream.
int end_reason(int fd, const Entry& e) {
  if (e.end_reported) return 0;
  Response r;
  int err = rpc(req(Op::status, e.handle), r);
  if (err == EBADF) err = 0;
  update(fd, [&](Entry& x) { x.end_reported = true; });
  return err;
}

}  // namespace

Result<nlohmann::json> netstat_snapshot(const std::string& host) {
  Conn c;
  if (int e = c.open(host); e != 0) return std::errc{e};
  Request rq;
  rq.op = Op::snapshot;
  Response r;
  if (int e = c.call(rq, r, nullptr); e != 0) return std::errc{e};
  if (r.err != 0) return std::errc{r.err};
  std::string js;
  if (int e = c.read_payload(static_cast<std::size_t>(r.value), js); e != 0) return std::errc{e};
  auto j = nlohmann::json::parse(js, nullptr, false);
  if (j.is_discarded()) {
    t_detail = "the weft host sent a snapshot that is not JSON";
    return std::errc::protocol_error;
  }
  return j;
}

std::string last_detail() { return t_detail; }

namespace {
std::errc last_errc() { return std::errc{errno}; }
}  // namespace

Result<Socket> Socket::open(Type type, bool nonblocking) {
  int t = (type == Type::tcp ? SOCK_STREAM : SOCK_DGRAM) | (nonblocking ? SOCK_NONBLOCK : 0);
  int fd = weft_socket(AF_INET, t, type == Type::icmp ? IPPROTO_ICMP : 0);
  if (fd < 0) return last_errc();
  return Socket(fd);
}
void Socket::reset() {
  if (fd_ >= 0) weft_close(fd_);
  fd_ = -1;
}
Status Socket::bind(Endpoint local) {
  auto a = to_sockaddr(local);
  if (weft_bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return last_errc();
  return ok_status();
}
Status Socket::listen(int backlog) {
  if (weft_listen(fd_, backlog) != 0) return last_errc();
  return ok_status();
}
Result<Socket> Socket::accept(Endpoint* peer) {
  sockaddr_in a{};
  socklen_t l = sizeof a;
  int fd = weft_accept(fd_, reinterpret_cast<sockaddr*>(&a), &l);
  if (fd < 0) return last_errc();
  if (peer) *peer = from_sockaddr(a);
  return Socket(fd);
}
Status Socket::connect(Endpoint remote) {
  auto a = to_sockaddr(remote);
  if (weft_connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return last_errc();
  return ok_status();
}
Result<std::size_t> Socket::send(std::span<const std::uint8_t> data, int flags) {
  ssize_t n = weft_send(fd_, data.data(), data.size(), flags);
  if (n < 0) return last_errc();
  return static_cast<std::size_t>(n);
}
Result<std::size_t> Socket::recv(std::span<std::uint8_t> buf, int flags) {
  ssize_t n = weft_recv(fd_, buf.data(), buf.size(), flags);
  if (n < 0) return last_errc();
  return static_cast<std::size_t>(n);
}
Result<std::size_t> Socket::send_to(std::span<const std::uint8_t> data, Endpoint to) {
  auto a = to_sockaddr(to);
  ssize_t n = weft_sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  if (n < 0) return last_errc();
  return static_cast<std::size_t>(n);
}
Result<std::size_t> Socket::recv_from(std::span<std::uint8_t> buf, Endpoint* from) {
  sockaddr_in a{};
  socklen_t l = sizeof a;
  ssize_t n = weft_recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&a), &l);
  if (n < 0) return last_errc();
  if (from) *from = from_sockaddr(a);
  return static_cast<std::size_t>(n);
}
Status Socket::shutdown(int how) {
  if (weft_shutdown(fd_, how) != 0) return last_errc();
  return ok_status();
}
Result<Endpoint> Socket::local_endpoint() const {
  sockaddr_in a{};
  socklen_t l = sizeof a;
  if (weft_getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &l) != 0) return last_errc();
  return from_sockaddr(a);
}
Result<Endpoint> Socket::remote_endpoint() const {
  sockaddr_in a{};
  socklen_t l = sizeof a;
  if (weft_getpeername(fd_, reinterpret_cast<sockaddr*>(&a), &l) != 0) return last_errc();
  return from_sockaddr(a);
}
Status Socket::set_option(int level, int name, int value) {
  if (weft_setsockopt(fd_, level, name, &value, sizeof value) != 0) return last_errc();
  return ok_status();
}
Result<int> Socket::option(int level, int name) const {
  int v = 0;
  socklen_t l = sizeof v;
  if (weft_getsockopt(fd_, level, name, &v, &l) != 0) return last_errc();
  return v;
}

}  // namespace weft::client

using namespace weft::client;
using weft::control::AcceptRecord;
using weft::control::DgramHeader;
using weft::control::Op;
using weft::control::Request;
using weft::control::Response;
using weft::control::SockKind;

extern "C" {

int weft_set_host(const char* name_or_path) {
  State& s = state();
  std::lock_guard lk(s.mu);
  if (s.conn.is_open()) return fail(EBUSY);
  if (!name_or_path || !*name_or_path) return fail(EINVAL);
  s.host = name_or_path;
  return 0;
}

const char* weft_last_detail(void) { return t_detail.c_str(); }

int weft_last_ttl(int fd) {
  int err;
  auto e = lookup(fd, err);
  return e ? e->last_ttl : -1;
}

int weft_socket(int domain, int type, int protocol) {
  if (domain != AF_INET) return fail(EAFNOSUPPORT);
  int flags = type & (SOCK_NONBLOCK | SOCK_CLOEXEC);
  type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  SockKind kind;
  if (type == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP)) {
    kind = SockKind::tcp;
  } else if (type == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP)) {
    kind = SockKind::udp;
  } else if (type == SOCK_DGRAM && protocol == IPPROTO_ICMP) {
    kind = SockKind::icmp;
  } else if (type == SOCK_STREAM || type == SOCK_DGRAM) {
    return fail(EPROTONOSUPPORT);
  } else {
    return fail(ESOCKTNOSUPPORT);
  }
  Request rq;
  rq.op = Op::socket;
  rq.arg0 = static_cast<std::int32_t>(kind);
  Response r;
  int fd = -1;
  if (int e = rpc(rq, r, &fd); e != 0) {
    if (fd >= 0) ::close(fd);
    return fail(e);
  }
  if (fd < 0) return fail(ENETDOWN);
  // The descriptor arrives close-on-exec (MSG_CMSG_CLOEXEC); SOCK_CLOEXEC is
  // therefore always honoured, and its absence is made good here.
  if (!(flags & SOCK_CLOEXEC)) ::fcntl(fd, F_SETFD, 0);
  if (flags & SOCK_NONBLOCK) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  Entry e;
  e.handle = r.handle;
  e.kind = kind;
  State& s = state();
  std::lock_guard lk(s.mu);
  s.table[fd] = e;
  return fd;
}

int weft_bind(int fd, const struct sockaddr* addr, socklen_t len) {
  int err;
  auto e = lookup(fd, err);
  if (!e) return fail(err);
  Request rq = req(Op::bind, e->handle);
  if (int pe = parse_sockaddr(addr, len, rq.addr, rq.port); pe != 0) return fail(pe);
  Response r;
  if (int x = rpc(rq, r); x != 0) return fail(x);
  return 0;
}

int weft_listen(int fd, int backlog) {
  int err;
  auto e = lookup(fd, err);
  if (!e) return fail(err);
  if (e->kind != SockKind::tcp) return fail(EOPNOTSUPP);
  Request rq = req(Op::listen, e->handle);
  rq.arg0 = backlog;
  Response r;
  if (int x = rpc(rq, r); x != 0) return fail(x);
  update(fd, [](Entry& x) { x.st = Entry::St::listening; });
  return 0;
}

int weft_accept(int fd, struct sockaddr* addr, socklen_t* len) {
  int err;
  auto e = lookup(fd, err);
  if (!e) return fail(err);
  if (e->kind != SockKind::tcp) return fail(EOPNOTSUPP);
  if (e->st != Entry::St::listening) return fail(EINVAL);
  AcceptRecord rec;
  int nfd = -1;
  ssize_t n = weft::control::recv_with_fd(fd, &rec, sizeof rec, MSG_CMSG_CLOEXEC | MSG_WAITALL, &nfd);
  if (n < 0) return -1;  // EAGAIN, or what SO_RCVTIMEO gives
  if (n != static_cast<ssize_t>(sizeof rec) || nfd < 0) {
    if (nfd >= 0) ::close(nfd);
    return fail(n == 0 ? ENETDOWN : EPROTO);  // the daemon ended the listener
  }
  ::fcntl(nfd, F_SETFD, 0);  // accept() gives a descriptor without FD_CLOEXEC
  Entry ne;
  ne.handle = rec.handle;
  ne.kind = SockKind::tcp;
  ne.st = Entry::St::connected;
  {
    State& s = state();
    std::lock_guard lk(s.mu);
    s.table[nfd] = ne;
  }
  fill_sockaddr(rec.peer_addr, rec.peer_port, addr, len);
  return nfd;
}

int weft_connect(int fd, const struct sockaddr* addr, socklen_t len) {
  int err;
  auto e = lookup(fd, err);
  if (!e) return fail(err);
  Request rq = req(Op::connect, e->handle);
  if (int pe = parse_sockaddr(addr, len, rq.addr, rq.port); pe != 0) return fail(pe);
  Response r;
  if (int x = rpc(rq, r); x != 0) return fail(x);
  if (e->kind != SockKind::tcp) {
    update(fd, [](Entry& x) { x.connected_udp = true; });
    return 0;
  }
  update(fd, [](Entry& x) { x.st = Entry::St::connecting; });
  if (::fcntl(fd, F_GETFL) & O_NONBLOCK) return fail(EINPROGRESS);
  // Blocking connect: the descriptor turns writable when the handshake is
  // over, either way; SO_ERROR then tells which. SO_SNDTIMEO bounds the wait
  // (EINPROGRESS, as Linux).
  timeval tv{};
  socklen_t tl = sizeof tv;
  ::getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &tl);
  int timeout_ms = (tv.tv_sec == 0 && tv.tv_usec == 0) ? -1 : static_cast<int>(tv.tv_sec * 1000 + tv.tv_usec / 1000);
  pollfd p{fd, POLLOUT, 0};
  int pr;
  do pr = ::poll(&p, 1, timeout_ms);
  while (pr < 0 && errno == EINTR);
  if (pr == 0) return fail(EINPROGRESS);
  int so = 0;
  socklen_t sl = sizeof so;
  if (weft_getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) != 0) return -1;
  if (so != 0) {
    update(fd, [&](Entry& x) {
      x.end_reported = true;  // reported here, not again by recv
    });
    return fail(so);
  }
  update(fd, [](Entry& x) { x.st = Entry::St::connected; });
  return 0;
}

ssize_t weft_sendto(int fd, const void* buf, size_t len, int flags, const struct sockaddr* to, socklen_t tolen) {
  int err;
  auto e = lookup(fd, err);
  if (!e) return fail(err);
  flags |= MSG_NOSIGNAL;
  if (e->kind == SockKind::tcp) {
    if (e->st == Entry::St::fresh || e->st == Entry::St::listening) return fail(ENOTCONN);
    ssize_t n = ::send(fd, buf, len, flags);
    if (n < 0 && errno == EPIPE) {
      // The stream ended: a reset is reported once as ECONNRESET, then EPIPE.
      int why = end_reason(fd, *e);
      return fail(why != 0 ? why : EPIPE);
    }
    return n;
  }
  DgramHeader h;
  if (to) {
    if (int pe = parse_sockaddr(to, tolen, h.addr, h.port); pe != 0) return fail(pe);
    if (e->kind == SockKind::udp && h.port == 0) return fail(EINVAL);
  } else if (!e->connected_udp) {
    return fail(EDESTADDRREQ);
  }
  std::size_t payload_off = 0;
  if (e->kind == SockKind::icmp) {
    // As a Linux ping socket: the caller writes an ICMP echo request header
    // (type 8); the identifier is the socket's own, the sequence is kept.
    if (!to) return fail(EDESTADDRREQ);
    if (len < 8) return fail(EINVAL);
    const auto* b = static_cast<const std::uint8_t*>(buf);
    if (b[0] != 8 || b[1] != 0) return fail(EINVAL);
    h.port = static_cast<std::uint16_t>((b[6] << 8) | b[7]);
    payload_off = 8;
  }
  if (len - payload_off > 65507) return fail(EMSGSIZE);
  iovec iov[2] = {{&h, sizeof h}, {const_cast<char*>(static_cast<const char*>(buf)) + payload_off, len - payload_off}};
  msghdr mh{};
  mh.msg_iov = iov;
  mh.msg_iovlen = 2;
  ssize_t n = ::sendmsg(fd, &mh, flags);
  if (n < 0) return fail(errno == EPIPE ? ENETDOWN : errno);
  return static_cast<ssize_t>(len);
}

ssize_t weft_send(int fd, const void* buf, size_t len, int flags) {
  return weft_sendto(fd, buf, len, flags, nullptr, 0);
}

ssize_t weft_recvfrom(int fd, void* buf, size_t len, int flags, struct sockaddr* from, socklen_t* fromlen) {
  int err;
  auto e = lookup(fd, err);
  if (!e) return fail(err);
  if (e->kind == SockKind::tcp) {
    if (e->st == Entry::St::fresh || e->st == Entry::St::listening) return fail(ENOTCONN);
    ssize_t n = ::recv(fd, buf, len, flags & ~MSG_TRUNC);
    if (n == 0 && len > 0) {
      // End of stream: clean (the peer's FIN) or not (reset, refused,
      // timed out), which only the daemon knows.
      int why = end_reason(fd, *e);
      if (why != 0) return fail(why);
    }
    if (n > 0 && from && fromlen) {
      sockaddr_in in{};
      socklen_t l = sizeof in;
      if (weft_getpeername(fd, reinterpret_cast<sockaddr*>(&in), &l) == 0)
        weft::copy_out(weft::from_sockaddr(in), from, fromlen);
    }
    return n;
  }
  DgramHeader h;
  bool icmp = e->kind == SockKind::icmp;
  // ICMP: the echo reply's header is rebuilt in front of the data, as
  // Linux ping sockets return it.
  std::size_t head = icmp ? std::min<std::size_t>(len, 8) : 0;
  iovec iov[2] = {{&h, sizeof h}, {static_cast<char*>(buf) + head, len - head}};
  msghdr mh{};
  mh.msg_iov = iov;
  mh.msg_iovlen = 2;
  // MSG_TRUNC passes through: on a SOCK_SEQPACKET pair the kernel then
  // returns the whole record's length, header included, as UDP returns the
  // whole datagram's.
  ssize_t n = ::recvmsg(fd, &mh, flags);
  if (n < 0) return -1;
  if (n == 0) return fail(ENETDOWN);  // the daemon ended the socket
  if (static_cast<std::size_t>(n) < sizeof h) return fail(EPROTO);
  if (h.err != 0) return fail(h.err);
  std::size_t data = static_cast<std::size_t>(n) - sizeof h + head;
  if (icmp) {
    std::uint8_t hdr[8] = {0, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(h.port >> 8), static_cast<std::uint8_t>(h.port)};
    std::memcpy(buf, hdr, head);
    update(fd, [&](Entry& x) { x.last_ttl = h.ttl; });
  }
  fill_sockaddr(h.addr, icmp ? 0 : h.port, from, fromlen);
  // A datagram longer than len is truncated and the rest discarded (the
  // pair is SOCK_SEQPACKET); with MSG_TRUNC, data is its real length.
  return static_cast<ssize_t>(data);
}

ssize_t weft_recv(int fd, void* buf, size_t len, int flags) {
  return weft_recvfrom(fd, buf, len, flags, nullptr, nullptr);
}

int weft_shutdown(int fd, int how) {
  int err;
  auto e = lookup(fd, err);
  if (!e) return fail(err);
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return fail(EINVAL);
  if (e->kind != SockKind::tcp) return fail(EOPNOTSUPP);
  Request rq = req(Op::shutdown, e->handle);
  rq.arg0 = how;
  Response r;
  if (int x = rpc(rq, r); x != 0) return fail(x);
  // The write side ends in band: the daemon reads end of file after every
  // byte written before it, then sends FIN.
  ::shutdown(fd, how);
  return 0;
}

int weft_close(int fd) {
  int err;
  auto e = lookup(fd, err);
  if (!e) return fail(err);
  Request rq = req(Op::close, e->handle);
  rq.arg0 = e->linger_zero ? 1 : 0;
  Response r;
  (void)rpc(rq, r);  // a daemon that is gone has closed it already
  {
    State& s = state();
    std::lock_guard lk(s.mu);
    s.table.erase(fd);
  }
  ::close(fd);
  return 0;
}

static int name_op(int fd, Op op, struct sockaddr* addr, socklen_t* len) {
  int err;
  auto e = lookup(fd, err);
  if (!e) return fail(err);
  if (!addr || !len) return fail(EFAULT);
  Response r;
  if (int x = rpc(req(op, e->handle), r); x != 0) return fail(x);
  fill_sockaddr(r.addr, r.port, addr, len);
  return 0;
}

int weft_getsockname(int fd, struct sockaddr* addr, socklen_t* len) { return name_op(fd, Op::getsockname, addr, len); }
int weft_getpeername(int fd, struct sockaddr* addr, socklen_t* len) { return name_op(fd, Op::getpeername, addr, len); }

int weft_setsockopt(int fd, int level, int name, const void* val, socklen_t len) {
  int err;
  auto e = lookup(fd, err);
  if (!e) return fail(err);
  if (!val) return fail(EFAULT);
  // Timeouts act on the waits, which happen on this process's descriptor.
  if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO))
    return ::setsockopt(fd, level, name, val, len);
  Request rq = req(Op::setsockopt, e->handle);
  rq.arg0 = level;
  rq.arg1 = name;
  if (level == SOL_SOCKET && name == SO_LINGER) {
    if (len < static_cast<socklen_t>(sizeof(linger))) return fail(EINVAL);
    linger l;
    std::memcpy(&l, val, sizeof l);
    if (l.l_linger < 0) return fail(EINVAL);
    rq.value = (std::int64_t{l.l_onoff != 0} << 32) | static_cast<std::uint32_t>(l.l_linger);
    Response r;
    if (int x = rpc(rq, r); x != 0) return fail(x);
    update(fd, [&](Entry& x) { x.linger_zero = l.l_onoff && l.l_linger == 0; });
    return 0;
  }
  if (len < static_cast<socklen_t>(sizeof(int))) return fail(EINVAL);
  int v;
  std::memcpy(&v, val, sizeof v);
  rq.value = v;
  Response r;
  if (int x = rpc(rq, r); x != 0) return fail(x);
  return 0;
}

int weft_getsockopt(int fd, int level, int name, void* val, socklen_t* len) {
  int err;
  auto e = lookup(fd, err);
  if (!e) return fail(err);
  if (!val || !len) return fail(EFAULT);
  if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO))
    return ::getsockopt(fd, level, name, val, len);
  int v = 0;
  if (level == SOL_SOCKET && name == SO_TYPE) {
    v = e->kind == SockKind::tcp ? SOCK_STREAM : SOCK_DGRAM;
  } else if (level == SOL_SOCKET && name == SO_DOMAIN) {
    v = AF_INET;
  } else if (level == SOL_SOCKET && name == SO_PROTOCOL) {
    v = e->kind == SockKind::tcp ? IPPROTO_TCP : e->kind == SockKind::udp ? IPPROTO_UDP : IPPROTO_ICMP;
  } else {
    Request rq = req(Op::getsockopt, e->handle);
    rq.arg0 = level;
    rq.arg1 = name;
    Response r;
    if (int x = rpc(rq, r); x != 0) return fail(x);
    v = static_cast<int>(r.value);
    if (level == SOL_SOCKET && name == SO_ERROR && v == 0 && e->st == Entry::St::connecting)
      update(fd, [&](Entry& x) {
        // A non-blocking connect that completed: SO_ERROR 0 and writable.
        struct pollfd p {
          fd, POLLOUT, 0
        };
        if (::poll(&p, 1, 0) == 1 && !(p.revents & POLLHUP)) x.st = Entry::St::connected;
      });
  }
  if (*len < static_cast<socklen_t>(sizeof v)) return fail(EINVAL);
  std::memcpy(val, &v, sizeof v);
  *len = sizeof v;
  return 0;
}

}  // extern "C"
