#include "host/daemon_impl.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include <fmt/format.h>

namespace weft {

using namespace daemon_detail;

Daemon::Impl::~Impl() {
  for (auto& [id, s] : socks)
    if (s.dfd >= 0) ::close(s.dfd);  // and s.cfd, with s
  for (auto& [id, c] : clients) {
    for (auto& o : c.out)
      if (o.fd >= 0) ::close(o.fd);
    ::close(c.fd);
  }
  if (listen_fd >= 0) {
    // Remove the socket file only if it is still ours (a successor may
    // have replaced it), then the host's directory if that leaves it
    // empty.
    struct stat st {};
    if (::fstatat(host_dir.get(), control::kSocketFile, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == sock_ino) {
      ::unlinkat(host_dir.get(), control::kSocketFile, 0);
      ::unlinkat(run_dir.get(), cfg.name.c_str(), AT_REMOVEDIR);
    }
    ::close(listen_fd);
  }
}
void Daemon::Impl::trim_if_due() {
  if (trim_at && now >= *trim_at) {
    ::malloc_trim(0);
    trim_at.reset();
  }
}

// The loop's wait, shortened to the daemon's own deadlines.
int Daemon::Impl::own_timeout_ms(int timeout) const {
  for (const auto& at : {trim_at, resume_at}) {
    if (!at) continue;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(*at - now).count();
    int t = static_cast<int>(std::clamp<std::int64_t>(ms, 0, 1000));
    timeout = timeout < 0 ? t : std::min(timeout, t);
  }
  return timeout;
}

// ---------------------------------------------------------------- setup
// RUNTIME is checked from "/" down and RUNTIME/NAME/ made ours through
// its descriptor (host/runtime_dir.hpp); only then is the socket bound in
// it. Nobody else can write RUNTIME/NAME/, so nobody can plant a symlink
// at the socket's path or swap the socket, and its mode comes from the
// umask at bind: nothing is ever chmod()ed or chown()ed by a path.
void Daemon::Impl::open_control_socket() {
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
  struct stat st {};
  if (::fstatat(host_dir.get(), control::kSocketFile, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(fmt::format("{} exists and is not a socket", socket_path));
    int probe = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    if (probe >= 0) ::close(probe);
    if (live)
      throw std::runtime_error(fmt::format("another weft host is already serving '{}' at {}", cfg.name, socket_path));
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

void Daemon::Impl::raise_fd_limit(std::vector<std::string>& notes) {
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
  notes.push_back(
      fmt::format("open-file limit is {} (hard limit {}): serving at most {} sockets, not {}; raise it "
                  "(ulimit -n) for more",
                  rl.rlim_cur, rl.rlim_max, fits, cfg.max_sockets));
  cfg.max_sockets = fits;
}

void Daemon::Impl::epoll_add(int fd, std::uint32_t events, std::uint64_t data) {
  if (auto st = loop.add(fd, events, data); !st) {
    errno = st.errno_value();
    throw sys_error("epoll_ctl");
  }
}

// ------------------------------------------------------------- the loop
// The loop is host/event_loop.hpp's; the daemon adds the control socket,
// its clients and its sockets' descriptors, and its own deadlines.
Status Daemon::Impl::run(const EventLoopHooks& hooks) {
  if (auto st = loop.add(listen_fd, EPOLLIN, tag(kListen, 0)); !st) return st;
  EventLoop::Handlers h;
  h.on_time = [this](Instant t) { now = t; };
  h.after_step = [this](Instant) {
    trim_if_due();
    resume_if_due();
  };
  h.timeout = [this](int t) { return own_timeout_ms(t); };
  h.on_event = [this](std::uint64_t key, std::uint32_t events) { on_event(key, events); };
  h.on_stop = [this] { shutdown_all(); };
  return loop.run(host, hooks, h);
}

void Daemon::Impl::on_event(std::uint64_t key, std::uint32_t events) {
  auto id = static_cast<std::uint32_t>(key);
  switch (static_cast<Tag>(key >> 32)) {
    case kListen:
      accept_clients();
      break;
    case kClient:
      on_client(id, events);
      break;
    case kSock:
      on_sock(id, events);
      break;
  }
}

// SIGTERM: reset every connection, end every client's descriptors (their
// calls then fail with ECONNRESET or ENETDOWN) and flush the RSTs.
void Daemon::Impl::shutdown_all() {
  std::vector<std::uint32_t> all;
  for (auto& [h, s] : socks) {
    if (auto* t = std::get_if<StreamPair>(&s.as); t && t->phase == StreamPair::Phase::open) {
      ::shutdown(s.dfd, SHUT_RDWR);
      t->end_err = std::errc::connection_reset;
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

std::unique_ptr<Daemon> Daemon::start(Host& host, DaemonConfig cfg, std::vector<std::string>& notes) {
  auto impl = std::make_unique<Impl>(host, std::move(cfg));
  // Buffers of 128 KiB and more (a busy connection's) come from mmap and go
  // straight back to the system when freed. glibc's default raises this
  // threshold each time such a block is freed, after which they are carved
  // from the heap and fragment it; a fixed value turns that off.
  ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  ::signal(SIGPIPE, SIG_IGN);  // every send uses MSG_NOSIGNAL; this covers the rest
  if (auto st = impl->loop.opened(); !st) {
    errno = st.errno_value();
    throw sys_error("epoll_create1");
  }
  impl->raise_fd_limit(notes);
  impl->open_control_socket();
  Impl* p = impl.get();
  host.set_on_tcp_event([p](SocketId id, Instant) { p->on_tcp_event(id); });
  host.set_on_udp_readable([p](SocketId id, Instant) {
    auto it = p->udp_sid.find(id);
    if (it == p->udp_sid.end()) return;
    Sock& s = p->socks.at(it->second);
    p->deliver_dgrams(s, std::get<DatagramPair>(s.as));
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
