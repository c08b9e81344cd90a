#include "host/host.hpp"

#include <algorithm>

namespace weft {

Host::Host(StackConfig cfg, Link& link) : stack_(cfg), link_(link) {
  stack_.udp().set_on_readable([this](SocketId id) { ready_.push_back(id); });
  stack_.tcp().set_on_event([this](SocketId id) { tcp_ready_.push_back(id); });
}

Host::~Host() = default;

Status Host::start_services(ServiceSet set, std::function<std::string()> daytime_text) {
  auto daytime_text_copy = daytime_text;
  auto svc = UdpServices::start(stack_, set, std::move(daytime_text));
  if (!svc) return svc.error();
  auto tsvc = TcpServices::start(stack_, set, daytime_text_copy);
  if (!tsvc) return tsvc.error();  // both sets of sockets close as they go
  udp_services_ = std::move(svc.value());
  tcp_services_ = std::move(tsvc.value());
  return ok_status();
}

namespace {
// Serves each socket in `ready` once, in id order (a socket is often marked
// ready several times over). Sockets become ready while others are served;
// they go round again until none is left. `batch` is scratch space.
template <class Serve>
void serve_ready(std::vector<SocketId>& ready, std::vector<SocketId>& batch, Serve&& serve) {
  while (!ready.empty()) {
    batch.swap(ready);
    ready.clear();
    std::sort(batch.begin(), batch.end());
    batch.erase(std::unique(batch.begin(), batch.end()), batch.end());
    for (SocketId id : batch) serve(id);
    batch.clear();
  }
}
}  // namespace

void Host::dispatch(Instant now) {
  serve_ready(ready_, dispatching_, [&](SocketId id) {
    if (udp_services_ && udp_services_->on_readable(id, now)) return;
    if (on_udp_readable_) on_udp_readable_(id, now);
  });
  serve_ready(tcp_ready_, tcp_dispatching_, [&](SocketId id) {
    if (tcp_services_ && tcp_services_->on_event(id, now)) return;
    if (on_tcp_event_) on_tcp_event_(id, now);
  });
}

void Host::flush(Instant now) {
  stack_.drain([&](std::span<const std::uint8_t> p) {
    if (link_.send(p, now)) {
      ++link_counters_.tx_packets;
      link_counters_.tx_bytes += p.size();
    } else {
      ++link_counters_.tx_errors;
    }
  });
}

void Host::step(Instant now, bool link_readable) {
  if (!link_readable) {
    // The last step stopped at kRxBatch (the descriptor had more), or the
    // link holds packets it has fetched: read anyway.
    auto held = link_.next_deadline();
    link_readable = rx_backlog_ || (held && *held <= now);
  }
  rx_backlog_ = false;
  for (int i = 0; link_readable && i < kRxBatch; ++i) {
    std::size_t n = link_.receive(rx_buf_, now);
    if (n == 0) break;
    ++link_counters_.rx_packets;
    link_counters_.rx_bytes += n;
    stack_.receive(std::span<const std::uint8_t>(rx_buf_).first(n), now);
    if (i + 1 == kRxBatch) rx_backlog_ = true;
  }
  // Loopback traffic and services feed each other (a process on this host
  // talking to another through 127.0.0.1); a few rounds settle it, and what
  // is left waits for the next step.
  for (int round = 0; round < 8; ++round) {
    stack_.poll(now);
    dispatch(now);
    flush(now);
    auto d = stack_.next_deadline();
    if (!d || *d > now) break;
  }
}

std::optional<Instant> Host::next_deadline() const {
  std::optional<Instant> d = stack_.next_deadline();
  if (rx_backlog_) d = Instant{};
  if (auto l = link_.next_deadline(); l && (!d || *l < *d)) d = l;
  return d;
}

CounterList Host::all_counters() const {
  CounterList out;
  collect_counters(link_counters_, "link.", out);
  auto s = stack_.all_counters();
  out.insert(out.end(), s.begin(), s.end());
  if (udp_services_) collect_counters(udp_services_->counters(), "services.udp.", out);
  if (tcp_services_)
    tcp_services_->visit([&](const char* svc, const char* name, std::uint64_t v) {
      out.emplace_back(std::string("services.tcp.") + svc + "." + name, v);
    });
  return out;
}

}  // namespace weft
