#include "host/sim_driver.hpp"

#include <stdexcept>

#include "link/pcap.hpp"

namespace weft {

SimDriver::SimDriver(std::uint64_t seed, Impairments imp) : net_(std::make_unique<SimNetwork>(seed, imp)) {}
SimDriver::~SimDriver() {
  hosts_.clear();  // hosts refer to the links: they go first
  decorators_.clear();
}

Host& SimDriver::add_host(StackConfig cfg, const std::string& pcap_path) {
  Link* link = &net_->attach(cfg.address.addr, cfg.mtu);
  if (!pcap_path.empty()) {
    auto pcap = PcapLink::open(*link, pcap_path);
    if (!pcap) throw std::runtime_error("cannot open pcap " + pcap_path);
    decorators_.push_back(std::move(pcap.value()));
    link = decorators_.back().get();
  }
  hosts_.push_back(std::make_unique<Host>(cfg, *link));
  return *hosts_.back();
}

void SimDriver::step_all() {
  for (auto& h : hosts_) h->step(now_);
}

std::optional<Instant> SimDriver::next_deadline() const {
  std::optional<Instant> t;
  for (auto& h : hosts_)
    if (auto d = h->next_deadline(); d && (!t || *d < *t)) t = d;
  return t;
}

void SimDriver::run_until(Instant until) {
  // Work due "now" can make more work due now (a reply to a reply); bound
  // the rounds at one instant so a bug shows as an error, not a hang.
  int same_instant = 0;
  for (;;) {
    step_all();
    auto t = next_deadline();
    if (!t || *t > until) break;
    if (*t <= now_) {
      if (++same_instant > 100000) throw std::runtime_error("simulation: no progress at one instant");
      continue;
    }
    same_instant = 0;
    now_ = *t;
  }
  if (until > now_) now_ = until;
  step_all();
}

bool SimDriver::run_while_not(const std::function<bool()>& done, Instant limit) {
  int same_instant = 0;
  for (;;) {
    step_all();
    if (done()) return true;
    auto t = next_deadline();
    if (!t || *t > limit) {
      now_ = std::max(now_, limit);
      step_all();
      return done();
    }
    if (*t <= now_) {
      if (++same_instant > 100000) throw std::runtime_error("simulation: no progress at one instant");
      continue;
    }
    same_instant = 0;
    now_ = *t;
  }
}

}  // namespace weft
