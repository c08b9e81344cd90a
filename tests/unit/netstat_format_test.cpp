#include "host/netstat_format.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <pwd.h>

#include <nlohmann/json.hpp>

#include <sstream>
#include <string>
#include <vector>

using namespace weft;
using json = nlohmann::json;

namespace {

// One of each kind of socket the daemon reports: a TCP listener and a
// connection, an unconnected UDP server and a connected UDP client.
const char* kSnapshot = R"({
  "schema": "weft-netstat/1",
  "host": {"name": "default", "address": "192.0.2.10/24", "link": "udp:127.0.0.1:9000", "pid": 4242},
  "sockets": [
    {"proto": "tcp", "id": 3, "state": "LISTEN",
     "local": {"address": "0.0.0.0", "port": 7}, "remote": null,
     "recv_q": 0, "send_q": 0, "owner": null},
    {"proto": "tcp", "id": 17, "state": "ESTABLISHED",
     "local": {"address": "192.0.2.10", "port": 7}, "remote": {"address": "192.0.2.20", "port": 50123},
     "recv_q": 12, "send_q": 3400, "owner": {"pid": 1234, "uid": 0, "program": "weft"},
     "tcp_info": {"srtt_us": 1200, "rttvar_us": 300, "rto_us": 201000, "cwnd": 14320, "ssthresh": 2147483647,
                  "snd_wnd": 65535, "rcv_wnd": 262144, "mss": 1432, "retransmits": 2,
                  "bytes_in": 5, "bytes_out": 3405, "sack": true, "timestamps": true, "snd_wscale": 7, "rcv_wscale": 6}},
    {"proto": "udp", "id": 4, "state": "",
     "local": {"address": "0.0.0.0", "port": 7}, "remote": null,
     "recv_q": 0, "send_q": 0, "owner": null},
    {"proto": "udp", "id": 21, "state": "ESTABLISHED",
     "local": {"address": "192.0.2.10", "port": 49152}, "remote": {"address": "192.0.2.1", "port": 80},
     "recv_q": 0, "send_q": 0, "owner": {"pid": 999, "uid": 0, "program": "resolver-with-a-long-name"}}
  ],
  "counters": {
    "ip": {"in_receives": 120, "in_delivered": 118, "in_martian": 2, "frag.timed_out": 1, "frag.duplicate": 0},
    "icmp": {"in_msgs": 3, "in_errors": 0, "in_echo_requests": 3, "in_echo_replies": 0,
             "out_echo_replies": 3, "out_dest_unreachable": 0, "rate_limited": 0},
    "tcp": {"active_opens": 3, "passive_opens": 5, "attempt_fails": 1, "estab_resets": 2, "curr_estab": 1,
            "in_segs": 40, "out_segs": 42, "retrans_segs": 4, "in_errs": 0, "out_rsts": 6,
            "delayed_acks": 7, "listen_overflows": 0, "bad_checksum": 0, "sockets": 2},
    "udp": {"in_datagrams": 10, "no_ports": 2, "in_errors": 1, "out_datagrams": 9, "rcvbuf_errors": 0, "send_errors": 0},
    "link": {"rx_packets": 120, "tx_packets": 119}
  }
})";

json snapshot() { return json::parse(kSnapshot); }

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

NetstatOptions opts(const std::string& flags) {
  NetstatOptions o;
  for (char c : flags) {
    switch (c) {
      case 't': o.tcp = true; break;
      case 'u': o.udp = true; break;
      case 'l': o.listening = true; break;
      case 'a': o.all = true; break;
      case 'n': o.numeric = true; break;
      case 'p': o.programs = true; break;
      case 'e': o.extend = true; break;
      default: ADD_FAILURE() << "unknown flag " << c;
    }
  }
  return o;
}

// The rows of a table (after the two header lines), as "proto id" where
// the id is found by -e's Inode column.
std::vector<std::string> selected(const std::string& flags) {
  auto o = opts(flags);
  o.extend = true;
  o.numeric = true;
  auto l = lines(format_table(snapshot(), o));
  std::vector<std::string> out;
  for (std::size_t i = 2; i < l.size(); ++i) {
    std::istringstream in(l[i]);
    std::vector<std::string> w;
    for (std::string s; in >> s;) w.push_back(s);
    out.push_back(w.at(0) + " " + w.at(w.size() - 1));
  }
  return out;
}

// The name the local services database gives `port`, or the number when
// it has none (containers without /etc/services).
std::string service(int port, const char* proto) {
  const servent* s = getservbyport(htons(static_cast<std::uint16_t>(port)), proto);
  return s ? s->s_name : std::to_string(port);
}

std::string user0() {
  const passwd* pw = getpwuid(0);
  return pw ? pw->pw_name : "0";
}

std::string pad(std::string s, std::size_t n) {
  s.resize(std::max(n, s.size()), ' ');
  return s;
}

}  // namespace

TEST(NetstatFormat, DefaultShowsOnlyConnectedSockets) {
  EXPECT_EQ(selected(""), (std::vector<std::string>{"tcp 17", "udp 21"}));
}

TEST(NetstatFormat, ListeningShowsOnlyServers) {
  // net-tools: a TCP listener and an unconnected UDP socket are "servers".
  EXPECT_EQ(selected("l"), (std::vector<std::string>{"tcp 3", "udp 4"}));
}

TEST(NetstatFormat, AllShowsBothAndOverridesListening) {
  const std::vector<std::string> every{"tcp 3", "tcp 17", "udp 4", "udp 21"};
  EXPECT_EQ(selected("a"), every);
  EXPECT_EQ(selected("al"), every);
}

TEST(NetstatFormat, ProtocolFilters) {
  EXPECT_EQ(selected("ta"), (std::vector<std::string>{"tcp 3", "tcp 17"}));
  EXPECT_EQ(selected("ua"), (std::vector<std::string>{"udp 4", "udp 21"}));
  EXPECT_EQ(selected("tua"), selected("a"));
  EXPECT_EQ(selected("tl"), (std::vector<std::string>{"tcp 3"}));
  EXPECT_EQ(selected("u"), (std::vector<std::string>{"udp 21"}));
}

TEST(NetstatFormat, TcpRowsComeBeforeUdpRowsWhateverTheSnapshotOrder) {
  json j = snapshot();
  std::swap(j["sockets"][0], j["sockets"][3]);  // udp 21 first
  auto o = opts("aen");
  auto l = lines(format_table(j, o));
  ASSERT_EQ(l.size(), 6u);
  EXPECT_EQ(l[2].substr(0, 3), "tcp");
  EXPECT_EQ(l[3].substr(0, 3), "tcp");
  EXPECT_EQ(l[4].substr(0, 3), "udp");
  EXPECT_EQ(l[5].substr(0, 3), "udp");
}

TEST(NetstatFormat, HeaderLines) {
  EXPECT_EQ(lines(format_table(snapshot(), opts("")))[0], "Active Internet connections (w/o servers)");
  EXPECT_EQ(lines(format_table(snapshot(), opts("l")))[0], "Active Internet connections (only servers)");
  EXPECT_EQ(lines(format_table(snapshot(), opts("a")))[0], "Active Internet connections (servers and established)");
  EXPECT_EQ(lines(format_table(snapshot(), opts("al")))[0], "Active Internet connections (servers and established)");

  const std::string cols = "Proto Recv-Q Send-Q Local Address           Foreign Address         State";
  EXPECT_EQ(lines(format_table(snapshot(), opts("")))[1], cols);
  EXPECT_EQ(lines(format_table(snapshot(), opts("p")))[1], cols + "       PID/Program name");
  EXPECT_EQ(lines(format_table(snapshot(), opts("e")))[1], cols + "       User       Inode");
  EXPECT_EQ(lines(format_table(snapshot(), opts("ep")))[1], cols + "       User       Inode      PID/Program name");
}

TEST(NetstatFormat, NumericRowsHaveNetToolsColumns) {
  auto l = lines(format_table(snapshot(), opts("an")));
  ASSERT_EQ(l.size(), 6u);
  EXPECT_EQ(l[2], "tcp        0      0 0.0.0.0:7               0.0.0.0:*               LISTEN");
  EXPECT_EQ(l[3], "tcp       12   3400 192.0.2.10:7            192.0.2.20:50123        ESTABLISHED");
  // An unconnected UDP socket has no state; the padding is cut.
  EXPECT_EQ(l[4], "udp        0      0 0.0.0.0:7               0.0.0.0:*");
  EXPECT_EQ(l[5], "udp        0      0 192.0.2.10:49152        192.0.2.1:80            ESTABLISHED");
}

TEST(NetstatFormat, NamesForPortsWithoutNumeric) {
  auto l = lines(format_table(snapshot(), opts("a")));
  ASSERT_EQ(l.size(), 6u);
  // Port names come from the local services database when it has them;
  // addresses stay numeric; port 0 is "*".
  EXPECT_EQ(l[2], pad("tcp        0      0 " + pad("0.0.0.0:" + service(7, "tcp"), 23) + " 0.0.0.0:*", 68) + "LISTEN");
  EXPECT_EQ(l[5], "udp        0      0 " + pad("192.0.2.10:49152", 23) + " " + pad("192.0.2.1:" + service(80, "udp"), 23) +
                      " ESTABLISHED");
  if (getservbyport(htons(7), "tcp")) {
    EXPECT_NE(l[2].find("0.0.0.0:echo "), std::string::npos);
  }
  if (getservbyport(htons(80), "udp")) {
    EXPECT_NE(l[5].find("192.0.2.1:http "), std::string::npos);
  }
}

TEST(NetstatFormat, ProgramsColumn) {
  auto l = lines(format_table(snapshot(), opts("anp")));
  ASSERT_EQ(l.size(), 6u);
  EXPECT_EQ(l[2], "tcp        0      0 0.0.0.0:7               0.0.0.0:*               LISTEN      -");
  EXPECT_EQ(l[3], "tcp       12   3400 192.0.2.10:7            192.0.2.20:50123        ESTABLISHED 1234/weft");
  EXPECT_EQ(l[4], "udp        0      0 0.0.0.0:7               0.0.0.0:*                           -");
  // "PID/name" is cut to 19 characters, as net-tools does.
  EXPECT_EQ(l[5], "udp        0      0 192.0.2.10:49152        192.0.2.1:80            ESTABLISHED 999/resolver-with-a");
}

TEST(NetstatFormat, ProgramNamesCannotForgeLines) {
  json j = snapshot();
  j["sockets"][1]["owner"]["program"] = "evil\nudp 0 0";
  auto text = format_table(j, opts("np"));
  EXPECT_EQ(lines(text).size(), 4u);
  EXPECT_NE(text.find("1234/evil?udp 0 0"), std::string::npos);
}

TEST(NetstatFormat, ExtendColumns) {
  auto l = lines(format_table(snapshot(), opts("aenp")));
  ASSERT_EQ(l.size(), 6u);
  EXPECT_EQ(l[2], "tcp        0      0 0.0.0.0:7               0.0.0.0:*               LISTEN      -          3          -");
  EXPECT_EQ(l[3], "tcp       12   3400 192.0.2.10:7            192.0.2.20:50123        ESTABLISHED 0          17         1234/weft");
  // Without -n the user's name, as net-tools (its -n covers users too).
  auto named = lines(format_table(snapshot(), opts("ae")));
  EXPECT_EQ(named[3].substr(80), pad(user0(), 10) + " 17");
  EXPECT_EQ(named[2].substr(80), "-          3");
}

TEST(NetstatFormat, InfoLineFollowsEachTcpRowWithTcpInfo) {
  NetstatOptions o = opts("an");
  auto l = lines(format_info(snapshot(), o));
  ASSERT_EQ(l.size(), 7u);
  EXPECT_EQ(l[2].substr(0, 3), "tcp");  // the listener: no tcp_info, no line
  EXPECT_EQ(l[3].substr(0, 3), "tcp");
  EXPECT_EQ(l[4],
            "        rto:201 rtt:1.2/0.3 mss:1432 cwnd:10 (14320 bytes) ssthresh:inf snd_wnd:65535 rcv_wnd:262144 "
            "retrans:2 bytes_sent:3405 bytes_received:5 sack ts wscale:7,6");
  EXPECT_EQ(l[5].substr(0, 3), "udp");
  EXPECT_EQ(l[6].substr(0, 3), "udp");
  o.info = true;
  EXPECT_EQ(format_table(snapshot(), o), format_info(snapshot(), o));
}

TEST(NetstatFormat, InfoLineUnitsAndEdges) {
  json j = snapshot();
  auto& t = j["sockets"][1]["tcp_info"];
  t["ssthresh"] = 10024;  // 7 segments
  t["cwnd"] = 15000;      // not a multiple of mss: whole segments
  t["sack"] = false;
  t["timestamps"] = false;
  t["srtt_us"] = 25;
  auto l = lines(format_info(j, opts("tn")));
  ASSERT_EQ(l.size(), 4u);
  EXPECT_EQ(l[3],
            "        rto:201 rtt:0.025/0.3 mss:1432 cwnd:10 (15000 bytes) ssthresh:7 (10024 bytes) snd_wnd:65535 "
            "rcv_wnd:262144 retrans:2 bytes_sent:3405 bytes_received:5 wscale:7,6");
  t["mss"] = 0;  // before the handshake fixed it: no segment count
  l = lines(format_info(j, opts("tn")));
  EXPECT_NE(l[3].find(" mss:0 cwnd:- (15000 bytes) ssthresh:- (10024 bytes) "), std::string::npos);
}

TEST(NetstatFormat, StatsPhrasesAndSections) {
  const std::string s = format_stats(snapshot());
  const std::string want =
      "Ip:\n"
      "    120 total packets received\n"
      "    118 incoming packets delivered\n"
      "    1 fragments dropped after timeout\n"
      "    frag.duplicate: 0\n"
      "    in_martian: 2\n"
      "Icmp:\n"
      "    3 ICMP messages received\n"
      "    0 input ICMP message failed\n"
      "    ICMP input histogram:\n"
      "        echo requests: 3\n"
      "    ICMP output histogram:\n"
      "        echo replies: 3\n"
      "    rate_limited: 0\n"
      "Tcp:\n"
      "    3 active connection openings\n"
      "    5 passive connection openings\n"
      "    1 failed connection attempts\n"
      "    2 connection resets received\n"
      "    1 connections established\n"
      "    40 segments received\n"
      "    42 segments sent out\n"
      "    4 segments retransmitted\n"
      "    0 bad segments received\n"
      "    6 resets sent\n"
      "Udp:\n"
      "    10 packets received\n"
      "    2 packets to unknown port received\n"
      "    1 packet receive errors\n"
      "    9 packets sent\n"
      "    0 receive buffer errors\n"
      "    send_errors: 0\n"
      "TcpExt:\n"
      "    7 delayed acks sent\n"
      "    0 times the listen queue of a socket overflowed\n"
      "    bad_checksum: 0\n"
      "    sockets: 2\n"
      "Link:\n"
      "    rx_packets: 120\n"
      "    tx_packets: 119\n";
  EXPECT_EQ(s, want);
}

TEST(NetstatFormat, StatsFilteredByProtocol) {
  const std::string t = format_stats(snapshot(), opts("t"));
  EXPECT_EQ(t.rfind("Tcp:\n", 0), 0u);
  EXPECT_NE(t.find("TcpExt:\n"), std::string::npos);
  EXPECT_EQ(t.find("Udp:"), std::string::npos);
  EXPECT_EQ(t.find("Ip:"), std::string::npos);
  EXPECT_EQ(t.find("Link:"), std::string::npos);
  const std::string u = format_stats(snapshot(), opts("u"));
  EXPECT_EQ(u.rfind("Udp:\n", 0), 0u);
  EXPECT_EQ(u.find("Tcp"), std::string::npos);
}

TEST(NetstatFormat, StatsSkipAbsentGroupsAndKeepUnknownOnes) {
  json j = snapshot();
  j["counters"] = json::parse(R"({"services": {"udp.echo.requests": 4}, "tcp": {"mystery": 1}})");
  EXPECT_EQ(format_stats(j), "Tcp:\nTcpExt:\n    mystery: 1\nServices:\n    udp.echo.requests: 4\n");
}

TEST(NetstatFormat, FilterSnapshotKeepsEverythingButUnselectedSockets) {
  json j = snapshot();
  j["future_field"] = "kept";
  json f = filter_snapshot(j, opts("ul"));
  ASSERT_EQ(f["sockets"].size(), 1u);
  EXPECT_EQ(f["sockets"][0]["id"], 4);
  EXPECT_EQ(f["future_field"], "kept");
  EXPECT_EQ(f["counters"], j["counters"]);
  EXPECT_EQ(f["host"], j["host"]);
  EXPECT_EQ(f["schema"], "weft-netstat/1");
}

TEST(NetstatFormat, UnconnectedMeansNoPeerHoweverSpelled) {
  json j = snapshot();
  j["sockets"][3]["remote"] = json::parse(R"({"address": "0.0.0.0", "port": 0})");
  j["sockets"][1].erase("remote");
  j["sockets"][1]["state"] = "CLOSE";  // bound, never connected
  EXPECT_EQ(lines(format_table(j, opts("n"))).size(), 2u);  // nothing connected left
  auto l = lines(format_table(j, opts("ln")));
  ASSERT_EQ(l.size(), 6u);
  EXPECT_NE(l[3].find("192.0.2.10:7            0.0.0.0:*               CLOSE"), std::string::npos);
}

TEST(NetstatFormat, ParseKeepsFields) {
  auto s = parse_netstat_snapshot(snapshot());
  EXPECT_EQ(s.host.name, "default");
  EXPECT_EQ(s.host.pid, 4242u);
  ASSERT_EQ(s.sockets.size(), 4u);
  EXPECT_EQ(s.sockets[1].owner->program, "weft");
  EXPECT_EQ(s.sockets[1].tcp_info->cwnd, 14320u);
  EXPECT_FALSE(s.sockets[0].remote);
  ASSERT_EQ(s.counters.size(), 5u);
  EXPECT_EQ(s.counters[0].name, "icmp");  // sorted by name
}

// ---- malformed snapshots: always NetstatSnapshotError naming the field ----

namespace {

std::string error_of(const json& j) {
  try {
    (void)format_table(j, opts("a"));
  } catch (const NetstatSnapshotError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("WRONG EXCEPTION: ") + e.what();
  }
  return "no error";
}

}  // namespace

TEST(NetstatFormat, MalformedSnapshotsNameTheField) {
  EXPECT_EQ(error_of(json::array()), "snapshot: expected an object, got array");
  EXPECT_EQ(error_of(json::object()), "schema: missing");

  auto with = [](auto edit) {
    json j = snapshot();
    edit(j);
    return error_of(j);
  };
  EXPECT_EQ(with([](json& j) { j["schema"] = "weft-netstat/2"; }),
            "schema: 'weft-netstat/2' is not weft-netstat/1 (the only schema this weft reads)");
  EXPECT_EQ(with([](json& j) { j["schema"] = 1; }), "schema: expected a string, got number");
  EXPECT_EQ(with([](json& j) { j.erase("sockets"); }), "sockets: missing");
  EXPECT_EQ(with([](json& j) { j["sockets"] = json::object(); }), "sockets: expected an array, got object");
  EXPECT_EQ(with([](json& j) { j["sockets"][2] = 5; }), "sockets[2]: expected an object, got number");
  EXPECT_EQ(with([](json& j) { j["sockets"][0]["proto"] = "sctp"; }), "sockets[0].proto: 'sctp' is not tcp or udp");
  EXPECT_EQ(with([](json& j) { j["sockets"][0]["state"] = "LISTENING"; }).substr(0, 50),
            "sockets[0].state: 'LISTENING' is not a TCP state (");
  EXPECT_EQ(with([](json& j) { j["sockets"][2]["state"] = "LISTEN"; }),
            "sockets[2].state: 'LISTEN' is not a UDP state (\"\" or ESTABLISHED)");
  EXPECT_EQ(with([](json& j) { j["sockets"][1]["local"]["port"] = 70000; }),
            "sockets[1].local.port: 70000 is larger than 65535");
  EXPECT_EQ(with([](json& j) { j["sockets"][1]["local"]["address"] = "::1"; }),
            "sockets[1].local.address: '::1' is not an IPv4 address");
  EXPECT_EQ(with([](json& j) { j["sockets"][1]["recv_q"] = -1; }), "sockets[1].recv_q: -1 is negative");
  EXPECT_EQ(with([](json& j) { j["sockets"][1]["send_q"] = 1.5; }),
            "sockets[1].send_q: expected a non-negative integer, got number");
  EXPECT_EQ(with([](json& j) { j["sockets"][1]["remote"] = "192.0.2.20:50123"; }),
            "sockets[1].remote: expected an object, got string");
  EXPECT_EQ(with([](json& j) { j["sockets"][1]["owner"].erase("pid"); }), "sockets[1].owner.pid: missing");
  EXPECT_EQ(with([](json& j) { j["sockets"][1]["tcp_info"].erase("mss"); }), "sockets[1].tcp_info.mss: missing");
  EXPECT_EQ(with([](json& j) { j["sockets"][1]["tcp_info"]["sack"] = 1; }),
            "sockets[1].tcp_info.sack: expected true or false, got number");
  EXPECT_EQ(with([](json& j) { j["host"].erase("pid"); }), "host.pid: missing");
  EXPECT_EQ(with([](json& j) { j.erase("counters"); }), "counters: missing");
  EXPECT_EQ(with([](json& j) { j["counters"]["tcp"] = 3; }), "counters.tcp: expected an object, got number");
  EXPECT_EQ(with([](json& j) { j["counters"]["tcp"]["in_segs"] = "many"; }),
            "counters.tcp.in_segs: expected a non-negative integer, got string");
}

TEST(NetstatFormat, EveryRequiredFieldIsChecked) {
  // Remove each field of the sample in turn: required ones must give a
  // NetstatSnapshotError naming them; the nullable ones (remote, owner,
  // tcp_info) must still format. Nothing may throw anything else.
  const json base = snapshot();
  const json flat = base.flatten();
  int required = 0;
  for (const auto& [pointer, value] : flat.items()) {
    (void)value;
    if (pointer.rfind("/counters/", 0) == 0) continue;  // counter names are free
    json::json_pointer p(pointer);
    // Remove the field itself and, for members of an optional object,
    // the whole object too.
    for (json::json_pointer q = p; !q.empty(); q = q.parent_pointer()) {
      json j = base;
      if (!j.contains(q)) continue;
      j[q.parent_pointer()].is_array() ? j[q.parent_pointer()].erase(std::stoul(q.back()))
                                       : (void)j[q.parent_pointer()].erase(q.back());
      const std::string err = error_of(j);
      const bool nullable = q.back() == "remote" || q.back() == "owner" || q.back() == "tcp_info";
      const bool array_element = j[q.parent_pointer()].is_array();
      if (nullable || array_element) {
        EXPECT_EQ(err, "no error") << q.to_string();
      } else {
        ++required;
        EXPECT_NE(err.find(": missing"), std::string::npos) << q.to_string() << " -> " << err;
      }
    }
  }
  EXPECT_GT(required, 30);
}
