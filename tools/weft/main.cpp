// weft: one binary, many subcommands (host, netstat, cat, perf, ping, ...).
#include <cstdio>
#include <vector>

#include "cli.hpp"

int main(int argc, char** argv) {
  CLI::App app{"weft: a user-space TCP/IP transport stack"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "show help for every subcommand");
  std::vector<weft::cli::Command> commands;
  commands.push_back(weft::cli::add_host_command(app));
  commands.push_back(weft::cli::add_sim_command(app));
  commands.push_back(weft::cli::add_cat_command(app));
  commands.push_back(weft::cli::add_ping_command(app));
  commands.push_back(weft::cli::add_serve_command(app));
  commands.push_back(weft::cli::add_netstat_command(app));
  commands.push_back(weft::cli::add_perf_command(app));

  std::string which = "weft";
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (auto& c : commands) {
      known = known || c.app->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + c.app->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "weft: unknown subcommand '%s' (%s)\n", argv[1], names.c_str());
      return weft::cli::kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    for (auto* sub : app.get_subcommands()) which = "weft " + sub->get_name();
    std::fprintf(stderr, "%s: %s\n", which.c_str(), e.what());
    return weft::cli::kExitUsage;
  }
  for (auto& c : commands) {
    if (!c.app->parsed()) continue;
    which = "weft " + c.app->get_name();
    try {
      return c.run();
    } catch (const weft::cli::UsageError& e) {
      std::fprintf(stderr, "%s: %s\n", which.c_str(), e.what());
      return weft::cli::kExitUsage;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", which.c_str(), e.what());
      return weft::cli::kExitRuntime;
    }
  }
  return weft::cli::kExitUsage;
}
