// weft netstat: a weft host's sockets and counters, printed the way
// net-tools `netstat` prints the kernel's. The host (daemon) sends a JSON
// snapshot (docs/netstat-json.md); src/host/netstat_format turns it into
// text. This file only picks the options and where the snapshot comes from.
#include <time.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>

#include "cli.hpp"
#include "client/client.hpp"
#include "host/netstat_format.hpp"

namespace weft::cli {

namespace {

using json = nlohmann::json;

struct NetstatCliOptions {
  NetstatOptions view;
  bool stats = false;
  bool continuous = false;
  bool json_out = false;
  std::string host = "default";
  std::string from_file;
};

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

SnapshotSource snapshot_source(const NetstatCliOptions& o) {
  if (!o.from_file.empty()) return [path = o.from_file] { return read_snapshot_file(path); };
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

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int) { g_stop = 1; }

int run_netstat(const NetstatCliOptions& o) {
  if (o.host.empty()) usage_error("--host: empty name");
  if (o.continuous && o.from_file == "-") usage_error("-c: cannot re-read a snapshot from stdin (--from-file -)");
  SnapshotSource source = snapshot_source(o);
  if (!o.continuous) {
    print(render(source(), o));
    return 0;
  }
  // No SA_RESTART: SIGINT must cut the one-second sleep short, so that
  // Ctrl-C ends the loop at once and the command exits 0.
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  while (!g_stop) {
    print(render(source(), o));
    timespec left{1, 0};
    while (!g_stop && nanosleep(&left, &left) == -1 && errno == EINTR) {
    }
  }
  return 0;
}

}  // namespace

Command add_netstat_command(CLI::App& root) {
  auto o = std::make_shared<NetstatCliOptions>();
  CLI::App* app = root.add_subcommand("netstat", "a weft host's sockets and counters, like net-tools netstat");
  app->add_flag("-t,--tcp", o->view.tcp, "TCP sockets (with neither -t nor -u: both)");
  app->add_flag("-u,--udp", o->view.udp, "UDP sockets");
  app->add_flag("-l,--listening", o->view.listening, "only servers: sockets with no peer");
  app->add_flag("-a,--all", o->view.all, "servers and connected sockets");
  app->add_flag("-n,--numeric", o->view.numeric, "numeric ports and user ids");
  app->add_flag("-p,--program,--programs", o->view.programs, "PID/Program name column");
  app->add_flag("-e,--extend", o->view.extend, "User and Inode (weft socket id) columns");
  auto* info = app->add_flag("--info", o->view.info, "TCP internals under each TCP row, like ss -ti");
  auto* stats = app->add_flag("-s,--statistics", o->stats, "counters, like netstat -s (-t/-u: only those protocols)");
  app->add_flag("-c,--continuous", o->continuous, "print again every second until interrupted");
  auto* js = app->add_flag("--json", o->json_out,
                           "print the snapshot as JSON (weft-netstat/1, sockets filtered by -t -u -l -a); "
                           "with -c one document per line");
  stats->excludes(info);
  js->excludes(info);
  js->excludes(stats);
  app->add_option("--host", o->host, "the host to ask: a name or a control socket path (default: $WEFT_HOST, else default)")
      ->envname("WEFT_HOST");
  // Hidden: a snapshot from a file ('-': stdin) instead of a running host,
  // for tests and for looking at a saved --json answer.
  app->add_option("--from-file", o->from_file, "read the snapshot from this file")->group("");
  return Command{app, [o] { return run_netstat(*o); }};
}

}  // namespace weft::cli
