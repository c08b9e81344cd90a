#include "netstat/netstat_format.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <pwd.h>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
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
  o.hosts_file = "";  // no host names from this machine's /etc/hosts
  for (char c : flags) {
    switch (c) {
      case 't':
        o.tcp = true;
        break;
      case 'u':
        o.udp = true;
        break;
      case 'l':
        o.listening = true;
        break;
      case 'a':
        o.all = true;
        break;
      case 'n':
        o.numeric = true;
        break;
      case 'p':
        o.programs = true;
        break;
      case 'e':
        o.extend = true;
        break;
      default:
        ADD_FAILURE() << "unknown flag " << c;
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
  EXPECT_EQ(l[5], "udp        0      0 " + pad("192.0.2.10:49152", 23) + " " +
                      pad("192.0.2.1:" + service(80, "udp"), 23) + " ESTABLISHED");
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
  EXPECT_EQ(l[5],
            "udp        0      0 192.0.2.10:49152        192.0.2.1:80            ESTABLISHED 999/resolver-with-a");
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
  EXPECT_EQ(l[2],
            "tcp        0      0 0.0.0.0:7               0.0.0.0:*               LISTEN      -          3          -");
  EXPECT_EQ(l[3],
            "tcp       12   3400 192.0.2.10:7            192.0.2.20:50123        ESTABLISHED 0          17         "
            "1234/weft");
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
  j["sockets"][1]["state"] = "CLOSE";                       // bound, never connected
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
  EXPECT_EQ(with([](json& j) { j["schema"] = "weft-netstat/3"; }),
            "schema: 'weft-netstat/3' is not weft-netstat/1 or weft-netstat/2 (the schemas this weft reads)");
  // IPv6 needs weft-netstat/2: a /1 reader may take every non-tcp socket for UDP.
  EXPECT_EQ(with([](json& j) { j["sockets"][0]["proto"] = "tcp6"; }), "sockets[0].proto: 'tcp6' is not tcp or udp");
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

// ---- weft-netstat/2: IPv6, the kernel's sockets ------------------------------

namespace {

// What `weft netstat --system` builds, cut down: the new protocols, a
// mapped address, wildcards of both families, a socket-level uid.
const char* kSnapshotV2 = R"({
  "schema": "weft-netstat/2",
  "host": {"name": "system", "kind": "system", "address": "", "link": "Linux 6.18", "pid": 0},
  "sockets": [
    {"proto": "udp6", "id": 40, "state": "", "local": {"address": "::1", "port": 53},
     "remote": {"address": "::", "port": 0}, "recv_q": 832, "send_q": 0, "uid": 0, "owner": null},
    {"proto": "tcp6", "id": 30, "state": "LISTEN", "local": {"address": "::", "port": 22},
     "remote": {"address": "::", "port": 0}, "recv_q": 0, "send_q": 0, "uid": 0,
     "owner": {"pid": 7, "uid": 0, "program": "sshd"}},
    {"proto": "udp", "id": 20, "state": "ESTABLISHED", "local": {"address": "127.0.0.1", "port": 40000},
     "remote": {"address": "127.0.0.1", "port": 53}, "recv_q": 0, "send_q": 0, "uid": 0, "owner": null},
    {"proto": "tcp6", "id": 0, "state": "TIME_WAIT", "local": {"address": "::ffff:127.0.0.1", "port": 22},
     "remote": {"address": "::ffff:127.0.0.1", "port": 50000}, "recv_q": 0, "send_q": 0, "uid": 0, "owner": null},
    {"proto": "tcp", "id": 10, "state": "LISTEN", "local": {"address": "0.0.0.0", "port": 22},
     "remote": {"address": "0.0.0.0", "port": 0}, "recv_q": 0, "send_q": 0, "uid": 0, "owner": null},
    {"proto": "tcp6", "id": 31, "state": "ESTABLISHED",
     "local": {"address": "2001:db8:1234:5678:9abc:def0:1234:5678", "port": 22},
     "remote": {"address": "2001:db8::2", "port": 50001}, "recv_q": 0, "send_q": 0, "uid": 0, "owner": null}
  ],
  "counters": {}
})";

// A hosts file of the test's own, removed at exit.
struct HostsFile {
  std::string path = testing::TempDir() + "weft-netstat-hosts-" + std::to_string(::getpid());
  explicit HostsFile(const std::string& text) { std::ofstream(path) << text; }
  ~HostsFile() { std::remove(path.c_str()); }
};

}  // namespace

TEST(NetstatFormatV2, Ipv6RowsInNetToolsOrderAndSpelling) {
  NetstatOptions o = opts("anp");
  auto l = lines(format_table(json::parse(kSnapshotV2), o));
  ASSERT_EQ(l.size(), 8u);
  // tcp, tcp6, udp, udp6, as net-tools reads /proc/net; ":::*" is the
  // IPv6 wildcard; a mapped address shows as IPv4; a long address is cut
  // so that address and port fit 23 columns.
  EXPECT_EQ(l[2], "tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN      -");
  EXPECT_EQ(l[3], "tcp6       0      0 :::22                   :::*                    LISTEN      7/sshd");
  EXPECT_EQ(l[4], "tcp6       0      0 127.0.0.1:22            127.0.0.1:50000         TIME_WAIT   -");
  EXPECT_EQ(l[5], "tcp6       0      0 2001:db8:1234:5678:9:22 2001:db8::2:50001       ESTABLISHED -");
  EXPECT_EQ(l[6], "udp        0      0 127.0.0.1:40000         127.0.0.1:53            ESTABLISHED -");
  EXPECT_EQ(l[7], "udp6     832      0 ::1:53                  :::*                                -");
}

TEST(NetstatFormatV2, FiltersCoverBothFamilies) {
  const json j = json::parse(kSnapshotV2);
  EXPECT_EQ(lines(format_table(j, opts("tln"))).size(), 4u);  // two listeners + headers
  EXPECT_EQ(lines(format_table(j, opts("un"))).size(), 3u);   // the connected udp
  EXPECT_EQ(lines(format_table(j, opts("uln"))).size(), 3u);  // the bound udp6
  json f = filter_snapshot(j, opts("tl"));
  EXPECT_EQ(f["sockets"].size(), 2u);
  EXPECT_EQ(f["schema"], "weft-netstat/2");
}

TEST(NetstatFormatV2, ServerRuleIsNetTools) {
  // TCP is a server when the remote port is 0, UDP when the remote address
  // is unspecified, whatever the other half says.
  json j = json::parse(kSnapshotV2);
  j["sockets"][4]["remote"] = json::parse(R"({"address": "192.0.2.1", "port": 0})");
  j["sockets"][2]["remote"] = json::parse(R"({"address": "0.0.0.0", "port": 53})");
  auto s = parse_netstat_snapshot(j);
  EXPECT_TRUE(netstat_is_server(s.sockets[4]));
  EXPECT_TRUE(netstat_is_server(s.sockets[2]));
  EXPECT_TRUE(netstat_is_server(s.sockets[0]));
  EXPECT_FALSE(netstat_is_server(s.sockets[5]));
}

TEST(NetstatFormatV2, ExtendPrefersTheSocketsUid) {
  json j = json::parse(kSnapshotV2);
  j["sockets"][1]["uid"] = 1000;  // the socket's uid, not its owner's (0)
  auto l = lines(format_table(j, opts("taen")));
  ASSERT_GE(l.size(), 4u);
  EXPECT_EQ(l[3].substr(80), "1000       30");
  EXPECT_EQ(l[2].substr(80), "0          10");  // no owner, uid still known
}

TEST(NetstatFormatV2, Validation) {
  auto error = [](auto edit) {
    json j = json::parse(kSnapshotV2);
    edit(j);
    try {
      (void)parse_netstat_snapshot(j);
    } catch (const NetstatSnapshotError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error([](json&) {}), "no error");
  EXPECT_EQ(error([](json& j) { j["sockets"][0]["proto"] = "sctp"; }),
            "sockets[0].proto: 'sctp' is not tcp, udp, tcp6 or udp6");
  EXPECT_EQ(error([](json& j) { j["sockets"][1]["local"]["address"] = "192.0.2.1"; }),
            "sockets[1].local.address: '192.0.2.1' is not an IPv6 address");
  EXPECT_EQ(error([](json& j) { j["sockets"][4]["local"]["address"] = "::"; }),
            "sockets[4].local.address: '::' is not an IPv4 address");
  EXPECT_EQ(error([](json& j) { j["sockets"][0]["state"] = "LISTEN"; }),
            "sockets[0].state: 'LISTEN' is not a UDP state (\"\" or ESTABLISHED)");
  EXPECT_EQ(error([](json& j) { j["sockets"][0]["uid"] = -1; }), "sockets[0].uid: -1 is negative");
  EXPECT_EQ(error([](json& j) { j["host"]["kind"] = 1; }), "host.kind: expected a string, got number");
}

TEST(NetstatNames, HostsFileOnly) {
  const std::string hosts =
      "127.0.0.1\tlocalhost\n"
      "127.0.0.1 other-name\n"
      "::1 ip6-localhost ip6-loopback\n"
      "# 192.0.2.1 commented-out\n"
      "192.0.2.7   gw.example gw   # a trailing comment\n"
      "not-an-address some-name\n"
      "192.0.2.8\n";
  EXPECT_EQ(hosts_file_name(hosts, "127.0.0.1"), "localhost");  // the first line wins
  EXPECT_EQ(hosts_file_name(hosts, "::1"), "ip6-localhost");
  EXPECT_EQ(hosts_file_name(hosts, "0:0::1"), "ip6-localhost");  // compared as addresses
  EXPECT_EQ(hosts_file_name(hosts, "192.0.2.7"), "gw.example");
  EXPECT_EQ(hosts_file_name(hosts, "192.0.2.1"), std::nullopt);
  EXPECT_EQ(hosts_file_name(hosts, "192.0.2.8"), std::nullopt);  // an address with no name
  EXPECT_EQ(hosts_file_name(hosts, "some-name"), std::nullopt);

  // net-tools' spelling: numeric, or names with its special cases.
  EXPECT_EQ(netstat_address_text("127.0.0.1", true, hosts), "127.0.0.1");
  EXPECT_EQ(netstat_address_text("127.0.0.1", false, hosts), "localhost");
  EXPECT_EQ(netstat_address_text("0.0.0.0", false, hosts), "0.0.0.0");
  EXPECT_EQ(netstat_address_text("::", true, hosts), "::");
  EXPECT_EQ(netstat_address_text("::", false, hosts), "[::]");
  EXPECT_EQ(netstat_address_text("::1", false, hosts), "ip6-localhost");
  EXPECT_EQ(netstat_address_text("::ffff:127.0.0.1", true, hosts), "127.0.0.1");
  EXPECT_EQ(netstat_address_text("::ffff:127.0.0.1", false, hosts), "127.0.0.1");  // never named
  EXPECT_EQ(netstat_address_text("192.0.2.9", false, hosts), "192.0.2.9");
  EXPECT_EQ(netstat_address_text("2001:db8::1", false, hosts), "2001:db8::1");
}

TEST(NetstatNames, TableWithoutNumericUsesTheHostsFile) {
  HostsFile h("127.0.0.1 localhost\n192.0.2.20 peer-b.example.org\n::1 ip6-localhost\n");
  NetstatOptions o = opts("a");
  o.hosts_file = h.path;
  auto l = lines(format_table(snapshot(), o));
  ASSERT_EQ(l.size(), 6u);
  // A name that does not fit is cut like a long address.
  EXPECT_EQ(l[3].substr(44, 24), "peer-b.example.or:50123 ");
  auto v2 = lines(format_table(json::parse(kSnapshotV2), o));
  EXPECT_EQ(v2[3].substr(20, 48), pad("[::]:" + service(22, "tcp"), 23) + " " + pad("[::]:*", 24));
  EXPECT_EQ(v2[7].substr(20), pad("ip6-localhost:" + service(53, "udp"), 23) + " [::]:*");  // blanks cut
  // -n: no names at all.
  o.numeric = true;
  EXPECT_EQ(lines(format_table(snapshot(), o))[3].substr(44, 23), "192.0.2.20:50123       ");
}
