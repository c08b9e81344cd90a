// The daemon's netstat snapshot as a pure function (host/daemon_snapshot.hpp):
// built from a hand-made input, no daemon, no descriptors.
#include "host/daemon_snapshot.hpp"

#include <gtest/gtest.h>

using namespace weft;
using json = nlohmann::json;

namespace {

Endpoint ep(const char* a, std::uint16_t p) { return Endpoint{*Ipv4Addr::parse(a), Port{p}}; }

TcpInfo tcp_sock(SocketId id, tcp::TcpState st, std::size_t rq, std::size_t sq) {
  TcpInfo i;
  i.id = id;
  i.state = st;
  i.local = ep("192.0.2.10", static_cast<std::uint16_t>(1000 + id));
  if (st != tcp::TcpState::listen) i.remote = ep("192.0.2.20", 5555);
  i.recv_queue = rq;
  i.send_queue = sq;
  i.cwnd = 14600;
  i.srtt = std::chrono::milliseconds(3);
  return i;
}

SnapshotInput sample() {
  SnapshotInput in;
  in.name = "h1";
  in.address = "192.0.2.10";
  in.link = "udp:127.0.0.1:9000";
  in.pid = 100;
  in.daemon = SnapshotOwner{100, 0, "weft"};
  in.tcp.push_back(tcp_sock(1, tcp::TcpState::listen, 2, 16));        // a process's listener
  in.tcp.push_back(tcp_sock(2, tcp::TcpState::established, 10, 20));  // a process's connection
  in.tcp.push_back(tcp_sock(3, tcp::TcpState::listen, 0, 8));         // a service's listener
  in.tcp.push_back(tcp_sock(4, tcp::TcpState::time_wait, 0, 0));      // an orphan
  in.tcp.push_back(tcp_sock(5, tcp::TcpState::established, 0, 0));    // its client gone
  in.tcp_pairs[1] = PairView{SnapshotOwner{200, 1000, "srv"}, 3, 0};
  in.tcp_pairs[2] = PairView{SnapshotOwner{201, 1001, "cli"}, 5, 7};
  in.tcp_pairs[5] = PairView{std::nullopt, 1, 1};
  in.tcp_services.insert(3);
  in.udp.push_back(UdpSocketInfo{10, ep("0.0.0.0", 53), std::nullopt, 40, 0});
  in.udp.push_back(UdpSocketInfo{11, ep("192.0.2.10", 4000), ep("192.0.2.30", 53), 0, 0});
  in.udp_pairs[11] = PairView{SnapshotOwner{202, 1002, "dig"}, 64, 32};
  in.counters = {{"tcp.segments_in", 7}, {"daemon.clients_current", 2}, {"loose", 1}};
  return in;
}

const json& sock(const json& doc, const char* proto, SocketId id) {
  for (const auto& s : doc["sockets"])
    if (s["proto"] == proto && s["id"] == id) return s;
  static const json none;
  ADD_FAILURE() << "no " << proto << " socket " << id;
  return none;
}

TEST(DaemonSnapshot, HeaderAndSchema) {
  json d = build_snapshot(sample());
  EXPECT_EQ(d["schema"], "weft-netstat/1");
  EXPECT_EQ(d["host"], (json{{"name", "h1"}, {"address", "192.0.2.10"}, {"link", "udp:127.0.0.1:9000"}, {"pid", 100}}));
  ASSERT_EQ(d["sockets"].size(), 7u);
  // TCP first, in the stack's order, then UDP.
  EXPECT_EQ(d["sockets"][0]["proto"], "tcp");
  EXPECT_EQ(d["sockets"][5]["proto"], "udp");
}

TEST(DaemonSnapshot, ListenerCountsWaitingConnectionsAndShowsBacklogApart) {
  json d = build_snapshot(sample());
  const json& l = sock(d, "tcp", 1);
  EXPECT_EQ(l["state"], "LISTEN");
  EXPECT_EQ(l["recv_q"], 5);  // 2 in the stack's queue + 3 handed over, not yet accepted
  EXPECT_EQ(l["send_q"], 0);  // as net-tools netstat shows it
  EXPECT_EQ(l["backlog"], 16);
  EXPECT_EQ(l["remote"], nullptr);
  EXPECT_EQ(l["owner"], (json{{"pid", 200}, {"uid", 1000}, {"program", "srv"}}));
}

TEST(DaemonSnapshot, ConnectionAddsWhatThePairHolds) {
  json d = build_snapshot(sample());
  const json& c = sock(d, "tcp", 2);
  EXPECT_EQ(c["state"], "ESTABLISHED");
  EXPECT_EQ(c["recv_q"], 15);
  EXPECT_EQ(c["send_q"], 27);
  EXPECT_FALSE(c.contains("backlog"));
  EXPECT_EQ(c["remote"], (json{{"address", "192.0.2.20"}, {"port", 5555}}));
  EXPECT_EQ(c["tcp_info"]["cwnd"], 14600);
  EXPECT_EQ(c["tcp_info"]["srtt_us"], 3000);
  EXPECT_EQ(c["owner"]["program"], "cli");
}

TEST(DaemonSnapshot, OwnersOfServicesOrphansAndGoneClients) {
  json d = build_snapshot(sample());
  EXPECT_EQ(sock(d, "tcp", 3)["owner"]["program"], "weft");  // the daemon's own service
  EXPECT_EQ(sock(d, "tcp", 3)["backlog"], 8);
  EXPECT_EQ(sock(d, "tcp", 4)["owner"], nullptr);  // an orphan finishing its close
  EXPECT_EQ(sock(d, "tcp", 5)["owner"], nullptr);  // its process went away
  EXPECT_EQ(sock(d, "tcp", 5)["recv_q"], 1);
}

TEST(DaemonSnapshot, UdpSockets) {
  json d = build_snapshot(sample());
  const json& server = sock(d, "udp", 10);
  EXPECT_EQ(server["state"], "");
  EXPECT_EQ(server["recv_q"], 40);
  EXPECT_EQ(server["send_q"], 0);
  EXPECT_EQ(server["owner"]["program"], "weft");  // no pair: the daemon's
  const json& client = sock(d, "udp", 11);
  EXPECT_EQ(client["state"], "ESTABLISHED");
  EXPECT_EQ(client["recv_q"], 64);
  EXPECT_EQ(client["send_q"], 32);
  EXPECT_EQ(client["owner"]["program"], "dig");
}

TEST(DaemonSnapshot, CountersByGroup) {
  json d = build_snapshot(sample());
  EXPECT_EQ(d["counters"]["tcp"]["segments_in"], 7);
  EXPECT_EQ(d["counters"]["daemon"]["clients_current"], 2);
  EXPECT_EQ(d["counters"]["other"]["loose"], 1);
}

TEST(DaemonSnapshot, EmptyHost) {
  SnapshotInput in;
  json d = build_snapshot(in);
  EXPECT_TRUE(d["sockets"].is_array());
  EXPECT_TRUE(d["sockets"].empty());
  EXPECT_TRUE(d["counters"].is_object());
}

}  // namespace
