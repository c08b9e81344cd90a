// weft sim: the demo's picture on the simulated network, in one process and
// simulated time, for machines without root or /dev/net/tun.
#include "cli.hpp"
#include "host/sim_driver.hpp"

namespace weft::cli {

namespace {

struct SimOptions {
  std::string services = "all";
  int clients = 6;
  double loss = 0;
  std::uint64_t seed = 1;
  std::string pcap;
};

int run_sim(const SimOptions& o) {
  std::string why;
  auto services = ServiceSet::parse(o.services, &why);
  if (!services) usage_error("--services: " + why);
  if (o.clients < 1 || o.clients > 1000) usage_error("--clients: must be 1-1000");
  if (o.loss < 0 || o.loss >= 1) usage_error("--loss: must be in [0, 1)");

  Impairments imp;
  imp.loss = o.loss;
  imp.delay = 1ms;
  SimDriver sim(o.seed, imp);
  StackConfig server_cfg, client_cfg;
  server_cfg.address = *Ipv4Cidr::parse("192.0.2.2/24");
  server_cfg.seed = o.seed * 2 + 1;
  client_cfg.address = *Ipv4Cidr::parse("192.0.2.1/24");
  client_cfg.seed = o.seed * 2;
  Host& server = sim.add_host(server_cfg, o.pcap);
  Host& client = sim.add_host(client_cfg);
  if (auto st = server.start_services(*services, [] { return std::string("Thursday, January 1, 1970 00:00:00-UTC"); });
      !st)
    throw std::runtime_error("start services: " + errc_message(st.error()));

  struct Job {
    const char* name;
    std::uint16_t port;
    std::string msg;
    SocketId sock;
    std::string got;
    bool answered = false;
  };
  const Job kinds[] = {{"echo", 7, "", 0, "", false},
                       {"daytime", 13, "", 0, "", false},
                       {"chargen", 19, "", 0, "", false},
                       {"discard", 9, "into the void", 0, "", false}};
  std::vector<Job> jobs;
  for (int i = 0; i < o.clients; ++i) {
    Job j = kinds[i % 4];
    if (j.port == 7) j.msg = fmt::format("hello from client {}", i);
    j.sock = client.stack().udp().open();
    if (auto st = client.stack().udp().connect(j.sock, Endpoint{server_cfg.address.addr, Port{j.port}}); !st)
      throw std::runtime_error("connect: " + errc_message(st.error()));
    jobs.push_back(j);
  }
  std::vector<std::uint8_t> buf(4096);
  client.set_on_udp_readable([&](SocketId s, Instant) {
    for (auto& j : jobs)
      if (j.sock == s)
        while (auto r = client.stack().udp().recv_from(s, buf)) {
          j.got.assign(reinterpret_cast<char*>(buf.data()), r->len);
          j.answered = true;
        }
  });
  for (auto& j : jobs)
    (void)client.stack().udp().send_to(j.sock, {reinterpret_cast<const std::uint8_t*>(j.msg.data()), j.msg.size()},
                                       std::nullopt, sim.now());
  sim.run_for(1s);

  std::printf("simulated network, seed %llu, loss %.0f%%: the weft host is %s, clients on %s\n",
              (unsigned long long)o.seed, o.loss * 100, server_cfg.address.to_string().c_str(),
              client_cfg.address.addr.to_string().c_str());
  for (auto& j : jobs) {
    auto local = client.stack().udp().local_endpoint(j.sock);
    std::string shown = j.got.substr(0, 60);
    for (auto& c : shown)
      if (c == '\r' || c == '\n') c = ' ';
    if (j.answered)
      std::printf("  %-21s -> %s:%-3u %-8s got %4zu bytes: %s\n", local->to_string().c_str(),
                  server_cfg.address.addr.to_string().c_str(), j.port, j.name, j.got.size(), shown.c_str());
    else
      std::printf("  %-21s -> %s:%-3u %-8s got nothing%s\n", local->to_string().c_str(),
                  server_cfg.address.addr.to_string().c_str(), j.port, j.name,
                  j.port == 9 ? " (as discard should)" : " (lost)");
  }
  std::printf("host %s counters:\n", server_cfg.address.addr.to_string().c_str());
  for (auto& [name, v] : server.all_counters())
    if (v) std::printf("  %-32s %llu\n", name.c_str(), (unsigned long long)v);
  return 0;
}

}  // namespace

Command add_sim_command(CLI::App& root) {
  auto o = std::make_shared<SimOptions>();
  CLI::App* app = root.add_subcommand("sim", "run the demo picture on the simulated network");
  app->add_option("--services", o->services, "services on the host (default all)");
  app->add_option("--clients", o->clients, "client sockets, each to one service (default 6)");
  app->add_option("--loss", o->loss, "packet loss rate, 0 to <1 (default 0)");
  app->add_option("--seed", o->seed, "random seed (default 1)");
  app->add_option("--pcap", o->pcap, "capture the host's link to this file");
  return Command{app, [o] { return run_sim(*o); }};
}

}  // namespace weft::cli
