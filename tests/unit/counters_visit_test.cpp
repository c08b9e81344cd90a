// Every counters struct's visit() names each of its fields exactly once:
// a field added without a line in visit() would never reach netstat -s,
// the host's exit report or the JSON snapshot. Each visited value must be
// a distinct uint64_t inside the struct, and together they must fill it.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>

#include "host/daemon.hpp"
#include "host/host.hpp"
#include "ip/reassembly.hpp"
#include "link/pcap.hpp"
#include "link/sim.hpp"
#include "link/trace.hpp"
#include "link/tun.hpp"
#include "link/udp_tunnel.hpp"
#include "services/services.hpp"
#include "services/tcp_services.hpp"
#include "stack/stack.hpp"
#include "tcp/tcp.hpp"
#include "transport/ports.hpp"
#include "udp/udp.hpp"

namespace weft {
namespace {

template <class T>
::testing::AssertionResult visits_every_field() {
  T c{};
  const auto* lo = reinterpret_cast<const unsigned char*>(&c);
  const auto* hi = lo + sizeof c;
  std::set<const void*> seen;
  std::set<std::string> names;
  std::string why;
  c.visit([&](const char* name, const std::uint64_t& v) {
    const auto* p = reinterpret_cast<const unsigned char*>(&v);
    if (p < lo || p + sizeof v > hi) why += std::string(" ") + name + " is not a field;";
    if (!seen.insert(&v).second) why += std::string(" ") + name + " visited twice;";
    if (!names.insert(name).second) why += std::string(" name ") + name + " repeated;";
  });
  if (seen.size() * sizeof(std::uint64_t) != sizeof(T))
    why += " visits " + std::to_string(seen.size()) + " fields of " + std::to_string(sizeof(T) / 8) + ";";
  if (why.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << why;
}

TEST(CountersVisit, EveryFieldOnce) {
  EXPECT_TRUE(visits_every_field<TcpCounters>()) << "TcpCounters";
  EXPECT_TRUE(visits_every_field<UdpCounters>()) << "UdpCounters";
  EXPECT_TRUE(visits_every_field<IpCounters>()) << "IpCounters";
  EXPECT_TRUE(visits_every_field<IcmpCounters>()) << "IcmpCounters";
  EXPECT_TRUE(visits_every_field<ip::ReassemblyCounters>()) << "ReassemblyCounters";
  EXPECT_TRUE(visits_every_field<PortTableCounters>()) << "PortTableCounters";
  EXPECT_TRUE(visits_every_field<TraceCounters>()) << "TraceCounters";
  EXPECT_TRUE(visits_every_field<SimCounters>()) << "SimCounters";
  EXPECT_TRUE(visits_every_field<TunCounters>()) << "TunCounters";
  EXPECT_TRUE(visits_every_field<PcapCounters>()) << "PcapCounters";
  EXPECT_TRUE(visits_every_field<UdpTunnelCounters>()) << "UdpTunnelCounters";
  EXPECT_TRUE(visits_every_field<ServiceCounters>()) << "ServiceCounters";
  EXPECT_TRUE(visits_every_field<TcpServiceCounters>()) << "TcpServiceCounters";
  EXPECT_TRUE(visits_every_field<LinkCounters>()) << "LinkCounters";
  EXPECT_TRUE(visits_every_field<DaemonCounters>()) << "DaemonCounters";
}

// The guard itself catches a field left out of visit().
struct Incomplete {
  std::uint64_t a = 0, b = 0;
  template <class F>
  void visit(F&& f) const {
    f("a", a);
  }
};

TEST(CountersVisit, AFieldLeftOutIsCaught) { EXPECT_FALSE(visits_every_field<Incomplete>()); }

}  // namespace
}  // namespace weft
