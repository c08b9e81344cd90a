// weft host: a weft host on a TUN device or a UDP tunnel, serving until
// SIGINT/SIGTERM, and the daemon that other processes use it through.
#include <grp.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>

#include "cli.hpp"
#include "control/control.hpp"
#include "host/daemon.hpp"
#include "host/event_loop.hpp"
#include "host/host.hpp"
#include "link/pcap.hpp"
#include "link/trace.hpp"
#include "link_options.hpp"

namespace weft::cli {

namespace {

struct HostOptions {
  LinkFlags link;
  std::string addr;
  std::string gateway;
  std::string services = "none";
  std::string pcap;
  std::string trace;
  std::uint64_t seed = 0;
  bool seed_given = false;
  std::string name = "default";
  std::string socket_group;
  std::vector<std::uint32_t> privileged_uids;
  std::size_t max_sockets = 4096;
  bool max_sockets_given = false;
  bool ecn = false;
};

// Two descriptors a socket: a million sockets is already past Linux's
// default fs.nr_open (1,048,576 descriptors a process).
constexpr std::size_t kMaxSocketsLimit = 1'000'000;

// The daemon's side of the host: its control socket, from --name and the
// runtime-directory rule that clients use too.
DaemonConfig daemon_config(const HostOptions& o, const std::string& link) {
  if (o.name.empty() || o.name.find('/') != std::string::npos || o.name.size() > 64 || o.name == "." || o.name == "..")
    usage_error(fmt::format("--name: '{}' must be 1-64 characters without '/', and not '.' or '..'", o.name));
  if (o.max_sockets == 0 || o.max_sockets > kMaxSocketsLimit)
    usage_error(fmt::format("--max-sockets: {} must be 1-{}", o.max_sockets, kMaxSocketsLimit));
  DaemonConfig d;
  d.name = o.name;
  auto dir = control::runtime_dir();
  if (!dir) throw std::runtime_error("no runtime directory: set WEFT_RUNTIME_DIR or XDG_RUNTIME_DIR");
  d.runtime_dir = *dir;
  if (!o.socket_group.empty()) {
    group* g = ::getgrnam(o.socket_group.c_str());
    if (!g) usage_error(fmt::format("--socket-group: no group '{}'", o.socket_group));
    d.socket_group = g->gr_gid;
  }
  for (auto u : o.privileged_uids) d.privileged_uids.push_back(static_cast<uid_t>(u));
  d.max_sockets = o.max_sockets;
  d.max_sockets_given = o.max_sockets_given;
  d.link_description = link;
  return d;
}

void print_counters(const Daemon& daemon, const HostLink& hl, const char* when) {
  std::printf("weft host: counters (%s)\n", when);
  auto all = daemon.all_counters();
  if (hl.counters) {
    auto more = hl.counters();
    all.insert(all.end(), more.begin(), more.end());
  }
  for (auto& [name, value] : all) std::printf("  %-32s %llu\n", name.c_str(), (unsigned long long)value);
  std::fflush(stdout);
}

std::string daytime_now() {
  // RFC 867 leaves the format open; this is the one it gives as an example.
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[128];
  std::strftime(buf, sizeof buf, "%A, %B %d, %Y %H:%M:%S-%Z", &tm);
  return buf;
}

int run_host(const HostOptions& o) {
  // Before anything is built: a SIGTERM from here on is taken by the loop
  // and is a clean stop (control socket and directory removed), whenever
  // it comes.
  if (auto st = block_loop_signals(); !st)
    throw std::runtime_error(fmt::format("block signals: {}", errc_message(st.error())));
  auto cidr = Ipv4Cidr::parse(o.addr);
  if (!cidr || cidr->prefix_len == 0 || cidr->prefix_len > 30 || cidr->addr.is_any())
    usage_error(
        fmt::format("--addr: '{}' is not an IPv4 address with a prefix length 1-30, like 192.0.2.2/24", o.addr));
  if (cidr->addr == cidr->network() || cidr->addr == cidr->directed_broadcast())
    usage_error(fmt::format("--addr: {} is the network or broadcast address of its prefix", o.addr));
  std::string why;
  auto services = ServiceSet::parse(o.services, &why);
  if (!services) usage_error("--services: " + why);

  LinkPlan plan = check_link_flags(o.link, *cidr, !o.gateway.empty());

  StackConfig cfg;
  cfg.address = *cidr;
  cfg.mtu = plan.mtu;
  cfg.tcp.ecn = o.ecn;
  if (!o.gateway.empty()) {
    auto gw = Ipv4Addr::parse(o.gateway);
    if (!gw) usage_error(fmt::format("--gateway: '{}' is not an IPv4 address", o.gateway));
    if (!cidr->contains(*gw)) usage_error(fmt::format("--gateway: {} is not inside {}", o.gateway, cidr->to_string()));
    cfg.gateway = gw;
  } else {
    cfg.gateway = plan.kernel;  // on TUN the kernel is the way out
  }
  // Secrets (ephemeral ports, IP ident) must not be guessable on a real
  // network: seed from the OS unless a test fixes the seed.
  if (o.seed_given) {
    cfg.seed = o.seed;
  } else {
    std::random_device rd;
    cfg.seed = (std::uint64_t{rd()} << 32) ^ rd();
  }

  HostLink hl = make_link(plan, *cidr);
  Link* link = hl.link.get();
  std::unique_ptr<Link> pcap;
  if (!o.pcap.empty()) {
    auto p = PcapLink::open(*link, o.pcap);
    if (!p) throw std::runtime_error(fmt::format("open pcap {}: {}", o.pcap, errc_message(p.error())));
    pcap = std::move(p.value());
    link = pcap.get();
  }
  std::unique_ptr<Link> trace;
  std::FILE* trace_file = nullptr;
  if (!o.trace.empty()) {
    trace_file = o.trace == "-" ? stderr : std::fopen(o.trace.c_str(), "w");
    if (!trace_file) throw std::runtime_error(fmt::format("open trace {}: {}", o.trace, std::strerror(errno)));
    trace = std::make_unique<TraceLink>(*link, trace_file);
    link = trace.get();
  }

  Host host(cfg, *link);
  if (auto st = host.start_services(*services, daytime_now); !st)
    throw std::runtime_error(fmt::format("start services: {}", errc_message(st.error())));

  std::vector<std::string> notes;
  auto daemon = Daemon::start(host, daemon_config(o, hl.where), notes);
  for (auto& n : notes) std::fprintf(stderr, "weft host: %s\n", n.c_str());
  std::printf("weft host: ready on %s, %s, control socket %s\n", hl.where.c_str(), cidr->to_string().c_str(),
              control::control_socket_path(o.name)->c_str());
  std::fflush(stdout);
  EventLoopHooks hooks;
  hooks.on_usr1 = [&] { print_counters(*daemon, hl, "SIGUSR1"); };
  auto st = daemon->run(hooks);
  if (!st) throw std::runtime_error(fmt::format("event loop: {}", errc_message(st.error())));
  print_counters(*daemon, hl, "exit");
  daemon.reset();
  trace.reset();
  if (trace_file && trace_file != stderr) std::fclose(trace_file);
  return 0;
}

}  // namespace

Command add_host_command(CLI::App& root) {
  auto o = std::make_shared<HostOptions>();
  CLI::App* app = root.add_subcommand("host", "run a weft host on a TUN device or a UDP tunnel");
  add_link_options(app, o->link);
  app->add_option("--addr", o->addr, "the host's address and prefix, e.g. 192.0.2.2/24")->required();
  app->add_option("--gateway", o->gateway, "with --tun: next hop outside the prefix (default: --kernel-addr)");
  app->add_option("--services", o->services, "echo,discard,daytime,chargen | all | none (default none)");
  app->add_option("--pcap", o->pcap, "capture every packet to this pcap file");
  app->add_option("--trace", o->trace, "write one line per packet to this file ('-': stderr)");
  app->add_option(
      "--name", o->name,
      "the host's name: its control socket is NAME/control.sock in the runtime directory (default 'default')");
  app->add_option("--socket-group", o->socket_group,
                  "group given access to the host's directory and control socket (default: the daemon's user alone)");
  app->add_option("--allow-privileged-uid", o->privileged_uids,
                  "a uid besides 0 that may bind ports below 1024 (repeatable)");
  app->add_option(
         "--max-sockets", o->max_sockets,
         "most sockets open at once; the open-file limit is raised to fit (default 4096, or what the limit allows)")
      ->each([o](const std::string&) { o->max_sockets_given = true; });
  app->add_flag("--ecn", o->ecn,
                "request ECN (RFC 3168) on every active open; a peer's request is accepted either way");
  app->add_option("--seed", o->seed, "fix the random seed (tests only)")->each([o](const std::string&) {
    o->seed_given = true;
  });
  return Command{app, [o] { return run_host(*o); }};
}

}  // namespace weft::cli
