// The link under `weft host`, from its flags: a TUN device (--tun,
// --kernel-addr) or the IP-in-UDP tunnel (--udp-link, --udp-peer), with
// --mtu. Kept apart from host_cmd.cpp so that the host's run loop only asks
// for "a link" and adding a kind of link does not touch it.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/counters.hpp"
#include "cli.hpp"
#include "link/link.hpp"
#include "link/udp_tunnel.hpp"
#include "wire/types.hpp"

namespace weft::cli {

// The flags as given.
struct LinkFlags {
  std::string tun;
  std::string kernel_addr;
  std::string udp_link;
  std::vector<std::string> udp_peers;
  std::size_t mtu = 0;
  bool mtu_given = false;
};

// Registers --tun, --kernel-addr, --udp-link, --udp-peer and --mtu on `app`.
void add_link_options(CLI::App* app, LinkFlags& f);

// The flags checked against the host's address: exactly one of --tun and
// --udp-link; --kernel-addr only with --tun, --udp-peer only with
// --udp-link, and --gateway (`gateway_given`) only with --tun, because the
// tunnel delivers by a packet's final destination and reaches only its
// peers. Every peer address lies inside `addr`'s prefix, is not `addr`
// itself nor the prefix's network or broadcast address, and appears once.
struct LinkPlan {
  std::string tun;                 // empty: the UDP tunnel
  std::optional<Ipv4Addr> kernel;  // TUN: the kernel's side, also the default gateway
  Endpoint udp_local;
  std::vector<UdpPeer> peers;
  std::size_t mtu = 0;  // --mtu, or the link's default (TUN 1500, tunnel 1472)
};
// Throws UsageError (exit 2) naming the offending flag.
LinkPlan check_link_flags(const LinkFlags& f, Ipv4Cidr addr, bool gateway_given);

// An open link and how the host reports it.
struct HostLink {
  std::unique_ptr<Link> link;
  std::string where;                      // for the ready line: "weft0", "udp:127.0.0.1:9000"
  std::function<CounterList()> counters;  // the link's own counters ("udp_link.*"); may be empty
};
// Opens and configures the link (for TUN: creates the device, sets its MTU,
// queue length, the kernel's address, and brings it up). Throws
// std::runtime_error (exit 1) with the failing step and errno text.
HostLink make_link(const LinkPlan& plan, Ipv4Cidr addr);

}  // namespace weft::cli
