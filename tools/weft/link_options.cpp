#include "link_options.hpp"

#include <stdexcept>
#include <unordered_set>

#include "link/tun.hpp"

namespace weft::cli {

void add_link_options(CLI::App* app, LinkFlags& f) {
  app->add_option("--tun", f.tun, "TUN device name (created if absent)");
  app->add_option("--kernel-addr", f.kernel_addr, "with --tun: address given to the kernel's side of the TUN");
  app->add_option("--udp-link", f.udp_link,
                  "carry IP in UDP from this local address:port instead of TUN, e.g. 127.0.0.1:9000");
  app->add_option("--udp-peer", f.udp_peers,
                  "with --udp-link: WEFT_ADDR=IP:PORT, a neighbour's tunnel endpoint (repeatable)")
      ->allow_extra_args(false);
  app->add_option("--mtu", f.mtu, "link MTU in bytes (default 1500 with --tun, 1472 with --udp-link)")
      ->each([&f](const std::string&) { f.mtu_given = true; });
}

LinkPlan check_link_flags(const LinkFlags& f, Ipv4Cidr addr, bool gateway_given) {
  const bool tun = !f.tun.empty(), udp = !f.udp_link.empty();
  if (tun && udp) usage_error("--tun and --udp-link exclude each other");
  if (!tun && !udp) usage_error("one of --tun or --udp-link is required");
  LinkPlan plan;
  if (tun) {
    if (!f.udp_peers.empty()) usage_error("--udp-peer: only with --udp-link");
    plan.tun = f.tun;
    plan.mtu = f.mtu_given ? f.mtu : 1500;
    if (plan.mtu < 68 || plan.mtu > 65535)
      usage_error(fmt::format("--mtu: {} is outside 68-65535 (RFC 791 §3.2)", plan.mtu));
    if (!f.kernel_addr.empty()) {
      plan.kernel = Ipv4Addr::parse(f.kernel_addr);
      if (!plan.kernel) usage_error(fmt::format("--kernel-addr: '{}' is not an IPv4 address", f.kernel_addr));
      if (!addr.contains(*plan.kernel) || *plan.kernel == addr.addr)
        usage_error(fmt::format("--kernel-addr: {} must be another address in {}", f.kernel_addr, addr.to_string()));
    }
    return plan;
  }

  if (!f.kernel_addr.empty()) usage_error("--kernel-addr: only with --tun");
  if (gateway_given)
    usage_error("--gateway: only with --tun (a --udp-link host reaches only its peers, inside --addr's prefix)");
  plan.mtu = f.mtu_given ? f.mtu : UdpTunnelLink::kDefaultMtu;
  if (plan.mtu < UdpTunnelLink::kMinMtu || plan.mtu > UdpTunnelLink::kMaxMtu)
    usage_error(fmt::format("--mtu: {} is outside {}-{} with --udp-link (the largest UDP payload over IPv4)", plan.mtu,
                            UdpTunnelLink::kMinMtu, UdpTunnelLink::kMaxMtu));
  std::string why;
  auto local = parse_udp_endpoint(f.udp_link, &why);
  if (!local) usage_error("--udp-link: " + why);
  plan.udp_local = *local;
  std::unordered_set<Ipv4Addr> seen;
  for (const std::string& s : f.udp_peers) {
    auto peer = parse_udp_peer(s, &why);
    if (!peer) usage_error("--udp-peer: " + why);
    const std::string a = peer->addr.to_string();
    if (!addr.contains(peer->addr) || peer->addr == addr.addr || peer->addr == addr.network() ||
        peer->addr == addr.directed_broadcast())
      usage_error(fmt::format("--udp-peer: {} must be another host address in {}", a, addr.to_string()));
    if (!seen.insert(peer->addr).second) usage_error(fmt::format("--udp-peer: {} is given twice", a));
    if (peer->udp == plan.udp_local)
      usage_error(fmt::format("--udp-peer: {} is --udp-link itself", peer->udp.to_string()));
    if (peer->udp.addr.is_any() || peer->udp.addr.is_broadcast() || peer->udp.addr.is_multicast())
      usage_error(fmt::format("--udp-peer: {} is not a unicast address to send to", peer->udp.addr.to_string()));
    plan.peers.push_back(*peer);
  }
  return plan;
}

namespace {

HostLink make_tun(const LinkPlan& plan, Ipv4Cidr addr) {
  const std::string& name = plan.tun;
  auto tun = TunLink::open(name, plan.mtu);
  if (!tun) throw std::runtime_error(fmt::format("open TUN {}: {}", name, errc_message(tun.error())));
  if (auto st = TunLink::set_mtu(name, plan.mtu); !st)
    throw std::runtime_error(fmt::format("set MTU of {}: {}", name, errc_message(st.error())));
  if (auto st = TunLink::set_tx_queue_len(name, 4096); !st)
    throw std::runtime_error(fmt::format("set queue length of {}: {}", name, errc_message(st.error())));
  if (plan.kernel) {
    if (auto st = TunLink::add_address(name, Ipv4Cidr{*plan.kernel, addr.prefix_len}); !st)
      throw std::runtime_error(
          fmt::format("give {} address {}: {}", name, plan.kernel->to_string(), errc_message(st.error())));
  }
  if (auto st = TunLink::set_up(name); !st)
    throw std::runtime_error(fmt::format("bring {} up: {}", name, errc_message(st.error())));
  HostLink out;
  out.link = std::move(tun.value());
  out.where = name;
  return out;
}

HostLink make_udp(const LinkPlan& plan) {
  auto udp = UdpTunnelLink::open(plan.udp_local, plan.peers, plan.mtu);
  if (!udp)
    throw std::runtime_error(
        fmt::format("open UDP link on {}: {}", plan.udp_local.to_string(), errc_message(udp.error())));
  const UdpTunnelLink* raw = udp.value().get();
  HostLink out;
  out.where = raw->name();  // the bound address, with the real port
  out.counters = [raw] {
    CounterList c;
    collect_counters(raw->counters(), "udp_link.", c);
    return c;
  };
  out.link = std::move(udp.value());
  return out;
}

}  // namespace

HostLink make_link(const LinkPlan& plan, Ipv4Cidr addr) {
  return plan.tun.empty() ? make_udp(plan) : make_tun(plan, addr);
}

}  // namespace weft::cli
