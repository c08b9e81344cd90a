// weft perf: an iperf-like measurement of weft TCP (bulk both ways,
// request/response, connect/request/response/close), over a weft host
// daemon through libweft-client, or --embedded: through a Host running in
// this process on a link of its own, so that the cost of the process
// boundary can be measured over the same link (perf.hpp has the test and
// its wire protocol, docs/perf.md the output).
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "client/weft.h"
#include "host/event_loop.hpp"
#include "host/host.hpp"
#include "link_options.hpp"
#include "perf.hpp"
#include "perf_net.hpp"

namespace weft::cli {

namespace {

using perf::Mode;
using perf::Sample;

struct PerfOptions {
  bool server = false;
  std::string client;
  int port = perf::kDefaultPort;
  double time = 10;
  double interval = 1;
  std::string mode = "send";
  std::string len;
  bool json = false;
  bool one_off = false;
  bool embedded = false;
  std::string addr;  // --embedded: the in-process host's address
  LinkFlags link;
};

// "131072", "128K", "1M": bytes, binary suffixes as iperf's -l.
std::optional<std::size_t> parse_len(const std::string& s) {
  if (s.empty()) return std::nullopt;
  std::size_t mult = 1;
  std::string digits = s;
  switch (s.back()) {
    case 'k':
    case 'K':
      mult = 1024;
      digits.pop_back();
      break;
    case 'm':
    case 'M':
      mult = 1024 * 1024;
      digits.pop_back();
      break;
    default:
      break;
  }
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return static_cast<std::size_t>(std::stoull(digits)) * mult;
}

// Three significant digits, as iperf prints them.
std::string sig3(double v) {
  if (v < 9.995) return fmt::format("{:.2f}", v);
  if (v < 99.95) return fmt::format("{:.1f}", v);
  return fmt::format("{:.0f}", v);
}

// Transfer in binary units (KBytes = 1024 bytes), rate in decimal ones
// (Mbits = 10^6 bits), as iperf prints them.
std::string fmt_bytes(std::uint64_t b) {
  const double v = static_cast<double>(b);
  if (v >= 1024.0 * 1024 * 1024) return sig3(v / (1024.0 * 1024 * 1024)) + " GBytes";
  if (v >= 1024.0 * 1024) return sig3(v / (1024.0 * 1024)) + " MBytes";
  if (v >= 1024.0) return sig3(v / 1024.0) + " KBytes";
  return fmt::format("{} Bytes", b);
}

std::string fmt_bits(double bps) {
  if (bps >= 1e9) return sig3(bps / 1e9) + " Gbits/sec";
  if (bps >= 1e6) return sig3(bps / 1e6) + " Mbits/sec";
  if (bps >= 1e3) return sig3(bps / 1e3) + " Kbits/sec";
  return sig3(bps) + " bits/sec";
}

double bits_per_second(const Sample& s) {
  return s.seconds() > 0 ? 8.0 * static_cast<double>(s.bytes) / s.seconds() : 0;
}
double per_second(const Sample& s) { return s.seconds() > 0 ? static_cast<double>(s.transactions) / s.seconds() : 0; }
// A transaction's mean time, one at a time: the interval over the count.
std::optional<double> mean_latency_us(const Sample& s) {
  if (s.transactions == 0) return std::nullopt;
  return s.seconds() * 1e6 / static_cast<double>(s.transactions);
}

// Bulk as iperf3 prints it; rr/crr with the headings over line()'s columns.
std::string column_header(Mode m) {
  if (perf::is_bulk(m)) return "[ ID] Interval           Transfer     Bitrate";
  return fmt::format("{:<23}  {:>15}  {:>19}  {:>11}", "[ ID] Interval", "Transactions", "Rate", "Latency");
}

std::string line(perf::Sock id, Mode m, const Sample& s, const char* who) {
  std::string head = fmt::format("[{:>3}] {:>6.2f}-{:<6.2f} sec", id, s.start, s.end);
  std::string out;
  if (perf::is_bulk(m)) {
    out = fmt::format("{}  {:>11}  {:>15}", head, fmt_bytes(s.bytes), fmt_bits(bits_per_second(s)));
  } else {
    auto lat = mean_latency_us(s);
    out = fmt::format("{}  {:>9} trans  {:>9.0f} trans/sec  {:>11}", head, s.transactions, per_second(s),
                      lat && std::string_view(who) != "server" ? fmt::format("{:.1f} us", *lat) : "");
  }
  if (*who) out += fmt::format("  {}", who);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Fields in the order they are printed (docs/perf.md).
using Json = nlohmann::ordered_json;

// One side's count over [start, end]. mean_latency_us only for the side
// that waits for the responses (the client).
Json sample_json(Mode m, const Sample& s, bool latency = true) {
  Json j = {{"start", s.start}, {"end", s.end}, {"seconds", s.seconds()}};
  if (perf::is_bulk(m)) {
    j["bytes"] = s.bytes;
    j["bits_per_second"] = bits_per_second(s);
  } else {
    j["transactions"] = s.transactions;
    j["transactions_per_second"] = per_second(s);
    if (latency) {
      auto lat = mean_latency_us(s);
      j["mean_latency_us"] = lat ? Json(*lat) : Json(nullptr);
    }
  }
  return j;
}

std::string test_words(Mode m, std::size_t len) {
  switch (m) {
    case Mode::send:
    case Mode::recv:
      return fmt::format("{}-byte writes", len);
    case Mode::rr:
      return fmt::format("{}-byte requests and responses", len);
    case Mode::crr:
      return fmt::format("a connection per {}-byte request and response", len);
  }
  return "";
}

// What the run needs from the checked flags.
struct Plan {
  bool server = false;
  perf::ClientConfig client;
  std::uint16_t port = perf::kDefaultPort;
  Ipv4Cidr addr{};  // --embedded
  std::optional<LinkPlan> link;
  std::string where;  // "weft host 'a'" or "embedded host 192.0.2.10/24 on udp:..."
};

Plan check(const PerfOptions& o, CLI::App* app) {
  Plan p;
  if (o.server == !o.client.empty()) usage_error("give exactly one of -s (server) and -c ADDR (client)");
  p.server = o.server;
  if (o.port < 1 || o.port > 65535) usage_error(fmt::format("--port: {} is outside 1-65535", o.port));
  p.port = static_cast<std::uint16_t>(o.port);
  if (o.server) {
    for (const char* f : {"--time", "--interval", "--mode", "--len"})
      if (app->count(f) > 0) usage_error(fmt::format("{}: only with -c (the client chooses the test)", f));
  } else {
    if (o.one_off) usage_error("--one-off: only with -s");
    auto a = Ipv4Addr::parse(o.client);
    if (!a || a->is_any() || a->is_broadcast() || a->is_multicast())
      usage_error(fmt::format("-c: '{}' is not a unicast IPv4 address", o.client));
    p.client.server = Endpoint{*a, Port{p.port}};
    auto m = perf::parse_mode(o.mode);
    if (!m) usage_error(fmt::format("--mode: '{}' is not send, recv, rr or crr", o.mode));
    p.client.mode = *m;
    if (!(o.time > 0 && o.time <= 86400)) usage_error(fmt::format("--time: {} is outside (0, 86400] seconds", o.time));
    if (!(o.interval == 0 || (o.interval >= 0.1 && o.interval <= 86400)))
      usage_error(fmt::format("--interval: {} is neither 0 (no intervals) nor 0.1-86400 seconds", o.interval));
    p.client.duration = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(o.time));
    p.client.interval = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(o.interval));
    // iperf's default write for bulk; netperf's one byte for rr/crr.
    p.client.len = perf::is_bulk(*m) ? 128 * 1024 : 1;
    if (!o.len.empty()) {
      auto l = parse_len(o.len);
      if (!l || *l == 0 || *l > perf::kMaxLen)
        usage_error(fmt::format("--len: '{}' is not a length of 1 byte to 16M", o.len));
      p.client.len = *l;
    }
  }

  const bool link_flags = !o.link.tun.empty() || !o.link.udp_link.empty() || !o.link.udp_peers.empty() ||
                          !o.link.kernel_addr.empty() || o.link.mtu_given;
  if (!o.embedded) {
    if (!o.addr.empty()) usage_error("--addr: only with --embedded");
    if (link_flags) usage_error("--tun, --udp-link, --udp-peer, --kernel-addr, --mtu: only with --embedded");
    const char* host = std::getenv("WEFT_HOST");
    p.where = fmt::format("weft host '{}'", host && *host ? host : "default");
    return p;
  }
  if (o.addr.empty()) usage_error("--embedded needs --addr (the in-process host's address), as weft host does");
  auto cidr = Ipv4Cidr::parse(o.addr);
  if (!cidr || cidr->prefix_len == 0 || cidr->prefix_len > 30 || cidr->addr.is_any())
    usage_error(
        fmt::format("--addr: '{}' is not an IPv4 address with a prefix length 1-30, like 192.0.2.2/24", o.addr));
  if (cidr->addr == cidr->network() || cidr->addr == cidr->directed_broadcast())
    usage_error(fmt::format("--addr: {} is the network or broadcast address of its prefix", o.addr));
  p.addr = *cidr;
  p.link = check_link_flags(o.link, *cidr, false);
  if (!o.server && p.link->tun.empty()) {
    // The tunnel reaches only its peers (link_options.hpp): anything else
    // would only time out.
    bool peer = false;
    for (auto& u : p.link->peers) peer = peer || u.addr == p.client.server.addr;
    if (!peer) usage_error(fmt::format("-c: {} is not one of the --udp-peer addresses", o.client));
  }
  return p;
}

// The client's output: live lines, or one JSON object at the end.
class ClientPrinter {
 public:
  ClientPrinter(const Plan& p, bool json, bool embedded) : p_(p), json_(json), embedded_(embedded) {}

  void header() {
    if (json_) return;
    const auto& c = p_.client;
    std::printf("weft perf: %s test to %s over %s, %g s, %s\n", perf::mode_name(c.mode), c.server.to_string().c_str(),
                p_.where.c_str(), std::chrono::duration<double>(c.duration).count(), test_words(c.mode, c.len).c_str());
    std::fflush(stdout);
  }
  void started(const perf::ClientReport& r) {
    if (json_) return;
    std::printf("[%3lld] local %s port %u connected to %s port %u\n", static_cast<long long>(r.id),
                r.local.addr.to_string().c_str(), r.local.port.value(), r.remote.addr.to_string().c_str(),
                r.remote.port.value());
    if (p_.client.interval > Duration::zero()) std::printf("%s\n", column_header(p_.client.mode).c_str());
    std::fflush(stdout);
  }
  void interval(perf::Sock id, const Sample& s) {
    if (json_) return;
    std::printf("%s\n", line(id, p_.client.mode, s, "").c_str());
    std::fflush(stdout);
  }
  void summary(const perf::ClientReport& r) {
    const Mode m = p_.client.mode;
    if (json_) {
      Json j;
      j["version"] = 1;
      j["mode"] = perf::mode_name(m);
      j["transport"] = embedded_ ? "embedded" : "daemon";
      j["where"] = p_.where;
      j["local"] = r.local.to_string();
      j["remote"] = r.remote.to_string();
      j["duration"] = std::chrono::duration<double>(p_.client.duration).count();
      j["interval"] = std::chrono::duration<double>(p_.client.interval).count();
      j["length"] = p_.client.len;
      j["intervals"] = Json::array();
      for (auto& s : r.intervals) j["intervals"].push_back(sample_json(m, s));
      Json sum;
      auto opt = [&](const std::optional<Sample>& s, bool latency) {
        return s ? sample_json(m, *s, latency) : Json(nullptr);
      };
      if (m == Mode::send) {
        sum["sender"] = sample_json(m, r.client);
        sum["receiver"] = opt(r.server, false);
        sum["bits_per_second"] = r.server ? bits_per_second(*r.server) : 0.0;
      } else if (m == Mode::recv) {
        sum["sender"] = nullptr;  // the server sends no Result in recv (perf.hpp)
        sum["receiver"] = sample_json(m, r.client);
        sum["bits_per_second"] = bits_per_second(r.client);
      } else {
        sum["client"] = sample_json(m, r.client);
        sum["server"] = opt(r.server, false);
        sum["transactions_per_second"] = per_second(r.client);
        auto lat = mean_latency_us(r.client);
        sum["mean_latency_us"] = lat ? Json(*lat) : Json(nullptr);
      }
      j["summary"] = sum;
      std::printf("%s\n", j.dump(2).c_str());
      std::fflush(stdout);
      return;
    }
    std::printf("- - - - - - - - - - - - - - - - - - - - - - - - -\n%s\n", column_header(m).c_str());
    switch (m) {
      case Mode::send:
        std::printf("%s\n", line(r.id, m, r.client, "sender").c_str());
        if (r.server) std::printf("%s\n", line(r.id, m, *r.server, "receiver").c_str());
        break;
      case Mode::recv:
        std::printf("%s\n", line(r.id, m, r.client, "receiver").c_str());
        break;
      case Mode::rr:
      case Mode::crr:
        std::printf("%s\n", line(r.id, m, r.client, "client").c_str());
        if (r.server) std::printf("%s\n", line(r.id, m, *r.server, "server").c_str());
        break;
    }
    std::fflush(stdout);
  }

 private:
  const Plan& p_;
  bool json_;
  bool embedded_;
};

// The server's output: a line per test begun and ended, or JSON lines.
class ServerPrinter {
 public:
  explicit ServerPrinter(bool json) : json_(json) {}
  void listening(std::uint16_t port, const std::string& where) {
    if (json_)
      std::printf("%s\n", Json{{"event", "listening"}, {"port", port}, {"where", where}}.dump().c_str());
    else
      std::printf("weft perf: server listening on port %u over %s\n", port, where.c_str());
    std::fflush(stdout);
  }
  void begin(const perf::ServerTest& t) {
    if (json_) return;
    std::printf("[%3lld] %s test from %s, %g s, %s\n", static_cast<long long>(t.id), perf::mode_name(t.mode),
                t.peer.to_string().c_str(), t.duration_ms / 1000.0, test_words(t.mode, t.len).c_str());
    std::fflush(stdout);
  }
  void end(const perf::ServerTest& t) {
    if (json_) {
      Json j = {{"event", "test"},
                {"peer", t.peer.to_string()},
                {"mode", perf::mode_name(t.mode)},
                {"length", t.len},
                {"duration", t.duration_ms / 1000.0},
                {"result", sample_json(t.mode, t.sample, false)},
                {"error", t.error.empty() ? Json(nullptr) : Json(t.error)}};
      std::printf("%s\n", j.dump().c_str());
    } else if (!t.error.empty()) {
      std::printf("[%3lld] test from %s failed: %s\n", static_cast<long long>(t.id), t.peer.to_string().c_str(),
                  t.error.c_str());
    } else {
      const char* who = t.mode == Mode::send ? "receiver" : t.mode == Mode::recv ? "sender" : "server";
      std::printf("%s\n", line(t.id, t.mode, t.sample, who).c_str());
    }
    std::fflush(stdout);
  }
  void note(const std::string& s) { std::fprintf(stderr, "weft perf: %s\n", s.c_str()); }

 private:
  bool json_;
};

// libweft-client reaches the daemon lazily; ask once up front so that a
// missing daemon is reported as such, with where the library looked.
void check_daemon() {
  int fd = weft_socket(AF_INET, SOCK_STREAM, 0);
  if (fd >= 0) {
    weft_close(fd);
    return;
  }
  std::string detail = weft_last_detail();
  throw std::runtime_error(detail.empty() ? fmt::format("socket: {}", std::strerror(errno)) : detail);
}

int run_daemon(const Plan& p, const PerfOptions& o) {
  check_daemon();
  perf::DaemonNet net;
  if (p.server) {
    ServerPrinter out(o.json);
    perf::PerfServer server(
        net, p.port, o.one_off, [&](const perf::ServerTest& t) { out.begin(t); },
        [&](const perf::ServerTest& t) { out.end(t); }, [&](const std::string& s) { out.note(s); });
    if (auto st = server.start(); !st)
      throw std::runtime_error(fmt::format("listen on port {}: {}", p.port, errc_message(st.error())));
    out.listening(p.port, p.where);
    // SIGINT/SIGTERM end the server (exit 0), read from a signalfd.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) throw std::runtime_error(fmt::format("signalfd: {}", std::strerror(errno)));
    auto r = net.run(server, sfd);
    ::close(sfd);
    server.stop(monotonic_now());
    if (!r) throw std::runtime_error(fmt::format("poll: {}", errc_message(r.error())));
    if (server.error()) throw std::runtime_error(*server.error());
    return 0;
  }
  ClientPrinter out(p, o.json, false);
  out.header();
  perf::PerfClient* cp = nullptr;
  perf::PerfClient client(
      net, p.client, [&] { out.started(cp->report()); }, [&](const Sample& s) { out.interval(cp->report().id, s); });
  cp = &client;
  client.start(monotonic_now());
  if (auto r = net.run(client); !r) throw std::runtime_error(fmt::format("poll: {}", errc_message(r.error())));
  if (client.error()) throw std::runtime_error(*client.error());
  out.summary(client.report());
  return 0;
}

int run_embedded(const Plan& p, const PerfOptions& o) {
  HostLink hl = make_link(*p.link, p.addr);
  // The stack as weft host configures it from the same flags, so that the
  // comparison with the daemon differs only in the process boundary.
  StackConfig cfg;
  cfg.address = p.addr;
  cfg.mtu = p.link->mtu;
  cfg.gateway = p.link->kernel;
  std::random_device rd;
  cfg.seed = (std::uint64_t{rd()} << 32) ^ rd();
  Host host(cfg, *hl.link);
  perf::EmbeddedNet net(host);
  net.set_now(monotonic_now());
  const std::string where = fmt::format("embedded host {} on {}", p.addr.to_string(), hl.where);

  if (p.server) {
    ServerPrinter out(o.json);
    perf::PerfServer server(
        net, p.port, o.one_off, [&](const perf::ServerTest& t) { out.begin(t); },
        [&](const perf::ServerTest& t) { out.end(t); }, [&](const std::string& s) { out.note(s); });
    if (auto st = server.start(); !st)
      throw std::runtime_error(fmt::format("listen on port {}: {}", p.port, errc_message(st.error())));
    out.listening(p.port, where);
    auto r = net.run(server);
    server.stop(net.now());
    if (!r) throw std::runtime_error(fmt::format("event loop: {}", errc_message(r.error())));
    if (server.error()) throw std::runtime_error(*server.error());
    return 0;
  }
  Plan shown = p;
  shown.where = where;
  ClientPrinter out(shown, o.json, true);
  out.header();
  perf::PerfClient* cp = nullptr;
  perf::PerfClient client(
      net, p.client, [&] { out.started(cp->report()); }, [&](const Sample& s) { out.interval(cp->report().id, s); });
  cp = &client;
  client.start(net.now());
  auto r = net.run(client);
  if (!r) throw std::runtime_error(fmt::format("event loop: {}", errc_message(r.error())));
  if (!*r) throw std::runtime_error("interrupted");
  if (client.error()) throw std::runtime_error(*client.error());
  out.summary(client.report());
  return 0;
}

}  // namespace

Command add_perf_command(CLI::App& root) {
  auto o = std::make_shared<PerfOptions>();
  CLI::App* app = root.add_subcommand("perf", "measure weft TCP, iperf-like: over a weft host daemon, or --embedded");
  app->add_flag("-s,--server", o->server, "serve tests, one after another, until SIGINT");
  app->add_option("-c,--client", o->client, "run a test against the server at this IPv4 address");
  app->add_option("-p,--port", o->port, "server port (default 5201)");
  app->add_option("-t,--time", o->time, "client: seconds to run (default 10)");
  app->add_option("-i,--interval", o->interval, "client: seconds between interval lines, 0 for none (default 1)");
  app->add_option(
      "--mode", o->mode,
      "client: send (to the server), recv (from it), rr (request/response), crr (a connection each) (default send)");
  app->add_option(
      "-l,--len", o->len,
      "client: bytes per write (send, recv; default 128K) or per request and response (rr, crr; default 1)");
  app->add_flag("--json", o->json,
                "print one JSON object (server: one line per test) instead of text; fields in docs/perf.md");
  app->add_flag("--one-off", o->one_off, "server: exit after one test");
  app->add_flag("--embedded", o->embedded,
                "run a weft host inside this process (on --udp-link or --tun) instead of using a daemon");
  app->add_option("--addr", o->addr, "--embedded: the host's address and prefix, e.g. 192.0.2.10/24");
  add_link_options(app, o->link);
  return Command{app, [o, app] {
                   Plan p = check(*o, app);
                   return o->embedded ? run_embedded(p, *o) : run_daemon(p, *o);
                 }};
}

}  // namespace weft::cli
