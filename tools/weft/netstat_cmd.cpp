// weft netstat: a weft host's sockets and counters, printed the way
// net-tools `netstat` prints the kernel's. The host (daemon) sends a JSON
// snapshot (docs/netstat-json.md); src/netstat/netstat_format turns it into
// text. --system builds the same kind of snapshot from the kernel's own
// tables (src/netstat/system_sockets), and --all-hosts prints every weft host
// in the runtime directory and then the kernel, one section each. This
// file only picks the options and where the snapshots come from.
#include <time.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <set>
#include <vector>

#include "cli.hpp"
#include "client/client.hpp"
#include "control/control.hpp"
#include "netstat/netstat_format.hpp"
#include "netstat/system_sockets.hpp"

namespace weft::cli {

namespace {

using json = nlohmann::json;

struct NetstatCliOptions {
  NetstatOptions view;
  bool stats = false;
  bool continuous = false;
  bool json_out = false;
  std::string host;  // empty: $WEFT_HOST, else "default"
  std::string from_file;
  bool system = false;     // the kernel's sockets instead of a weft host's
  bool all_hosts = false;  // every weft host in the runtime directory, then the kernel
  std::string proc_root = "/proc";
};

// Warnings are printed once, not once a second under -c.
std::set<std::string> g_warned;
void warn(const std::string& line) {
  if (g_warned.insert(line).second) std::fprintf(stderr, "weft netstat: %s\n", line.c_str());
}

// The seam between `weft netstat` and the daemon: each call returns one
// fresh snapshot, or throws std::runtime_error with a one-line message.
using SnapshotSource = std::function<json()>;

json read_snapshot_file(const std::string& path) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error(fmt::format("{}: {}", path, std::strerror(errno)));
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    if (f.bad()) throw std::runtime_error(fmt::format("{}: read failed", path));
  }
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    // what() starts with "[json.exception.parse_error.101] "; the rest
    // (line, column, what was expected) is the useful part.
    std::string_view why = e.what();
    if (auto pos = why.find("] "); pos != std::string_view::npos) why.remove_prefix(pos + 2);
    throw std::runtime_error(fmt::format("{}: not JSON: {}", path, why));
  }
}

// The kernel's snapshot. Owners are looked up only when shown (-p) or
// written (--json), tcp_info asked for only when shown (--info) or
// written: both cost a walk over every process or every socket.
json system_snapshot_now(const NetstatCliOptions& o) {
  SystemReadOptions ro;
  ro.proc_root = o.proc_root;
  ro.owners = o.view.programs || o.json_out;
  ro.tcp_info = o.view.info || o.json_out;
  try {
    SystemRead r = read_system_snapshot(ro);
    for (const auto& w : r.warnings) warn(w);
    return std::move(r.snapshot);
  } catch (const SystemSocketsError& e) {
    throw std::runtime_error(fmt::format("system: {}", e.what()));
  }
}

SnapshotSource snapshot_source(const NetstatCliOptions& o) {
  if (!o.from_file.empty()) return [path = o.from_file] { return read_snapshot_file(path); };
  if (o.system) return [&o] { return system_snapshot_now(o); };
  return [host = o.host]() -> json {
    auto r = weft::client::netstat_snapshot(host);
    if (!r) {
      std::string detail = weft::client::last_detail();
      throw std::runtime_error(detail.empty() ? fmt::format("host '{}': {}", host, errc_message(r.error())) : detail);
    }
    return r.value();
  };
}

std::string render(const json& snapshot, const NetstatCliOptions& o) {
  try {
    if (o.json_out) {
      // -c --json: one document per line (JSON Lines), so a reader can
      // split the stream; a single answer is indented for people.
      json j = filter_snapshot(snapshot, o.view);
      return (o.continuous ? j.dump() : j.dump(2)) + "\n";
    }
    if (o.stats) return format_stats(snapshot, o.view);
    return format_table(snapshot, o.view);
  } catch (const NetstatSnapshotError& e) {
    throw std::runtime_error(fmt::format("invalid snapshot: {}", e.what()));
  }
}

void print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// ---- --all-hosts ------------------------------------------------------------

// The control sockets in the runtime directory, by host name (each host's
// directory holding a control socket), sorted.
std::vector<std::pair<std::string, std::string>> control_sockets() {
  std::vector<std::pair<std::string, std::string>> out;
  auto dir = control::runtime_dir();
  if (!dir) {
    warn("no weft hosts listed: no runtime directory (set WEFT_RUNTIME_DIR or XDG_RUNTIME_DIR)");
    return out;
  }
  std::error_code ec;
  std::filesystem::directory_iterator it(*dir, ec);
  if (ec) {
    // No directory yet means no host has ever started here: nothing to list.
    if (ec != std::errc::no_such_file_or_directory)
      warn(fmt::format("no weft hosts listed: {}: {}", *dir, ec.message()));
    return out;
  }
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const auto& p = it->path();
    std::error_code sec;
    if (!it->is_directory(sec)) continue;
    auto sock = p / control::kSocketFile;
    if (!std::filesystem::is_socket(sock, sec)) {
      // Another user's host, in a directory closed to us: said, not failed.
      if (sec == std::errc::permission_denied)
        warn(fmt::format("host '{}': not accessible to this user", p.filename().string()));
      continue;
    }
    out.emplace_back(p.filename().string(), sock.string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// One round of --all-hosts: every weft host, then the kernel. A host that
// does not answer costs one line on stderr and the rest still prints.
// Returns false when a section failed for a reason other than its host
// not running (a refused or malformed answer, unreadable /proc).
bool all_hosts_round(const NetstatCliOptions& o) {
  bool ok = true;
  std::string text;
  json docs = json::array();
  auto add = [&](const std::string& title, const json& snapshot) {
    if (o.json_out) {
      docs.push_back(filter_snapshot(snapshot, o.view));
      return;
    }
    if (!text.empty()) text += "\n";
    text += title + "\n" + render(snapshot, o);
  };
  for (const auto& [name, path] : control_sockets()) {
    auto r = weft::client::netstat_snapshot(path);
    if (!r) {
      const std::string detail = weft::client::last_detail();
      const std::string why = detail.empty() ? errc_message(r.error()) : detail;
      if (r.error() == std::errc::network_down) {
        // A control socket nobody answers on: its host died without
        // removing it. Not an error of this command.
        warn(fmt::format("host '{}': not running ({})", name, why));
      } else {
        warn(fmt::format("host '{}': {}", name, why));
        ok = false;
      }
      continue;
    }
    try {
      const NetstatSnapshot snap = parse_netstat_snapshot(r.value());
      add(fmt::format("weft host '{}' ({}, pid {}):", snap.host.name, snap.host.address, snap.host.pid), r.value());
    } catch (const NetstatSnapshotError& e) {
      warn(fmt::format("host '{}': invalid snapshot: {}", name, e.what()));
      ok = false;
    } catch (const std::exception& e) {  // render()'s, already worded
      warn(fmt::format("host '{}': {}", name, e.what()));
      ok = false;
    }
  }
  try {
    add("system (Linux kernel):", system_snapshot_now(o));
  } catch (const std::exception& e) {
    warn(e.what());
    ok = false;
  }
  if (o.json_out) text = (o.continuous ? docs.dump() : docs.dump(2)) + "\n";
  print(text);
  return ok;
}

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int) { g_stop = 1; }

int run_netstat(const NetstatCliOptions& o) {
  if (o.continuous && o.from_file == "-") usage_error("-c: cannot re-read a snapshot from stdin (--from-file -)");
  // One round: every section of --all-hosts, or the one snapshot. A
  // single source that fails throws (one line, exit 1); --all-hosts
  // prints what it can and reports failure by its result.
  SnapshotSource source = o.all_hosts ? SnapshotSource{} : snapshot_source(o);
  auto round = [&] {
    if (o.all_hosts) return all_hosts_round(o);
    print(render(source(), o));
    return true;
  };
  if (!o.continuous) return round() ? 0 : kExitRuntime;
  // No SA_RESTART: SIGINT must cut the one-second sleep short, so that
  // Ctrl-C ends the loop at once and the command exits 0.
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  bool ok = true;
  while (!g_stop) {
    ok = round() && ok;
    timespec left{1, 0};
    while (!g_stop && nanosleep(&left, &left) == -1 && errno == EINTR) {
    }
  }
  return ok ? 0 : kExitRuntime;
}

}  // namespace

Command add_netstat_command(CLI::App& root) {
  auto o = std::make_shared<NetstatCliOptions>();
  CLI::App* app =
      root.add_subcommand("netstat", "a weft host's (or the kernel's) sockets and counters, like net-tools netstat");
  app->add_flag("-t,--tcp", o->view.tcp, "TCP sockets (with neither -t nor -u: both)");
  app->add_flag("-u,--udp", o->view.udp, "UDP sockets");
  app->add_flag("-l,--listening", o->view.listening, "only servers: sockets with no peer");
  app->add_flag("-a,--all", o->view.all, "servers and connected sockets");
  app->add_flag("-n,--numeric", o->view.numeric, "numeric addresses, ports and user ids");
  app->add_flag("-p,--program,--programs", o->view.programs, "PID/Program name column");
  app->add_flag("-e,--extend", o->view.extend, "User and Inode (weft socket id) columns");
  auto* info = app->add_flag("--info", o->view.info, "TCP internals under each TCP row, like ss -ti");
  auto* system =
      app->add_flag("--system", o->system,
                    "the Linux kernel's own sockets (/proc/net, /proc/PID/fd, sock_diag) instead of a weft host's");
  auto* all = app->add_flag("--all-hosts", o->all_hosts,
                            "every weft host in the runtime directory, then the kernel's sockets, one section each");
  auto* stats = app->add_flag("-s,--statistics", o->stats, "counters, like netstat -s (-t/-u: only those protocols)");
  app->add_flag("-c,--continuous", o->continuous, "print again every second until interrupted");
  auto* js = app->add_flag("--json", o->json_out,
                           "print the snapshot as JSON (docs/netstat-json.md, sockets filtered by -t -u -l -a; "
                           "--all-hosts: an array of them); with -c one document per line");
  stats->excludes(info);
  js->excludes(info);
  js->excludes(stats);
  // $WEFT_HOST is applied at run time rather than by CLI11, so that the
  // variable (set for `weft serve` and friends) does not count as --host
  // given and clash with --system.
  auto* host = app->add_option("--host", o->host,
                               "the host to ask: a name or a control socket path (default: $WEFT_HOST, else default)");
  // Hidden: a snapshot from a file ('-': stdin) instead of a running host,
  // for tests and for looking at a saved --json answer.
  auto* file = app->add_option("--from-file", o->from_file, "read the snapshot from this file")->group("");
  // Hidden: where /proc is, for tests (a fake tree, or none at all).
  app->add_option("--proc-root", o->proc_root, "read the kernel's tables under this directory")->group("");
  system->excludes(host)->excludes(all);
  all->excludes(host);
  return Command{app, [o, host, file] {
                   // By hand: CLI11 names a hidden option "" in its message.
                   if (file->count() > 0 && (o->system || o->all_hosts))
                     usage_error(fmt::format("{} excludes --from-file", o->system ? "--system" : "--all-hosts"));
                   if (host->count() == 0) {
                     o->host = control::default_host();
                   } else if (o->host.empty()) {
                     usage_error("--host: empty name");
                   }
                   return run_netstat(*o);
                 }};
}

}  // namespace weft::cli
