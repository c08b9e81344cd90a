// Drives hosts on the simulated network in simulated time: time jumps from
// one deadline to the next, so a minute of traffic takes as long as the work
// in it, and a run is a pure function of its seed.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "host/host.hpp"
#include "link/sim.hpp"

namespace weft {

class SimDriver {
 public:
  explicit SimDriver(std::uint64_t seed, Impairments imp = {});
  ~SimDriver();

  // Adds a host on the network at cfg.address, with cfg.mtu. With a pcap
  // path, everything the host sends and receives is captured there.
  Host& add_host(StackConfig cfg, const std::string& pcap_path = "");

  SimNetwork& network() { return *net_; }
  Instant now() const { return now_; }

  // Steps every host at every deadline up to `until`, then sets now to it.
  void run_until(Instant until);
  void run_for(Duration d) { run_until(now_ + d); }
  // Runs until done() holds or `limit` passes; returns done().
  bool run_while_not(const std::function<bool()>& done, Instant limit);

 private:
  void step_all();
  std::optional<Instant> next_deadline() const;

  std::unique_ptr<SimNetwork> net_;
  std::vector<std::unique_ptr<Link>> decorators_;
  std::vector<std::unique_ptr<Host>> hosts_;
  Instant now_{};
};

}  // namespace weft
