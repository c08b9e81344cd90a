// weft cat: netcat over a weft host's sockets (libweft-client).
//
//   weft cat [-u] [-w SECONDS] [-s ADDR] [-p PORT] HOST PORT   connect
//   weft cat -l [-u] [-w SECONDS] [ADDR] PORT                  listen
//
// TCP: copies stdin to the connection and the connection to stdout with
// one poll() loop, 64 KiB at a time in each direction. At end of stdin it
// shuts down writing (FIN) and keeps reading; it exits 0 once both
// directions are done: stdin sent and shut down, and the peer's FIN
// reached with everything received written out. A peer that closes first
// does not cut stdin short (as ncat when connecting), so either side may
// be the sender with the other's stdin at /dev/null. Exit 1 with one line
// on stderr for everything else:
//   weft cat: connect 192.0.2.20:4444: Connection refused
//   weft cat: recv: Connection reset by peer
//   weft cat: write stdout: Broken pipe     (stdout closed: ncat also
//                                            reports it and fails)
// -w bounds the connect (non-blocking connect, poll, SO_ERROR); without it
// the connect lasts as long as the stack's SYN retries (TCP_SYNCNT).
// -l accepts one connection and closes the listener.
//
// UDP (-u): each read of stdin is one datagram to the peer (a connected
// socket), each datagram received is written to stdout. -l -u waits for the
// first datagram and connects to its sender. At end of stdin the client
// exits at once (as ncat), or with -w after SECONDS without a datagram
// arriving, so that replies can still be printed.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "cli.hpp"
#include "client/weft.h"
#include "client_util.hpp"

namespace weft::cli {

namespace {

constexpr std::size_t kBuf = 64 * 1024;
constexpr std::size_t kMaxDatagram = 65507;  // 65535 - IPv4 header - UDP header

struct CatOptions {
  bool listen = false;
  bool udp = false;
  double wait = -1;  // -w seconds; < 0: not given
  bool wait_given = false;
  std::string source;
  std::string source_port;
  std::vector<std::string> args;
};

// ---------------------------------------------------------------- stdio
// The loop makes stdin and stdout non-blocking so that a stdout that does
// not drain never stops the other direction (terminals are left blocking:
// their writes do not stall for long, and a shell shares them). The open
// file descriptions may be shared with other processes (a pipeline, the
// shell), so the old flags come back on every way out: return, exception,
// and the signals that end the process.
int g_saved_flags[2] = {-1, -1};

void restore_stdio_flags() {
  for (int fd : {0, 1})
    if (g_saved_flags[fd] >= 0) ::fcntl(fd, F_SETFL, g_saved_flags[fd]);
}

void restore_and_reraise(int sig) {
  restore_stdio_flags();
  ::raise(sig);  // blocked until we return; SA_RESETHAND made it fatal again
}

class NonBlockingStdio {
 public:
  NonBlockingStdio() {
    for (int fd : {0, 1}) {
      if (::isatty(fd)) continue;
      int fl = ::fcntl(fd, F_GETFL);
      if (fl < 0 || (fl & O_NONBLOCK)) continue;
      g_saved_flags[fd] = fl;
      ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    }
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction old {};
      if (::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;  // keep it ignored
      struct sigaction sa {};
      sa.sa_handler = restore_and_reraise;
      sa.sa_flags = SA_RESETHAND;
      ::sigaction(sig, &sa, nullptr);
    }
  }
  ~NonBlockingStdio() {
    restore_stdio_flags();
    g_saved_flags[0] = g_saved_flags[1] = -1;
  }
  NonBlockingStdio(const NonBlockingStdio&) = delete;
  NonBlockingStdio& operator=(const NonBlockingStdio&) = delete;
};

// A buffer in flight from one descriptor to another.
struct Pending {
  std::vector<char> data = std::vector<char>(kBuf);
  std::size_t off = 0, len = 0;
  bool empty() const { return off == len; }
  char* begin() { return data.data() + off; }
  std::size_t size() const { return len - off; }
  void fill(std::size_t n) { off = 0, len = n; }
  void take(std::size_t n) { off += n; }
};

// Writes what stdout takes now. EPIPE and the rest are runtime errors.
void write_stdout(Pending& p) {
  while (!p.empty()) {
    ssize_t n = ::write(STDOUT_FILENO, p.begin(), p.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      sys_fail("write stdout", errno);
    }
    p.take(static_cast<std::size_t>(n));
  }
}

// Reads one chunk of stdin into p (false at end of input).
bool read_stdin(Pending& p, std::size_t max) {
  ssize_t n = ::read(STDIN_FILENO, p.data.data(), max);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;
    sys_fail("read stdin", errno);
  }
  if (n == 0) return false;
  p.fill(static_cast<std::size_t>(n));
  return true;
}

constexpr short kInEvents = POLLIN | POLLHUP | POLLERR | POLLNVAL;

using Clock = std::chrono::steady_clock;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// poll()'s timeout until `until` (-1: none).
int poll_ms(std::optional<Clock::time_point> until) {
  if (!until) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(*until - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// ---------------------------------------------------------------- TCP
// The copy loop. Each direction holds at most one buffer: stdin is not
// read while the socket has not taken the last chunk, nor the socket while
// stdout has not (backpressure reaches the peer through TCP's window).
int copy_stream(int s) {
  Pending up, down;  // stdin -> socket, socket -> stdout
  bool in_eof = false, shut = false, peer_eof = false;
  // A send that found the connection gone (reset, or ended by the stack):
  // what the peer sent before still reaches stdout, then this is reported.
  // The reason is reported once by whichever call sees it first.
  std::optional<int> send_err;
  for (;;) {
    if (in_eof && up.empty() && !shut) {
      if (weft_shutdown(s, SHUT_WR) != 0) sys_fail("shutdown", errno);
      shut = true;
    }
    if (peer_eof && down.empty() && shut) {
      if (send_err) sys_fail("send", *send_err);
      return 0;
    }
    short se = static_cast<short>((up.empty() ? 0 : POLLOUT) | (peer_eof || !down.empty() ? 0 : POLLIN));
    pollfd p[3] = {{in_eof || !up.empty() ? -1 : STDIN_FILENO, POLLIN, 0},
                   {se ? s : -1, se, 0},
                   {down.empty() ? -1 : STDOUT_FILENO, POLLOUT, 0}};
    if (::poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      sys_fail("poll", errno);
    }
    // Receive before sending: when the peer reset the connection, recv is
    // the call that reports it (after the data that came before the reset).
    if ((p[1].revents & kInEvents) && !peer_eof && down.empty()) {
      ssize_t n = weft_recv(s, down.data.data(), kBuf, 0);
      if (n > 0) {
        down.fill(static_cast<std::size_t>(n));
      } else if (n == 0) {
        peer_eof = true;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        sys_fail("recv", errno);
      }
    }
    if (!down.empty()) write_stdout(down);
    if ((p[0].revents & kInEvents) && up.empty()) {
      if (p[0].revents & POLLNVAL) {
        in_eof = true;
      } else {
        in_eof = !read_stdin(up, kBuf);
      }
    }
    while (!up.empty()) {
      ssize_t n = weft_send(s, up.begin(), up.size(), 0);
      if (n >= 0) {
        up.take(static_cast<std::size_t>(n));
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      if (errno != ECONNRESET && errno != EPIPE) sys_fail("send", errno);
      send_err = errno;
      up.fill(0);
      in_eof = shut = true;  // nothing more goes this way
    }
  }
}

// Non-blocking connect, bounded by `wait` seconds when given.
void connect_stream(int s, const sockaddr_in& to, double wait) {
  std::string where = "connect " + endpoint_string(to);
  if (weft_connect(s, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0) return;
  if (errno != EINPROGRESS) sys_fail(where, errno);
  std::optional<Clock::time_point> until;
  if (wait >= 0) until = Clock::now() + seconds(wait);
  for (;;) {
    pollfd p{s, POLLOUT, 0};
    int n = ::poll(&p, 1, poll_ms(until));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) sys_fail("poll", errno);
    if (n == 0) sys_fail(where, ETIMEDOUT);
    break;
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (weft_getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) != 0) sys_fail(where, errno);
  if (err != 0) sys_fail(where, err);
}

int run_tcp(const CatOptions& o, const sockaddr_in& local, bool bind_local, const sockaddr_in& remote) {
  ensure_std_fds();
  // Connecting: non-blocking, for the bounded wait. Listening: blocking
  // until the one connection arrives.
  int fd = weft_socket(AF_INET, SOCK_STREAM | (o.listen ? 0 : SOCK_NONBLOCK), 0);
  if (fd < 0) socket_fail(errno);
  WeftFd s(fd);
  if (o.listen) {
    int one = 1;
    (void)weft_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  if (bind_local && weft_bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0)
    sys_fail("bind " + endpoint_string(local), errno);
  if (o.listen) {
    if (weft_listen(fd, 1) != 0) sys_fail("listen " + endpoint_string(local), errno);
    int c;
    do c = weft_accept(fd, nullptr, nullptr);
    while (c < 0 && errno == EINTR);
    if (c < 0) sys_fail("accept " + endpoint_string(local), errno);
    s.reset(c);  // one connection: the listener closes now
    ::fcntl(c, F_SETFL, ::fcntl(c, F_GETFL) | O_NONBLOCK);
  } else {
    connect_stream(fd, remote, o.wait);
  }
  NonBlockingStdio stdio;
  return copy_stream(s.get());
}

// ---------------------------------------------------------------- UDP
int copy_datagrams(int s, Pending& down, double linger) {
  Pending up;
  up.data.resize(kMaxDatagram);
  bool in_eof = false;
  std::optional<Clock::time_point> quiet_until;  // after end of stdin: exit when no datagram came by then
  auto linger_dur = seconds(linger);
  for (;;) {
    if (!down.empty()) write_stdout(down);
    if (in_eof && up.empty() && down.empty()) {
      if (linger < 0) return 0;
      auto now = Clock::now();
      if (!quiet_until) quiet_until = now + linger_dur;
      if (now >= *quiet_until) return 0;
    }
    short se = static_cast<short>((up.empty() ? 0 : POLLOUT) | (down.empty() ? POLLIN : 0));
    pollfd p[3] = {{in_eof || !up.empty() ? -1 : STDIN_FILENO, POLLIN, 0},
                   {se ? s : -1, se, 0},
                   {down.empty() ? -1 : STDOUT_FILENO, POLLOUT, 0}};
    if (::poll(p, 3, poll_ms(quiet_until)) < 0) {
      if (errno == EINTR) continue;
      sys_fail("poll", errno);
    }
    if ((p[1].revents & kInEvents) && down.empty()) {
      ssize_t n = weft_recv(s, down.data.data(), kBuf, 0);
      if (n >= 0) {
        down.fill(static_cast<std::size_t>(n));
        if (quiet_until) quiet_until = Clock::now() + linger_dur;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        sys_fail("recv", errno);  // e.g. ECONNREFUSED: ICMP port unreachable
      }
    }
    if ((p[0].revents & kInEvents) && up.empty()) {
      if (p[0].revents & POLLNVAL) {
        in_eof = true;
      } else {
        in_eof = !read_stdin(up, kMaxDatagram);
      }
    }
    if (!up.empty()) {
      ssize_t n = weft_send(s, up.begin(), up.size(), 0);
      if (n >= 0) {
        up.fill(0);
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        sys_fail("send", errno);
      }
    }
  }
}

int run_udp(const CatOptions& o, const sockaddr_in& local, bool bind_local, const sockaddr_in& remote) {
  ensure_std_fds();
  int fd = weft_socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) socket_fail(errno);
  WeftFd s(fd);
  if (bind_local && weft_bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0)
    sys_fail("bind " + endpoint_string(local), errno);
  Pending down;
  sockaddr_in peer = remote;
  if (o.listen) {
    // The first datagram chooses the peer; stdin is not read before it.
    socklen_t pl = sizeof peer;
    ssize_t n;
    do n = weft_recvfrom(fd, down.data.data(), kBuf, 0, reinterpret_cast<sockaddr*>(&peer), &pl);
    while (n < 0 && errno == EINTR);
    if (n < 0) sys_fail("recv", errno);
    down.fill(static_cast<std::size_t>(n));
  }
  if (weft_connect(fd, reinterpret_cast<const sockaddr*>(&peer), sizeof peer) != 0)
    sys_fail("connect " + endpoint_string(peer), errno);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  NonBlockingStdio stdio;
  return copy_datagrams(fd, down, o.wait);
}

int run_cat(const CatOptions& o) {
  if (o.wait_given && !(o.wait > 0 && o.wait <= 1e6))
    usage_error(fmt::format("-w: {} is not a number of seconds > 0", o.wait));
  sockaddr_in local = make_sockaddr(in_addr{htonl(INADDR_ANY)}, 0);
  sockaddr_in remote{};
  bool bind_local = false;
  if (!o.source.empty()) {
    local.sin_addr = parse_ipv4_arg("-s", o.source);
    bind_local = true;
  }
  if (!o.source_port.empty()) {
    local.sin_port = htons(parse_port_arg("-p", o.source_port));
    bind_local = true;
  }
  if (o.listen) {
    // -l [ADDR] PORT, or -l -p PORT as ncat also takes it.
    if (o.args.size() > 2) usage_error("-l takes [ADDR] PORT");
    if (o.args.empty() && o.source_port.empty()) usage_error("-l needs a PORT to listen on");
    if (!o.args.empty() && !o.source_port.empty()) usage_error("-l: give the port once, as PORT or -p PORT");
    if (o.args.size() == 2) {
      if (!o.source.empty()) usage_error("-l: give the address once, as ADDR or -s ADDR");
      local.sin_addr = parse_ipv4_arg("ADDR", o.args[0]);
    }
    if (!o.args.empty()) local.sin_port = htons(parse_port_arg("PORT", o.args.back()));
    bind_local = true;
  } else {
    if (o.args.size() != 2) usage_error("need HOST PORT to connect to, or -l PORT to listen");
    remote = make_sockaddr(parse_ipv4_arg("HOST", o.args[0]), parse_port_arg("PORT", o.args[1]));
  }
  ::signal(SIGPIPE, SIG_IGN);  // a closed stdout is EPIPE, reported like any error
  return o.udp ? run_udp(o, local, bind_local, remote) : run_tcp(o, local, bind_local, remote);
}

}  // namespace

Command add_cat_command(CLI::App& root) {
  auto o = std::make_shared<CatOptions>();
  CLI::App* app = root.add_subcommand("cat", "netcat over the weft host (WEFT_HOST): HOST PORT, or -l PORT");
  app->add_flag("-l,--listen", o->listen, "listen for one connection (or, with -u, one peer)");
  app->add_flag("-u,--udp", o->udp, "UDP instead of TCP");
  app->add_option("-w,--wait", o->wait,
                  "connect timeout in seconds; with -u, how long to wait for replies after end of stdin")
      ->each([o](const std::string&) { o->wait_given = true; });
  app->add_option("-s,--source", o->source, "local address to bind (with -l: to listen on)");
  app->add_option("-p,--source-port", o->source_port, "local port to bind (with -l: to listen on)");
  app->add_option("args", o->args, "HOST PORT to connect to; with -l: [ADDR] PORT");
  return Command{app, [o] { return run_cat(*o); }};
}

}  // namespace weft::cli
