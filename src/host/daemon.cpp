#include "host/daemon.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>

#include "control/control.hpp"
#include "host/runtime_dir.hpp"
#include "netstat/system_sockets.hpp"
#include "tcp/sockopt.hpp"
#include "tcp/state.hpp"

namespace weft {

namespace {

using control::AcceptRecord;
using control::DgramHeader;
using control::Op;
using control::Request;
using control::Response;
using control::SockKind;

std::runtime_error sys_error(const std::string& what) {
  return std::runtime_error(fmt::format("{}: {}", what, std::strerror(errno)));
}

// epoll tags: the high 32 bits of epoll_data.u64 say what the low 32 name.
enum Tag : std::uint64_t { kSignal = 1, kLink = 2, kListen = 3, kClient = 4, kSock = 5 };
std::uint64_t tag(Tag t, std::uint32_t id) { return (std::uint64_t{t} << 32) | id; }

// Bytes waiting in a socket's receive queue (for a UNIX stream or seqpacket
// socket, the sum of what is queued).
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

constexpr std::size_t kPairBuffer = 256 * 1024;  // each socketpair direction
constexpr std::size_t kFillChunk = 1024;         // see Impl::fill()

// An AF_UNIX pair's capacity each way is the sender's SO_SNDBUF (the
// receiver's SO_RCVBUF is not consulted), so only that is set, on both ends.
void set_pair_buffers(const int (&sv)[2]) {
  int sz = static_cast<int>(kPairBuffer);
  for (int fd : sv) ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
}
constexpr std::size_t kIoChunk = 64 * 1024;

}  // namespace

struct Daemon::Impl {
  struct Client {
    std::uint32_t id = 0;
    int fd = -1;
    pid_t pid = 0;
    uid_t uid = 0;
    std::string program;
    bool greeted = false;
    std::vector<std::uint32_t> handles;  // sockets it owns (may hold closed ones)
    struct Out {
      std::string bytes;
      int fd = -1;  // passed with SCM_RIGHTS, closed once sent
    };
    std::deque<Out> out;  // responses the client has not taken yet
  };

  enum class St : std::uint8_t { fresh, connecting, established, listening, failed, udp, icmp };

  struct Sock {
    std::uint32_t handle = 0;
    SockKind kind = SockKind::tcp;
    SocketId sid = 0;
    int dfd = -1;  // the daemon's end of the pair
    int cfd = -1;  // a duplicate of the client's end
    std::uint32_t client = 0;
    St st = St::fresh;
    std::size_t filler = 0;     // bytes keeping the client's end unwritable until connected
    bool peer_eof_sent = false; // TCP end of stream passed on (SHUT_WR on dfd)
    bool dead = false;          // reset, timed out or failed: nothing more moves
    bool client_eof = false;    // the client shut down writing; FIN sent
    bool want_in = true;        // read dfd when it has data (false: TCP send buffer full)
    bool want_out = false;      // dfd was full: write again when it drains
    std::uint32_t mask = 0;     // current epoll interest
    std::optional<std::errc> end_err;  // why the stream ended (status op)
    std::optional<std::errc> so_error; // SO_ERROR, cleared on read
    bool linger_zero = false;
    std::size_t backlog = 0;
    std::deque<std::uint32_t> pushed;  // listener: children handed to the client, oldest first
    std::optional<Endpoint> udp_peer;
    std::vector<std::uint8_t> staged;  // UDP/ICMP: a datagram the pair had no room for
    std::uint16_t icmp_ident = 0;
  };

  Host& host;
  DaemonConfig cfg;
  DirFd run_dir, host_dir;  // RUNTIME and RUNTIME/NAME, checked (open_control_socket)
  std::string socket_path;
  int listen_fd = -1;
  int ep = -1;
  ino_t sock_ino = 0;
  std::uint32_t next_client = 1;
  std::uint32_t next_handle = 1;
  std::uint16_t next_ident = 1;
  std::unordered_map<std::uint32_t, Client> clients;
  std::unordered_map<std::uint32_t, Sock> socks;
  std::unordered_map<SocketId, std::uint32_t> tcp_sid, udp_sid;
  std::unordered_map<std::uint16_t, std::uint32_t> icmp_ident;
  std::vector<std::uint8_t> buf = std::vector<std::uint8_t>(kIoChunk + sizeof(DgramHeader));
  DaemonCounters counters;
  Instant now{};

  // Giving memory back. A daemon runs for weeks while connections come and
  // go, each with buffers of whatever size it grew to; glibc keeps freed
  // memory inside its heap and returns only its top by itself. A second
  // after sockets close (their buffers are freed when the close completes)
  // or a netstat snapshot (a JSON tree of every socket), malloc_trim()
  // returns every free page, at most once a second whatever the churn.
  // (Measured over kill -9 cycles: RSS grew 1.8 MiB in 400 with glibc's
  // defaults and 0.8 MiB with the fixed mmap threshold of Daemon::start; at
  // 1,000 cycles, with both, about 1.1 MiB, which is a minute's worth of
  // TIME-WAIT connections and goes once they expire.)
  std::optional<Instant> trim_at;
  void want_trim() {
    if (!trim_at) trim_at = now + std::chrono::seconds(1);
  }
  void trim_if_due() {
    if (trim_at && now >= *trim_at) {
      ::malloc_trim(0);
      trim_at.reset();
    }
  }
  // The loop's wait, shortened to the daemon's own deadlines.
  int own_timeout_ms(int timeout) const {
    for (const auto& at : {trim_at, resume_at}) {
      if (!at) continue;
      auto ms = std::chrono::ceil<std::chrono::milliseconds>(*at - now).count();
      int t = static_cast<int>(std::clamp<std::int64_t>(ms, 0, 1000));
      timeout = timeout < 0 ? t : std::min(timeout, t);
    }
    return timeout;
  }

  Impl(Host& h, DaemonConfig c) : host(h), cfg(std::move(c)) {}

  ~Impl() {
    for (auto& [id, s] : socks) {
      if (s.dfd >= 0) ::close(s.dfd);
      if (s.cfd >= 0) ::close(s.cfd);
    }
    for (auto& [id, c] : clients) {
      for (auto& o : c.out)
        if (o.fd >= 0) ::close(o.fd);
      ::close(c.fd);
    }
    if (listen_fd >= 0) {
      // Remove the socket file only if it is still ours (a successor may
      // have replaced it), then the host's directory if that leaves it
      // empty.
      struct stat st{};
      if (::fstatat(host_dir.get(), control::kSocketFile, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == sock_ino) {
        ::unlinkat(host_dir.get(), control::kSocketFile, 0);
        ::unlinkat(run_dir.get(), cfg.name.c_str(), AT_REMOVEDIR);
      }
      ::close(listen_fd);
    }
    if (ep >= 0) ::close(ep);
  }

  // ---------------------------------------------------------------- setup
  // RUNTIME is checked from "/" down and RUNTIME/NAME/ made ours through
  // its descriptor (host/runtime_dir.hpp); only then is the socket bound in
  // it. Nobody else can write RUNTIME/NAME/, so nobody can plant a symlink
  // at the socket's path or swap the socket, and its mode comes from the
  // umask at bind: nothing is ever chmod()ed or chown()ed by a path.
  void open_control_socket() {
    const uid_t self = ::geteuid();
    run_dir = open_trusted_dir(cfg.runtime_dir, self, true);
    host_dir = make_host_dir(run_dir, cfg.runtime_dir, cfg.name, self, cfg.socket_group);
    socket_path = cfg.runtime_dir + "/" + cfg.name + "/" + control::kSocketFile;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof sa.sun_path)
      throw std::runtime_error(fmt::format("control socket path too long: {}", socket_path));
    std::memcpy(sa.sun_path, socket_path.c_str(), socket_path.size() + 1);

    // A live daemon answers a connect; a stale file (its daemon died)
    // refuses it and is replaced.
    struct stat st{};
    if (::fstatat(host_dir.get(), control::kSocketFile, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (!S_ISSOCK(st.st_mode))
        throw std::runtime_error(fmt::format("{} exists and is not a socket", socket_path));
      int probe = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
      bool live = probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
      if (probe >= 0) ::close(probe);
      if (live)
        throw std::runtime_error(
            fmt::format("another weft host is already serving '{}' at {}", cfg.name, socket_path));
      ::unlinkat(host_dir.get(), control::kSocketFile, 0);
    }
    listen_fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) throw sys_error("control socket");
    // 0660 with a group (the set-group-id directory gives the socket its
    // group), else 0600: the mode is right from the first instant.
    mode_t old = ::umask(cfg.socket_group ? 0117 : 0177);
    int rc = ::bind(listen_fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    ::umask(old);
    if (rc != 0) throw sys_error(fmt::format("bind {}", socket_path));
    if (::listen(listen_fd, 128) != 0) throw sys_error("listen on control socket");
    if (::fstatat(host_dir.get(), control::kSocketFile, &st, AT_SYMLINK_NOFOLLOW) == 0) sock_ino = st.st_ino;
  }

  // Each socket costs two descriptors here (its end and the duplicate of
  // the client's) and a third while its descriptor waits to be taken by
  // its client; the margin covers the clients, the link and a capture.
  static constexpr rlim_t kFdMargin = 256;
  static rlim_t fds_needed(std::size_t sockets) { return static_cast<rlim_t>(sockets) * 3 + kFdMargin; }

  void raise_fd_limit(std::vector<std::string>& notes) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) throw sys_error("getrlimit(RLIMIT_NOFILE)");
    const rlim_t need = fds_needed(cfg.max_sockets);
    // The soft limit goes up to the hard one; the hard limit is the
    // operator's word (ulimit -Hn, systemd's LimitNOFILE), even for root.
    if (rl.rlim_cur < rl.rlim_max) {
      rlimit up{rl.rlim_max, rl.rlim_max};
      if (::setrlimit(RLIMIT_NOFILE, &up) == 0) rl.rlim_cur = rl.rlim_max;
    }
    if (rl.rlim_cur >= need) return;
    const std::size_t fits = rl.rlim_cur > kFdMargin ? static_cast<std::size_t>((rl.rlim_cur - kFdMargin) / 3) : 0;
    if (cfg.max_sockets_given || fits == 0)
      throw std::runtime_error(fmt::format(
          "--max-sockets {} needs {} descriptors and the open-file limit is {} (hard limit {}): raise it (ulimit -n) "
          "or lower --max-sockets to {} at most",
          cfg.max_sockets, need, rl.rlim_cur, rl.rlim_max, fits));
    notes.push_back(fmt::format("open-file limit is {} (hard limit {}): serving at most {} sockets, not {}; raise it "
                                "(ulimit -n) for more",
                                rl.rlim_cur, rl.rlim_max, fits, cfg.max_sockets));
    cfg.max_sockets = fits;
  }

  void epoll_add(int fd, std::uint32_t events, std::uint64_t data) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = data;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) throw sys_error("epoll_ctl");
  }

  // ---------------------------------------------------------------- clients
  void accept_clients() {
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

  void client_gone(std::uint32_t cid, bool by_error) {
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
  void drop_responses(Client& c) {
    for (auto& o : c.out)
      if (o.fd >= 0) ::close(o.fd);
    c.out.clear();
  }

  // ------------------------------------------------ out of descriptors
  // When accept4() or socketpair() fails for want of descriptors, the
  // daemon stops taking new control connections and new TCP connections
  // (they wait in the kernel's and the listener's queues: nothing is
  // reset) and takes them again as soon as it frees a descriptor, or after
  // a second in case one was freed elsewhere. A level-triggered listener
  // left in the epoll set would wake the loop for nothing, forever.
  bool accept_paused = false;
  std::optional<Instant> resume_at;
  std::vector<std::uint32_t> accept_waiting;  // listeners with connections not yet handed over

  void pause_accepting() {
    if (accept_paused) return;
    accept_paused = true;
    resume_at = now + std::chrono::seconds(1);
    ++counters.descriptor_exhaustion;
    epoll_event ev{};
    ev.events = 0;
    ev.data.u64 = tag(kListen, 0);
    ::epoll_ctl(ep, EPOLL_CTL_MOD, listen_fd, &ev);
  }

  // Only notes it: the resumption runs from the loop (resume_if_due), never
  // inside the close that freed the descriptor. Handing connections over
  // from there would create sockets for a client being torn down, or for a
  // listener being closed, while their caller walks them.
  bool freed = false;
  void descriptors_freed() { freed = true; }

  void resume_accepting() {
    if (accept_paused) {
      accept_paused = false;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = tag(kListen, 0);
      ::epoll_ctl(ep, EPOLL_CTL_MOD, listen_fd, &ev);
    }
    if (!accept_waiting.empty()) {
      auto waiting = std::move(accept_waiting);
      accept_waiting.clear();
      for (std::uint32_t h : waiting)
        if (auto it = socks.find(h); it != socks.end() && it->second.st == St::listening) push_accepts(it->second);
    }
    if (!accept_paused && accept_waiting.empty()) resume_at.reset();
  }

  void resume_if_due() {
    if (freed || (resume_at && now >= *resume_at)) {
      freed = false;
      resume_at.reset();
      resume_accepting();
    }
  }

  void send_response(Client& c, const Response& r, int pass_fd = -1, std::string extra = {}) {
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
  void flush_client(Client& c) {
    while (!c.out.empty()) {
      auto& o = c.out.front();
      iovec iov{o.bytes.data(), o.bytes.size()};
      msghdr mh{};
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))];
      if (o.fd >= 0) {
        mh.msg_control = ctl;
        mh.msg_controllen = sizeof ctl;
        cmsghdr* cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(cm), &o.fd, sizeof(int));
      }
      ssize_t n = ::sendmsg(c.fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
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

  // A client that does not take its responses stops being read once
  // kMaxQueued are waiting: each may hold a descriptor, and none of it may
  // grow without bound. EPOLLHUP is reported whatever the interest, so
  // its death is still seen.
  static constexpr std::size_t kMaxQueued = 64;
  static bool reading(const Client& c) { return c.out.size() < kMaxQueued; }
  void set_client_interest(Client& c) {
    epoll_event ev{};
    ev.events = (reading(c) ? EPOLLIN : 0u) | (c.out.empty() ? 0u : EPOLLOUT);
    ev.data.u64 = tag(kClient, c.id);
    ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void on_client(std::uint32_t cid, std::uint32_t events) {
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
      char raw[sizeof(Request) + 1];
      iovec iov{raw, sizeof raw};
      msghdr mh{};
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * 4)];
      mh.msg_control = ctl;
      mh.msg_controllen = sizeof ctl;
      ssize_t n = ::recvmsg(it->second.fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) {
        client_gone(cid, false);
        return;
      }
      // Descriptors are never part of a request; close any sent anyway.
      for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
          std::size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
          for (std::size_t j = 0; j < k; ++j) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(cm) + j * sizeof(int), sizeof fd);
            ::close(fd);
          }
        }
      }
      Client& c = it->second;
      if (static_cast<std::size_t>(n) != sizeof(Request) || (mh.msg_flags & MSG_TRUNC)) {
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

  void protocol_error(Client& c, const char*) {
    Response r;
    r.err = EPROTO;
    send_response(c, r);
    client_gone(c.id, true);
  }

  Sock* owned(Client& c, std::uint32_t h) {
    auto it = socks.find(h);
    if (it == socks.end() || it->second.client != c.id) return nullptr;
    return &it->second;
  }

  // Returns false when the client is gone.
  bool handle_request(Client& c, const Request& rq) {
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
        Status st = s->kind == SockKind::tcp   ? host.stack().tcp().bind(s->sid, ep)
                    : s->kind == SockKind::udp ? host.stack().udp().bind(s->sid, ep)
                                               : Status{std::errc::operation_not_supported};
        if (!st) return fail(st.error());
        break;
      }
      case Op::listen: {
        if (s->kind != SockKind::tcp) return fail(std::errc::operation_not_supported);
        std::size_t backlog = rq.arg0 <= 0 ? 1 : static_cast<std::size_t>(rq.arg0);
        backlog = std::min(backlog, host.stack().tcp().config().max_backlog);
        if (auto st = host.stack().tcp().listen(s->sid, backlog); !st) return fail(st.error());
        s->st = St::listening;
        s->backlog = backlog;
        s->want_in = false;  // a listener's descriptor carries no data
        update_interest(*s);
        break;
      }
      case Op::connect: {
        if (s->kind == SockKind::tcp) {
          if (s->st == St::listening) return fail(std::errc::invalid_argument);
          if (auto st = host.stack().tcp().connect(s->sid, ep, now); !st) return fail(st.error());
          s->st = St::connecting;
        } else if (s->kind == SockKind::udp) {
          if (auto st = host.stack().udp().connect(s->sid, ep); !st) return fail(st.error());
          s->udp_peer = ep;
        } else {
          return fail(std::errc::operation_not_supported);
        }
        break;
      }
      case Op::shutdown: {
        if (s->kind != SockKind::tcp) return fail(std::errc::operation_not_supported);
        if (s->st != St::established && s->st != St::connecting) return fail(std::errc::not_connected);
        // SHUT_WR itself travels in band (the client shuts its end; the FIN
        // follows the data it wrote); SHUT_RD is told here.
        if (rq.arg0 == SHUT_RD || rq.arg0 == SHUT_RDWR) {
          if (auto st = host.stack().tcp().shutdown(s->sid, Shutdown::read, now); !st) return fail(st.error());
        }
        break;
      }
      case Op::close:
        if (rq.arg0 == 1) s->linger_zero = true;
        close_sock(rq.handle, false);
        break;
      case Op::getsockname: {
        std::optional<Endpoint> e = s->kind == SockKind::tcp   ? host.stack().tcp().local_endpoint(s->sid)
                                    : s->kind == SockKind::udp ? host.stack().udp().local_endpoint(s->sid)
                                                               : std::nullopt;
        if (e) {
          r.addr = e->addr.value();
          r.port = e->port.value();
        }
        break;
      }
      case Op::getpeername: {
        std::optional<Endpoint> e = s->kind == SockKind::tcp ? host.stack().tcp().remote_endpoint(s->sid) : s->udp_peer;
        if (!e || (s->kind == SockKind::tcp && s->st != St::established)) return fail(std::errc::not_connected);
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
      case Op::status:
        r.err = s->end_err ? static_cast<int>(*s->end_err) : 0;
        send_response(c, r);
        return true;
      default:
        protocol_error(c, "unknown op");
        return false;
    }
    send_response(c, r);
    return true;
  }

  // Linux's answers, Linux's ranges. A TCP socket's options go through the
  // one module every front end shares (src/tcp/sockopt.hpp: names, ranges,
  // errno, the SO_RCVBUF/SO_SNDBUF rule of docs/conformance.md). The
  // request carries an int64 but setsockopt(2) an int, so any value
  // outside int's range is EINVAL first (SO_LINGER packs its two fields).
  Status set_option(Sock& s, int level, int name, std::int64_t v) {
    auto& tcp = host.stack().tcp();
    auto& udp = host.stack().udp();
    if (level == SOL_SOCKET && name == SO_LINGER) {
      // value: bit 32 = l_onoff, low 32 bits = l_linger seconds.
      if (s.kind != SockKind::tcp) return std::errc::no_protocol_option;
      const bool lon = (v >> 32) & 1;
      const auto secs = static_cast<std::uint32_t>(v & 0xffffffff);
      s.linger_zero = lon && secs == 0;
      return tcp.set_linger(s.sid, lon ? std::optional<Duration>(std::chrono::seconds(secs)) : std::nullopt);
    }
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
      return std::errc::invalid_argument;
    const int iv = static_cast<int>(v);
    if (s.kind == SockKind::tcp) {
      if (level == SOL_SOCKET) return tcp::set_socket_option(tcp, s.sid, name, iv, now);
      if (level == IPPROTO_TCP) return tcp::set_tcp_option(tcp, s.sid, name, iv, now);
      return std::errc::no_protocol_option;
    }
    if (level != SOL_SOCKET) return std::errc::no_protocol_option;
    switch (name) {
      case SO_REUSEADDR:
        return udp.set_reuse_addr(s.sid, iv != 0);
      case SO_RCVBUF:
        if (iv <= 0) return std::errc::invalid_argument;
        return udp.set_recv_buffer(s.sid, static_cast<std::size_t>(iv));
      case SO_SNDBUF:
        return ok_status();  // datagrams are not buffered for sending
      default:
        return std::errc::no_protocol_option;
    }
  }

  Result<std::int64_t> get_option(Sock& s, int level, int name) {
    if (level == SOL_SOCKET && name == SO_ERROR) {
      std::optional<std::errc> e = s.so_error;
      s.so_error.reset();
      if (!e && s.kind == SockKind::tcp && s.st == St::established) e = host.stack().tcp().take_error(s.sid);
      return std::int64_t{e ? static_cast<int>(*e) : 0};
    }
    if (level == SOL_SOCKET && name == SO_ACCEPTCONN) return std::int64_t{s.st == St::listening};
    if (s.kind == SockKind::tcp) {
      auto& tcp = host.stack().tcp();
      Result<int> r = level == SOL_SOCKET    ? tcp::get_socket_option(tcp, s.sid, name)
                      : level == IPPROTO_TCP ? tcp::get_tcp_option(tcp, s.sid, name)
                                             : Result<int>(std::errc::no_protocol_option);
      if (!r) return r.error();
      return std::int64_t{*r};
    }
    return std::errc::no_protocol_option;
  }

  bool op_socket(Client& c, const Request& rq, Response& r) {
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
    int sv[2];
    int type = kind == SockKind::tcp ? SOCK_STREAM : SOCK_SEQPACKET;
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) {
      r.err = errno;  // EMFILE/ENFILE: the daemon is at its limit
      send_response(c, r);
      return true;
    }
    int fl = ::fcntl(sv[0], F_GETFL);
    ::fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);  // the daemon's end only: flags are per open file
    set_pair_buffers(sv);
    int pass = ::fcntl(sv[1], F_DUPFD_CLOEXEC, 0);
    if (pass < 0) {
      r.err = errno;
      ::close(sv[0]);
      ::close(sv[1]);
      send_response(c, r);
      return true;
    }
    Sock s;
    s.handle = next_handle++;
    s.kind = kind;
    s.dfd = sv[0];
    s.cfd = sv[1];
    s.client = c.id;
    if (kind == SockKind::tcp) {
      s.sid = host.stack().tcp().open();
      tcp_sid[s.sid] = s.handle;
      fill(s);
      s.want_in = false;  // nothing to read until connected
    } else if (kind == SockKind::udp) {
      s.sid = host.stack().udp().open();
      udp_sid[s.sid] = s.handle;
      s.st = St::udp;
    } else {
      s.st = St::icmp;
      // An echo identifier per socket, as Linux ping sockets use their port.
      while (icmp_ident.count(next_ident) || next_ident == 0) ++next_ident;
      s.icmp_ident = next_ident++;
      icmp_ident[s.icmp_ident] = s.handle;
    }
    std::uint32_t h = s.handle;
    auto& ref = socks.emplace(h, std::move(s)).first->second;
    ref.mask = 0;
    epoll_add(ref.dfd, 0, tag(kSock, h));
    update_interest(ref);
    c.handles.push_back(h);
    ++counters.sockets_opened;
    ++counters.sockets_current;
    r.handle = h;
    send_response(c, r, pass);
    return true;
  }

  // --------------------------------------------------------- the data pump
  // A TCP socket's descriptor must not be writable before the handshake
  // completes (a non-blocking connect reports completion as writability).
  // Shrinking the client end's send buffer to the minimum and filling it
  // does that; the filler is discarded and the buffer restored once the
  // connection is established (or has failed).
  void fill(Sock& s) {
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
  void unfill(Sock& s) {
    while (s.filler > 0) {
      ssize_t n = ::recv(s.dfd, buf.data(), std::min(s.filler, buf.size()), MSG_DONTWAIT);
      if (n <= 0) break;
      s.filler -= static_cast<std::size_t>(n);
    }
    s.filler = 0;
    int sz = static_cast<int>(kPairBuffer);
    ::setsockopt(s.cfd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  }

  void update_interest(Sock& s) {
    std::uint32_t m = 0;
    if (s.kind == SockKind::tcp) {
      if (s.st == St::established && s.want_in && !s.client_eof && !s.dead) m |= EPOLLIN;
    } else {
      m |= EPOLLIN;
    }
    if (s.want_out) m |= EPOLLOUT;
    if (m == s.mask) return;
    epoll_event ev{};
    ev.events = m;
    ev.data.u64 = tag(kSock, s.handle);
    ::epoll_ctl(ep, EPOLL_CTL_MOD, s.dfd, &ev);
    s.mask = m;
  }

  // The connection's stream ended (reset, timeout): the client's reads end,
  // its writes fail, and `status` tells why.
  void end_stream(Sock& s, std::optional<std::errc> err) {
    if (err) s.end_err = err;
    ::shutdown(s.dfd, SHUT_RDWR);
    s.want_in = false;
    s.want_out = false;
    s.dead = true;
    update_interest(s);
  }

  // TCP -> client. Peek, write what the pair takes, consume that much: no
  // staging copy per socket, and nothing is lost when the pair is full.
  void tcp_to_client(Sock& s) {
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
  void client_to_tcp(Sock& s) {
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
  void push_accepts(Sock& l) {
    auto& tcp = host.stack().tcp();
    auto it_client = clients.find(l.client);
    if (it_client == clients.end()) return;
    while (inq(l.cfd) / sizeof(AcceptRecord) < l.backlog) {
      if (tcp.pending_accepts(l.sid) == 0) break;
      // At the socket limit or out of descriptors, the connection waits in
      // the listener's queue (as it waits in a kernel listener's when the
      // process does not call accept) until descriptors_freed().
      int sv[2];
      if (socks.size() >= cfg.max_sockets ||
          ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        if (socks.size() >= cfg.max_sockets) ++counters.socket_limit_hits;
        if (std::find(accept_waiting.begin(), accept_waiting.end(), l.handle) == accept_waiting.end())
          accept_waiting.push_back(l.handle);
        if (!resume_at) resume_at = now + std::chrono::seconds(1);
        break;
      }
      auto a = tcp.accept(l.sid);
      if (!a) {
        ::close(sv[0]);
        ::close(sv[1]);
        break;
      }
      int fl = ::fcntl(sv[0], F_GETFL);
      ::fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
      set_pair_buffers(sv);
      Sock s;
      s.handle = next_handle++;
      s.kind = SockKind::tcp;
      s.sid = a->id;
      s.dfd = sv[0];
      s.cfd = sv[1];
      s.client = l.client;
      s.st = St::established;
      tcp_sid[s.sid] = s.handle;
      auto local = tcp.local_endpoint(a->id).value_or(Endpoint{});
      AcceptRecord rec;
      rec.handle = s.handle;
      rec.local_addr = local.addr.value();
      rec.local_port = local.port.value();
      rec.peer_addr = a->peer.addr.value();
      rec.peer_port = a->peer.port.value();
      iovec iov{&rec, sizeof rec};
      msghdr mh{};
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))];
      mh.msg_control = ctl;
      mh.msg_controllen = sizeof ctl;
      cmsghdr* cm = CMSG_FIRSTHDR(&mh);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(cm), &sv[1], sizeof(int));
      if (::sendmsg(l.dfd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof rec)) {
        ::close(sv[0]);
        ::close(sv[1]);
        tcp_sid.erase(a->id);
        (void)tcp.abort(a->id, now);  // the connection was just accepted: abort cannot fail
        break;
      }
      std::uint32_t h = s.handle;
      auto& ref = socks.emplace(h, std::move(s)).first->second;
      epoll_add(ref.dfd, 0, tag(kSock, h));
      it_client->second.handles.push_back(h);
      l.pushed.push_back(h);
      while (l.pushed.size() > l.backlog) l.pushed.pop_front();
      ++counters.sockets_opened;
      ++counters.sockets_current;
      tcp_to_client(ref);
      update_interest(ref);
    }
  }

  void on_tcp_event(SocketId sid) {
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

  void on_sock(std::uint32_t h, std::uint32_t events) {
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

  // ------------------------------------------------------------- datagrams
  void send_dgrams(Sock& s) {
    for (int i = 0; i < 64; ++i) {
      ssize_t n = ::recv(s.dfd, buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0) break;
      if (n == 0) break;  // the client shut the pair
      if (static_cast<std::size_t>(n) < sizeof(DgramHeader) || static_cast<std::size_t>(n) > buf.size()) continue;
      DgramHeader h;
      std::memcpy(&h, buf.data(), sizeof h);
      std::span<const std::uint8_t> payload(buf.data() + sizeof h, static_cast<std::size_t>(n) - sizeof h);
      if (s.kind == SockKind::udp) {
        std::optional<Endpoint> to;
        if (h.addr != 0 || h.port != 0) to = Endpoint{Ipv4Addr{h.addr}, Port{h.port}};
        auto r = host.stack().udp().send_to(s.sid, payload, to, now);
        if (!r) report_dgram_error(s, r.error());
      } else {
        auto r = host.stack().send_echo_request(Ipv4Addr{h.addr}, s.icmp_ident, h.port, payload, now);
        if (!r) report_dgram_error(s, r.error());
      }
    }
  }

  // Asynchronous errors reach the client as a header with err set; its next
  // recv returns -1 with that errno (as Linux reports ICMP errors).
  void report_dgram_error(Sock& s, std::errc e) {
    DgramHeader h;
    h.err = static_cast<int>(e);
    (void)::send(s.dfd, &h, sizeof h, MSG_DONTWAIT | MSG_NOSIGNAL);  // a full pair drops the report, as a full socket buffer drops it
  }

  void deliver_dgrams(Sock& s) {
    if (!s.staged.empty()) {
      if (::send(s.dfd, s.staged.data(), s.staged.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        if (errno == EAGAIN) {
          s.want_out = true;
          update_interest(s);
          return;
        }
      }
      s.staged.clear();
    }
    if (s.kind != SockKind::udp) return;
    auto& udp = host.stack().udp();
    for (;;) {
      auto r = udp.recv_from(s.sid, std::span<std::uint8_t>(buf.data() + sizeof(DgramHeader), kIoChunk));
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
          s.staged.assign(buf.data(), buf.data() + sizeof h + len);
          s.want_out = true;
          break;
        }
      }
    }
    update_interest(s);
  }

  void on_echo_reply(const EchoReply& e) {
    auto it = icmp_ident.find(e.ident);
    if (it == icmp_ident.end()) return;
    Sock& s = socks.at(it->second);
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

  // ------------------------------------------------------------- closing
  // Closes as close(2) on a kernel socket: RST when unread data would be
  // discarded or SO_LINGER is 0, else FIN after every byte the process wrote
  // (those still in the pair are moved into the TCP send buffer first, which
  // grows to take them: the kernel had accepted them already).
  void close_sock(std::uint32_t h, bool reset_all) {
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

  // SIGTERM: reset every connection, end every client's descriptors (their
  // calls then fail with ECONNRESET or ENETDOWN) and flush the RSTs.
  void shutdown_all() {
    std::vector<std::uint32_t> all;
    for (auto& [h, s] : socks) {
      if (s.kind == SockKind::tcp && s.st == St::established) {
        ::shutdown(s.dfd, SHUT_RDWR);
        s.end_err = std::errc::connection_reset;
      }
      all.push_back(h);
    }
    for (auto h : all) close_sock(h, true);
    std::vector<SocketId> rest;
    host.stack().tcp().for_each_socket([&](const TcpInfo& i) { rest.push_back(i.id); });
    for (SocketId id : rest) (void)host.stack().tcp().abort(id, now);  // ids just listed: abort cannot fail
    host.step(now);
    std::vector<std::uint32_t> cs;
    for (auto& [id, c] : clients) cs.push_back(id);
    for (auto id : cs) client_gone(id, false);
  }

  // ------------------------------------------------------------- netstat
  nlohmann::json owner_json(std::uint32_t cid) const {
    auto it = clients.find(cid);
    if (it == clients.end()) return nullptr;
    return {{"pid", it->second.pid}, {"uid", it->second.uid}, {"program", it->second.program}};
  }

  static nlohmann::json ep_json(const Endpoint& e) {
    return {{"address", e.addr.to_string()}, {"port", e.port.value()}};
  }

  nlohmann::json snapshot() const {
    using nlohmann::json;
    const auto& tcp = host.stack().tcp();
    const auto& udp = host.stack().udp();
    json daemon_owner = {{"pid", ::getpid()}, {"uid", ::getuid()}, {"program", program_name(::getpid())}};
    json socks_js = json::array();
    tcp.for_each_socket([&](const TcpInfo& i) {
      json o;
      o["proto"] = "tcp";
      o["id"] = socket_slot(i.id);  // the slot: small, unique while the socket lives (docs/netstat-json.md)
      o["state"] = std::string(tcp::state_name(i.state));
      o["local"] = ep_json(i.local);
      o["remote"] = i.remote ? ep_json(*i.remote) : json(nullptr);
      std::size_t rq = i.recv_queue, sq = i.send_queue;
      json owner = nullptr;
      if (auto h = tcp_sid.find(i.id); h != tcp_sid.end()) {
        const Sock& s = socks.at(h->second);
        owner = owner_json(s.client);
        if (s.st == St::listening) {
          rq += inq(s.cfd) / sizeof(AcceptRecord);
        } else {
          // Bytes in the pair count as the kernel would count them: unread
          // by the process (Recv-Q) or written and not yet acknowledged.
          rq += inq(s.cfd);
          std::size_t in_pair = inq(s.dfd);
          sq += in_pair > s.filler ? in_pair - s.filler : 0;
        }
      } else if (host.tcp_services() && host.tcp_services()->owns(i.id)) {
        owner = daemon_owner;  // the daemon's own services (echo, discard, ...)
      }  // else an orphan finishing its close: no owner, as the kernel shows it
      if (i.state == tcp::TcpState::listen) {
        // net-tools netstat (reading /proc/net/tcp) shows a listener's
        // Send-Q as 0; ss shows the backlog there. Follow netstat, and keep
        // the backlog as a field of its own.
        o["backlog"] = sq;
        sq = 0;
      }
      o["recv_q"] = rq;
      o["send_q"] = sq;
      o["owner"] = owner;
      o["tcp_info"] = {{"srtt_us", std::chrono::duration_cast<std::chrono::microseconds>(i.srtt).count()},
                       {"rttvar_us", std::chrono::duration_cast<std::chrono::microseconds>(i.rttvar).count()},
                       {"rto_us", std::chrono::duration_cast<std::chrono::microseconds>(i.rto).count()},
                       {"cwnd", i.cwnd},
                       {"ssthresh", i.ssthresh},
                       {"snd_wnd", i.snd_wnd},
                       {"rcv_wnd", i.rcv_wnd},
                       {"mss", i.mss},
                       {"retransmits", i.retransmits},
                       {"bytes_in", i.bytes_in},
                       {"bytes_out", i.bytes_out},
                       {"sack", i.sack},
                       {"timestamps", i.timestamps},
                       {"snd_wscale", i.snd_wscale},
                       {"rcv_wscale", i.rcv_wscale}};
      socks_js.push_back(std::move(o));
    });
    for (const auto& u : udp.sockets()) {
      json o;
      o["proto"] = "udp";
      o["id"] = socket_slot(u.id);
      o["state"] = u.remote ? "ESTABLISHED" : "";
      o["local"] = ep_json(u.local);
      o["remote"] = u.remote ? ep_json(*u.remote) : json(nullptr);
      std::size_t rq = u.recv_queue_bytes, sq = 0;
      json owner = daemon_owner;
      if (auto h = udp_sid.find(u.id); h != udp_sid.end()) {
        const Sock& s = socks.at(h->second);
        owner = owner_json(s.client);
        rq += inq(s.cfd);
        sq += inq(s.dfd);
      }
      o["recv_q"] = rq;
      o["send_q"] = sq;
      o["owner"] = owner;
      socks_js.push_back(std::move(o));
    }
    json counters_js = json::object();
    auto add = [&](const std::string& full, std::uint64_t v) {
      auto dot = full.find('.');
      std::string group = dot == std::string::npos ? "other" : full.substr(0, dot);
      std::string name = dot == std::string::npos ? full : full.substr(dot + 1);
      counters_js[group][name] = v;
    };
    for (auto& [n, v] : host.all_counters()) add(n, v);
    counters.visit([&](const char* n, std::uint64_t v) { add(std::string("daemon.") + n, v); });
    return {{"schema", "weft-netstat/1"},
            {"host",
             {{"name", cfg.name},
              {"address", host.stack().config().address.to_string()},
              {"link", cfg.link_description},
              {"pid", ::getpid()}}},
            {"sockets", std::move(socks_js)},
            {"counters", std::move(counters_js)}};
  }

  // ------------------------------------------------------------- the loop
  Status run(const EventLoopHooks& hooks) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) return std::errc{errno};
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) return std::errc{errno};
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } sfd_closer{sfd};
    epoll_add(sfd, EPOLLIN, tag(kSignal, 0));
    if (int lfd = host.link().poll_fd(); lfd >= 0) epoll_add(lfd, EPOLLIN, tag(kLink, 0));
    epoll_add(listen_fd, EPOLLIN, tag(kListen, 0));

    epoll_event events[64];
    bool link_readable = true;  // until a poll says otherwise
    for (;;) {
      now = monotonic_now();
      host.step(now, link_readable);
      trim_if_due();
      resume_if_due();
      if (hooks.after_step) hooks.after_step(now);
      if (hooks.stop && hooks.stop()) {
        shutdown_all();
        return ok_status();
      }
      int n = epoll_wait(ep, events, 64, own_timeout_ms(wait_timeout_ms(host, hooks)));
      link_readable = n < 0;  // EINTR: nothing known, read
      if (n < 0) {
        if (errno == EINTR) continue;
        return std::errc{errno};
      }
      now = monotonic_now();
      for (int i = 0; i < n; ++i) {
        auto t = static_cast<Tag>(events[i].data.u64 >> 32);
        auto id = static_cast<std::uint32_t>(events[i].data.u64);
        switch (t) {
          case kSignal: {
            signalfd_siginfo si;
            while (::read(sfd, &si, sizeof si) == sizeof si) {
              if (si.ssi_signo == SIGUSR1) {
                if (hooks.on_usr1) hooks.on_usr1();
              } else {
                shutdown_all();
                return ok_status();
              }
            }
            break;
          }
          case kListen:
            accept_clients();
            break;
          case kClient:
            on_client(id, events[i].events);
            break;
          case kSock:
            on_sock(id, events[i].events);
            break;
          case kLink:
            link_readable = true;  // host.step() reads it
            break;
        }
      }
    }
  }
};

std::unique_ptr<Daemon> Daemon::start(Host& host, DaemonConfig cfg, std::vector<std::string>& notes) {
  auto impl = std::make_unique<Impl>(host, std::move(cfg));
  // Buffers of 128 KiB and more (a busy connection's) come from mmap and go
  // straight back to the system when freed. glibc's default raises this
  // threshold each time such a block is freed, after which they are carved
  // from the heap and fragment it; a fixed value turns that off.
  ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  ::signal(SIGPIPE, SIG_IGN);  // every send uses MSG_NOSIGNAL; this covers the rest
  impl->ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (impl->ep < 0) throw sys_error("epoll_create1");
  impl->raise_fd_limit(notes);
  impl->open_control_socket();
  Impl* p = impl.get();
  host.set_on_tcp_event([p](SocketId id, Instant) { p->on_tcp_event(id); });
  host.set_on_udp_readable([p](SocketId id, Instant) {
    auto it = p->udp_sid.find(id);
    if (it != p->udp_sid.end()) p->deliver_dgrams(p->socks.at(it->second));
  });
  host.stack().set_on_echo_reply([p](const EchoReply& e) { p->on_echo_reply(e); });
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Daemon::~Daemon() = default;
Status Daemon::run(const EventLoopHooks& hooks) { return impl_->run(hooks); }
nlohmann::json Daemon::snapshot() const { return impl_->snapshot(); }
const DaemonCounters& Daemon::counters() const { return impl_->counters; }
CounterList Daemon::all_counters() const {
  CounterList out = impl_->host.all_counters();
  collect_counters(impl_->counters, "daemon.", out);
  return out;
}

}  // namespace weft
