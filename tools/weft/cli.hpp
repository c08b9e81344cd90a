// Shared conventions of every weft subcommand: bad arguments print one line
// on stderr and exit 2; runtime failures print one line and exit 1.
#pragma once

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <string>

namespace weft::cli {

constexpr int kExitUsage = 2;
constexpr int kExitRuntime = 1;

// Thrown by subcommand bodies for argument problems found after parsing.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void usage_error(const std::string& msg) { throw UsageError(msg); }

// Registers one subcommand; `run` returns the exit code.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command add_host_command(CLI::App& root);
Command add_sim_command(CLI::App& root);
Command add_cat_command(CLI::App& root);
Command add_ping_command(CLI::App& root);
Command add_serve_command(CLI::App& root);
Command add_netstat_command(CLI::App& root);
Command add_perf_command(CLI::App& root);

}  // namespace weft::cli
