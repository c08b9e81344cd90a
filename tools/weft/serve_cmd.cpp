// weft serve: the classic small services (RFC 862 echo, 863 discard, 867
// daytime, 864 chargen) as an ordinary process using a weft host's sockets
// through libweft-client: one poll() loop over every descriptor. The host
// daemon can run the same services itself (weft host --services); this is
// the many-processes picture, each service in a process of its own.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"
#include "client/weft.h"

namespace weft::cli {

namespace {

enum class Kind { echo, discard, daytime, chargen };

struct ServeOptions {
  std::string service = "echo";
  int port = -1;
  bool udp = false;
  std::string addr = "0.0.0.0";
};

std::string daytime_text() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[128];
  std::strftime(buf, sizeof buf, "%A, %B %d, %Y %H:%M:%S-%Z\r\n", &tm);
  return buf;
}

// RFC 864's pattern: 72-character lines of the 95 printable characters,
// each line starting one further along.
std::string chargen_block() {
  std::string out;
  for (int line = 0; line < 95; ++line) {
    for (int i = 0; i < 72; ++i) out += static_cast<char>(' ' + (line + i) % 95);
    out += "\r\n";
  }
  return out;
}

[[noreturn]] void fail_errno(const std::string& what) {
  std::string detail = weft_last_detail();
  if (errno == ENETDOWN && !detail.empty()) throw std::runtime_error(detail);
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

volatile sig_atomic_t g_stop = 0;

int run_serve(const ServeOptions& o) {
  static const std::map<std::string, std::pair<Kind, int>> kServices = {{"echo", {Kind::echo, 7}},
                                                                        {"discard", {Kind::discard, 9}},
                                                                        {"daytime", {Kind::daytime, 13}},
                                                                        {"chargen", {Kind::chargen, 19}}};
  auto it = kServices.find(o.service);
  if (it == kServices.end()) usage_error("unknown service '" + o.service + "' (echo, discard, daytime, chargen)");
  Kind kind = it->second.first;
  int port = o.port >= 0 ? o.port : it->second.second;
  if (port < 1 || port > 65535) usage_error(fmt::format("--port: {} is outside 1-65535", port));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, o.addr.c_str(), &sa.sin_addr) != 1)
    usage_error("--addr: '" + o.addr + "' is not an IPv4 address");
  std::string where = fmt::format("{}:{}", o.addr, port);

  // Handlers before the announcement below: a SIGTERM sent on seeing it is
  // a clean stop, not death by the default action.
  struct sigaction act {};
  act.sa_handler = [](int) { g_stop = 1; };
  sigaction(SIGINT, &act, nullptr);
  sigaction(SIGTERM, &act, nullptr);

  int s = weft_socket(AF_INET, o.udp ? SOCK_DGRAM : SOCK_STREAM, 0);
  if (s < 0) fail_errno("socket");
  int one = 1;
  weft_setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (weft_bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) fail_errno("bind " + where);
  if (!o.udp && weft_listen(s, 128) != 0) fail_errno("listen " + where);
  std::printf("weft serve: %s on %s/%s\n", o.service.c_str(), where.c_str(), o.udp ? "udp" : "tcp");
  std::fflush(stdout);

  std::vector<char> buf(64 * 1024);
  const std::string chargen = chargen_block();
  if (o.udp) {
    while (!g_stop) {
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      ssize_t n = weft_recvfrom(s, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == ECONNREFUSED) continue;
        fail_errno("recvfrom");
      }
      std::string reply;
      switch (kind) {
        case Kind::echo:
          reply.assign(buf.data(), static_cast<std::size_t>(n));
          break;
        case Kind::discard:
          continue;
        case Kind::daytime:
          reply = daytime_text();
          break;
        case Kind::chargen:
          reply = chargen.substr(0, 74 * (1 + static_cast<std::size_t>(n) % 7));
          break;
      }
      weft_sendto(s, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), fl);
    }
    weft_close(s);
    return 0;
  }

  // TCP: one poll() over the listener and every connection. Each
  // connection keeps what it still has to send.
  struct Conn {
    std::string out;
    std::size_t off = 0;
    std::size_t chargen_pos = 0;
    bool closing = false;
    bool eof = false;  // the client is done sending (chargen goes on until it closes)
  };
  std::map<int, Conn> conns;
  while (!g_stop) {
    std::vector<pollfd> pfds{{s, POLLIN, 0}};
    for (auto& [fd, c] : conns) {
      short ev = c.eof ? 0 : POLLIN;
      if (c.off < c.out.size() || kind == Kind::chargen) ev |= POLLOUT;
      pfds.push_back({fd, ev, 0});
    }
    if (::poll(pfds.data(), pfds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      fail_errno("poll");
    }
    if (pfds[0].revents & POLLIN) {
      int c = weft_accept(s, nullptr, nullptr);
      if (c >= 0) {
        int fl = fcntl(c, F_GETFL);
        fcntl(c, F_SETFL, fl | O_NONBLOCK);
        Conn conn;
        if (kind == Kind::daytime) {
          conn.out = daytime_text();
          conn.closing = true;
        }
        conns.emplace(c, std::move(conn));
      }
    }
    for (std::size_t i = 1; i < pfds.size(); ++i) {
      int fd = pfds[i].fd;
      Conn& c = conns.at(fd);
      bool done = false;
      if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t n = weft_recv(fd, buf.data(), buf.size(), 0);
        if (n > 0 && kind == Kind::echo) c.out.append(buf.data(), static_cast<std::size_t>(n));
        if (n == 0) {
          // The client is done sending. What it is owed still goes out
          // (the echo of its last bytes, the daytime text); chargen goes on
          // until the client closes (RFC 864).
          c.eof = true;
          if (c.off >= c.out.size() && kind != Kind::chargen) done = true;
        } else if (n < 0 && errno != EAGAIN) {
          done = true;
        }
      }
      if (!done && (pfds[i].revents & POLLOUT)) {
        if (kind == Kind::chargen && c.off >= c.out.size()) {
          c.out = chargen.substr(c.chargen_pos % chargen.size()) + chargen;
          c.off = 0;
        }
        ssize_t n = weft_send(fd, c.out.data() + c.off, c.out.size() - c.off, 0);
        if (n > 0) {
          c.off += static_cast<std::size_t>(n);
          c.chargen_pos += static_cast<std::size_t>(n);
        } else if (errno != EAGAIN) {
          done = true;
        }
        if (c.off == c.out.size() && kind != Kind::chargen) {
          c.out.clear();
          c.off = 0;
          if (c.closing || c.eof) done = true;
        }
      }
      if (done) {
        weft_close(fd);
        conns.erase(fd);
      }
    }
  }
  for (auto& [fd, c] : conns) weft_close(fd);
  weft_close(s);
  return 0;
}

}  // namespace

Command add_serve_command(CLI::App& root) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* app = root.add_subcommand("serve", "run echo, discard, daytime or chargen as a process on a weft host");
  app->add_option("service", o->service, "echo | discard | daytime | chargen")->required();
  app->add_option("-p,--port", o->port, "port (default: the service's well-known port)");
  app->add_flag("-u,--udp", o->udp, "serve over UDP instead of TCP");
  app->add_option("--addr", o->addr, "local address to bind (default 0.0.0.0)");
  return Command{app, [o] { return run_serve(*o); }};
}

}  // namespace weft::cli
