#include "host/daemon_snapshot.hpp"

#include <unistd.h>

#include <chrono>

#include "host/daemon_impl.hpp"
#include "tcp/state.hpp"

namespace weft {

namespace {

using nlohmann::json;

json ep_json(const Endpoint& e) { return {{"address", e.addr.to_string()}, {"port", e.port.value()}}; }

json owner_json(const std::optional<SnapshotOwner>& o) {
  if (!o) return nullptr;
  return {{"pid", o->pid}, {"uid", o->uid}, {"program", o->program}};
}

json tcp_json(const SnapshotInput& in, const TcpInfo& i) {
  json o;
  o["proto"] = "tcp";
  o["id"] = socket_slot(i.id);  // the slot: small, unique while the socket lives (docs/netstat-json.md)
  o["state"] = std::string(tcp::state_name(i.state));
  o["local"] = ep_json(i.local);
  o["remote"] = i.remote ? ep_json(*i.remote) : json(nullptr);
  std::size_t rq = i.recv_queue, sq = i.send_queue;
  json owner = nullptr;
  if (auto p = in.tcp_pairs.find(i.id); p != in.tcp_pairs.end()) {
    owner = owner_json(p->second.owner);
    rq += p->second.recv_q;
    sq += p->second.send_q;
  } else if (in.tcp_services.count(i.id)) {
    owner = owner_json(in.daemon);  // the daemon's own services (echo, discard, ...)
  }                                 // else an orphan finishing its close: no owner, as the kernel shows it
  if (i.state == tcp::TcpState::listen) {
    // net-tools netstat (reading /proc/net/tcp) shows a listener's Send-Q
    // as 0; ss shows the backlog there. Follow netstat, and keep the
    // backlog as a field of its own.
    o["backlog"] = sq;
    sq = 0;
  }
  o["recv_q"] = rq;
  o["send_q"] = sq;
  o["owner"] = owner;
  using std::chrono::duration_cast;
  using us = std::chrono::microseconds;
  o["tcp_info"] = {{"srtt_us", duration_cast<us>(i.srtt).count()},
                   {"rttvar_us", duration_cast<us>(i.rttvar).count()},
                   {"rto_us", duration_cast<us>(i.rto).count()},
                   {"cwnd", i.cwnd},
                   {"ssthresh", i.ssthresh},
                   {"snd_wnd", i.snd_wnd},
                   {"rcv_wnd", i.rcv_wnd},
                   {"mss", i.mss},
                   {"retransmits", i.retransmits},
                   {"bytes_in", i.bytes_in},
                   {"bytes_out", i.bytes_out},
                   {"sack", i.sack},
                   {"timestamps", i.timestamps},
                   {"snd_wscale", i.snd_wscale},
                   {"rcv_wscale", i.rcv_wscale}};
  return o;
}

json udp_json(const SnapshotInput& in, const UdpSocketInfo& u) {
  json o;
  o["proto"] = "udp";
  o["id"] = socket_slot(u.id);
  o["state"] = u.remote ? "ESTABLISHED" : "";
  o["local"] = ep_json(u.local);
  o["remote"] = u.remote ? ep_json(*u.remote) : json(nullptr);
  std::size_t rq = u.recv_queue_bytes, sq = 0;
  json owner = owner_json(in.daemon);
  if (auto p = in.udp_pairs.find(u.id); p != in.udp_pairs.end()) {
    owner = owner_json(p->second.owner);
    rq += p->second.recv_q;
    sq += p->second.send_q;
  }
  o["recv_q"] = rq;
  o["send_q"] = sq;
  o["owner"] = owner;
  return o;
}

}  // namespace

json build_snapshot(const SnapshotInput& in) {
  json socks = json::array();
  for (const auto& i : in.tcp) socks.push_back(tcp_json(in, i));
  for (const auto& u : in.udp) socks.push_back(udp_json(in, u));
  json counters = json::object();
  for (const auto& [full, v] : in.counters) {
    auto dot = full.find('.');
    std::string group = dot == std::string::npos ? "other" : full.substr(0, dot);
    std::string name = dot == std::string::npos ? full : full.substr(dot + 1);
    counters[group][name] = v;
  }
  return {{"schema", "weft-netstat/1"},
          {"host", {{"name", in.name}, {"address", in.address}, {"link", in.link}, {"pid", in.pid}}},
          {"sockets", std::move(socks)},
          {"counters", std::move(counters)}};
}

// What build_snapshot needs, gathered: the stack's sockets as they are, and
// for each weft socket what its pair holds (the only descriptors read).
SnapshotInput Daemon::Impl::snapshot_input() const {
  using namespace daemon_detail;
  SnapshotInput in;
  in.name = cfg.name;
  in.address = host.stack().config().address.to_string();
  in.link = cfg.link_description;
  in.pid = ::getpid();
  in.daemon = SnapshotOwner{::getpid(), ::getuid(), program_name(::getpid())};
  auto owner = [&](std::uint32_t cid) -> std::optional<SnapshotOwner> {
    auto it = clients.find(cid);
    if (it == clients.end()) return std::nullopt;
    return SnapshotOwner{it->second.pid, it->second.uid, it->second.program};
  };
  const TcpServices* services = host.tcp_services();
  host.stack().tcp().for_each_socket([&](const TcpInfo& i) {
    in.tcp.push_back(i);
    if (auto h = tcp_sid.find(i.id); h != tcp_sid.end()) {
      const Sock& s = socks.at(h->second);
      PairView v{owner(s.client)};
      if (auto* t = std::get_if<StreamPair>(&s.as)) {
        v.recv_q = s.cfd.unread();
        const std::size_t in_pair = inq(s.dfd);
        v.send_q = in_pair > t->filler ? in_pair - t->filler : 0;  // the filler is not the process's data
      } else {
        v.recv_q = s.cfd.unread() / sizeof(control::AcceptRecord);
      }
      in.tcp_pairs.emplace(i.id, std::move(v));
    } else if (services && services->owns(i.id)) {
      in.tcp_services.insert(i.id);
    }
  });
  in.udp = host.stack().udp().sockets();
  for (const auto& u : in.udp) {
    if (auto h = udp_sid.find(u.id); h != udp_sid.end()) {
      const Sock& s = socks.at(h->second);
      in.udp_pairs.emplace(u.id, PairView{owner(s.client), s.cfd.unread(), inq(s.dfd)});
    }
  }
  in.counters = host.all_counters();
  collect_counters(counters, "daemon.", in.counters);
  return in;
}

}  // namespace weft
