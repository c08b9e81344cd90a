#include "netstat/netstat_format.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <pwd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <string_view>

namespace weft {

namespace {

using json = nlohmann::json;

// ---- reading the snapshot -------------------------------------------------
//
// Every access checks presence and type first and reports the path of the
// field, so that a daemon bug shows up as one readable line instead of a
// nlohmann::json exception (or worse, a default value printed as data).

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw NetstatSnapshotError(path + ": " + what);
}

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

const json& object_at(const json& j, const std::string& path) {
  if (!j.is_object()) fail(path, fmt::format("expected an object, got {}", j.type_name()));
  return j;
}

// The member `key` of object `obj`, which must be present.
const json& need(const json& obj, const std::string& path, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) fail(join(path, key), "missing");
  return *it;
}

// The member `key` of `obj`; nullptr when absent or null.
const json* maybe(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::uint64_t as_uint(const json& v, const std::string& path,
                      std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) {
  // A document built in C++ holds small literals as signed integers; one
  // parsed from text holds them as unsigned. Both are fine if not negative.
  if (!v.is_number_integer()) fail(path, fmt::format("expected a non-negative integer, got {}", v.type_name()));
  if (!v.is_number_unsigned() && v.get<std::int64_t>() < 0)
    fail(path, fmt::format("{} is negative", v.get<std::int64_t>()));
  std::uint64_t n = v.get<std::uint64_t>();
  if (n > max) fail(path, fmt::format("{} is larger than {}", n, max));
  return n;
}

std::string as_string(const json& v, const std::string& path) {
  if (!v.is_string()) fail(path, fmt::format("expected a string, got {}", v.type_name()));
  return v.get<std::string>();
}

bool as_bool(const json& v, const std::string& path) {
  if (!v.is_boolean()) fail(path, fmt::format("expected true or false, got {}", v.type_name()));
  return v.get<bool>();
}

std::uint64_t uint_at(const json& obj, const std::string& path, const char* key,
                      std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) {
  return as_uint(need(obj, path, key), join(path, key), max);
}
std::string string_at(const json& obj, const std::string& path, const char* key) {
  return as_string(need(obj, path, key), join(path, key));
}
bool bool_at(const json& obj, const std::string& path, const char* key) {
  return as_bool(need(obj, path, key), join(path, key));
}

constexpr std::array<std::string_view, 11> kTcpStates = {"LISTEN",     "ESTABLISHED", "SYN_SENT",  "SYN_RECV",
                                                         "FIN_WAIT1",  "FIN_WAIT2",   "TIME_WAIT", "CLOSE",
                                                         "CLOSE_WAIT", "LAST_ACK",    "CLOSING"};

bool is_v6_proto(std::string_view proto) { return proto == "tcp6" || proto == "udp6"; }
bool is_tcp_proto(std::string_view proto) { return proto == "tcp" || proto == "tcp6"; }

// The address's bytes (4 or 16), or nullopt when `text` is not an
// address of that family. inet_pton accepts exactly the dotted quad for
// IPv4, and every RFC 4291 text form for IPv6.
std::optional<std::array<unsigned char, 16>> address_bytes(std::string_view text, bool v6) {
  std::array<unsigned char, 16> b{};
  const std::string z(text);
  if (::inet_pton(v6 ? AF_INET6 : AF_INET, z.c_str(), b.data()) != 1) return std::nullopt;
  return b;
}

NetstatEndpoint parse_endpoint(const json& j, const std::string& path, bool v6) {
  object_at(j, path);
  NetstatEndpoint e;
  e.address = string_at(j, path, "address");
  if (!address_bytes(e.address, v6))
    fail(join(path, "address"), fmt::format("'{}' is not an {} address", e.address, v6 ? "IPv6" : "IPv4"));
  e.port = static_cast<std::uint16_t>(uint_at(j, path, "port", 65535));
  return e;
}

NetstatTcpInfo parse_tcp_info(const json& j, const std::string& path) {
  object_at(j, path);
  NetstatTcpInfo t;
  t.srtt_us = uint_at(j, path, "srtt_us");
  t.rttvar_us = uint_at(j, path, "rttvar_us");
  t.rto_us = uint_at(j, path, "rto_us");
  t.cwnd = uint_at(j, path, "cwnd");
  t.ssthresh = uint_at(j, path, "ssthresh");
  t.snd_wnd = uint_at(j, path, "snd_wnd");
  t.rcv_wnd = uint_at(j, path, "rcv_wnd");
  t.mss = uint_at(j, path, "mss");
  t.retransmits = uint_at(j, path, "retransmits");
  t.bytes_in = uint_at(j, path, "bytes_in");
  t.bytes_out = uint_at(j, path, "bytes_out");
  if (auto* a = maybe(j, "bytes_acked")) t.bytes_acked = as_uint(*a, join(path, "bytes_acked"));
  t.sack = bool_at(j, path, "sack");
  t.timestamps = bool_at(j, path, "timestamps");
  t.snd_wscale = uint_at(j, path, "snd_wscale", 14);  // RFC 7323 §2.3
  t.rcv_wscale = uint_at(j, path, "rcv_wscale", 14);
  return t;
}

NetstatSocket parse_socket(const json& j, const std::string& path, bool v2) {
  object_at(j, path);
  NetstatSocket s;
  s.proto = string_at(j, path, "proto");
  if (v2) {
    if (s.proto != "tcp" && s.proto != "udp" && s.proto != "tcp6" && s.proto != "udp6")
      fail(join(path, "proto"), fmt::format("'{}' is not tcp, udp, tcp6 or udp6", s.proto));
  } else if (s.proto != "tcp" && s.proto != "udp") {
    fail(join(path, "proto"), fmt::format("'{}' is not tcp or udp", s.proto));
  }
  const bool v6 = is_v6_proto(s.proto);
  s.id = uint_at(j, path, "id");
  s.state = string_at(j, path, "state");
  if (is_tcp_proto(s.proto)) {
    if (std::find(kTcpStates.begin(), kTcpStates.end(), s.state) == kTcpStates.end())
      fail(join(path, "state"),
           fmt::format("'{}' is not a TCP state (LISTEN, ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT1, "
                       "FIN_WAIT2, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, CLOSING)",
                       s.state));
  } else if (!s.state.empty() && s.state != "ESTABLISHED") {
    fail(join(path, "state"), fmt::format("'{}' is not a UDP state (\"\" or ESTABLISHED)", s.state));
  }
  s.local = parse_endpoint(need(j, path, "local"), join(path, "local"), v6);
  if (auto* r = maybe(j, "remote")) s.remote = parse_endpoint(*r, join(path, "remote"), v6);
  s.recv_q = uint_at(j, path, "recv_q");
  s.send_q = uint_at(j, path, "send_q");
  if (auto* u = maybe(j, "uid"))
    s.uid = static_cast<std::uint32_t>(as_uint(*u, join(path, "uid"), std::numeric_limits<std::uint32_t>::max()));
  if (auto* o = maybe(j, "owner")) {
    const std::string op = join(path, "owner");
    object_at(*o, op);
    NetstatOwner owner;
    owner.pid = static_cast<std::uint32_t>(uint_at(*o, op, "pid", std::numeric_limits<std::uint32_t>::max()));
    owner.uid = static_cast<std::uint32_t>(uint_at(*o, op, "uid", std::numeric_limits<std::uint32_t>::max()));
    owner.program = string_at(*o, op, "program");
    s.owner = std::move(owner);
  }
  if (auto* t = maybe(j, "tcp_info")) s.tcp_info = parse_tcp_info(*t, join(path, "tcp_info"));
  return s;
}

// ---- names and text ---------------------------------------------------------

// A process chooses its own name; one with a newline or an escape sequence
// in it must not be able to forge rows or drive the terminal.
std::string printable(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

// The first `n` bytes of `s`, not splitting a UTF-8 sequence.
std::string cut(const std::string& s, std::size_t n) {
  if (s.size() <= n) return s;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) --n;
  return s.substr(0, n);
}

std::string port_text(std::uint16_t port, const std::string& proto, bool numeric) {
  if (port == 0) return "*";  // net-tools' spelling of "no port"
  if (!numeric) {
    servent se{};
    servent* found = nullptr;
    std::array<char, 4096> buf{};
    if (getservbyport_r(htons(port), proto.c_str(), &se, buf.data(), buf.size(), &found) == 0 && found)
      return found->s_name;
  }
  return std::to_string(port);
}

std::string user_text(std::uint32_t uid, bool numeric) {
  if (!numeric) {
    passwd pw{};
    passwd* found = nullptr;
    std::array<char, 4096> buf{};
    if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found) return found->pw_name;
  }
  return std::to_string(uid);
}

// "address:port" in at most 23 characters, so the columns stay aligned,
// cut as net-tools cuts (its addr_do_one): when address and port need
// more than 22 characters, the port keeps up to 18 and the address what
// is left. Long IPv6 addresses and long host names are cut this way.
std::string endpoint_text(const NetstatEndpoint& e, const std::string& proto, bool numeric, std::string_view hosts) {
  constexpr std::size_t kShort = 22;  // the column is 23 wide, ':' included
  std::string addr = netstat_address_text(e.address, numeric, hosts);
  // Port names are per protocol in /etc/services: tcp6 looks up "tcp".
  std::string port = port_text(e.port, is_tcp_proto(proto) ? "tcp" : "udp", numeric);
  if (addr.size() + port.size() > kShort) {
    port = cut(port, std::min(port.size(), kShort - 4));
    addr = cut(addr, kShort - port.size());
  }
  return addr + ":" + port;
}

// The remote column of a socket with no peer: the family's wildcard.
NetstatEndpoint no_peer(const NetstatSocket& s) { return {is_v6_proto(s.proto) ? "::" : "0.0.0.0", 0}; }

// The hosts file's text for one table: read once, only when names are
// wanted; a missing file gives numbers.
std::string hosts_text(const NetstatOptions& o) {
  if (o.numeric || o.hosts_file.empty()) return {};
  std::ifstream f(o.hosts_file, std::ios::binary);
  if (!f) return {};
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void rstrip_append(std::string& out, std::string line) {
  while (!line.empty() && line.back() == ' ') line.pop_back();
  out += line;
  out += '\n';
}

std::string header(const NetstatOptions& o) {
  std::string out = "Active Internet connections ";
  out += o.all ? "(servers and established)" : o.listening ? "(only servers)" : "(w/o servers)";
  out += '\n';
  std::string cols = "Proto Recv-Q Send-Q Local Address           Foreign Address         State      ";
  if (o.extend) cols += " User       Inode     ";
  if (o.programs) cols += " PID/Program name";
  rstrip_append(out, cols);
  return out;
}

std::string row(const NetstatSocket& s, const NetstatOptions& o, std::string_view hosts) {
  const std::string local = endpoint_text(s.local, s.proto, o.numeric, hosts);
  // net-tools prints the peer as the kernel has it, a wildcard included
  // (":::*" for tcp6); a snapshot may also leave a missing peer out.
  const std::string remote = endpoint_text(s.remote ? *s.remote : no_peer(s), s.proto, o.numeric, hosts);
  std::string line =
      fmt::format("{:<4}  {:>6} {:>6} {:<23} {:<23} {:<11}", s.proto, s.recv_q, s.send_q, local, remote, s.state);
  if (o.extend) {
    // The socket's own user where the snapshot has it (net-tools shows
    // the kernel's, even for a socket no process holds); else its owner's.
    const std::optional<std::uint32_t> uid = s.uid ? s.uid : s.owner ? std::optional(s.owner->uid) : std::nullopt;
    const std::string user = uid ? printable(user_text(*uid, o.numeric)) : "-";
    line += fmt::format(" {:<10} {:<10}", user, s.id);
  }
  if (o.programs) {
    // net-tools keeps "PID/name" to 19 characters; users know that shape.
    line += " ";
    line += s.owner ? cut(printable(fmt::format("{}/{}", s.owner->pid, s.owner->program)), 19) : "-";
  }
  std::string out;
  rstrip_append(out, line);
  return out;
}

constexpr std::uint64_t kInitialSsthresh = 0x7fffffff;  // src/tcp/congestion.cpp

std::string info_line(const NetstatTcpInfo& t) {
  auto ms = [](std::uint64_t us) { return fmt::format("{:g}", static_cast<double>(us) / 1000.0); };
  auto segs = [&](std::uint64_t bytes) {
    return fmt::format("{} ({} bytes)", t.mss ? std::to_string(bytes / t.mss) : std::string("-"), bytes);
  };
  std::string line = fmt::format("        rto:{} rtt:{}/{} mss:{} cwnd:{}", ms(t.rto_us), ms(t.srtt_us),
                                 ms(t.rttvar_us), t.mss, segs(t.cwnd));
  line += " ssthresh:" + (t.ssthresh >= kInitialSsthresh ? std::string("inf") : segs(t.ssthresh));
  line +=
      fmt::format(" snd_wnd:{} rcv_wnd:{} retrans:{} bytes_sent:{}", t.snd_wnd, t.rcv_wnd, t.retransmits, t.bytes_out);
  if (t.bytes_acked) line += fmt::format(" bytes_acked:{}", *t.bytes_acked);
  line += fmt::format(" bytes_received:{}", t.bytes_in);
  if (t.sack) line += " sack";
  if (t.timestamps) line += " ts";
  line += fmt::format(" wscale:{},{}\n", t.snd_wscale, t.rcv_wscale);
  return line;
}

std::string table(const NetstatSnapshot& snap, const NetstatOptions& o) {
  std::string out = header(o);
  const std::string hosts = hosts_text(o);
  // net-tools reads /proc/net/tcp, tcp6, udp, udp6 in this order.
  for (const char* proto : {"tcp", "tcp6", "udp", "udp6"}) {
    for (const auto& s : snap.sockets) {
      if (s.proto != proto || !netstat_selects(s, o)) continue;
      out += row(s, o, hosts);
      if (o.info && s.tcp_info && is_tcp_proto(s.proto)) out += info_line(*s.tcp_info);
    }
  }
  return out;
}

// ---- netstat -s -------------------------------------------------------------

enum class Shape {
  phrase,    // "    {N} phrase" (the format holds the {})
  in_hist,   // "        phrase: N" under "    ICMP input histogram:", only if N != 0
  out_hist,  // the same under "    ICMP output histogram:"
};

struct StatLine {
  const char* name;    // counter name within the group
  const char* format;  // fmt format with one {} for the value
  Shape shape = Shape::phrase;
};

struct Section {
  const char* title;
  const char* group;
  const char* proto;  // "tcp"/"udp": shown with -t/-u; nullptr: only with neither
  std::vector<StatLine> lines;
  bool rest;  // also list the group's counters no section phrases, as "name: N"
};

// Phrases from net-tools `netstat -s`, only where the weft counter means
// what the Linux MIB counter behind the phrase means. Others print under
// their own names rather than under a phrase that would mislead.
const std::vector<Section>& sections() {
  static const std::vector<Section> k = {
      {"Ip",
       "ip",
       nullptr,
       {{"in_receives", "{} total packets received"},
        {"in_not_for_us", "{} with invalid addresses"},
        {"in_unknown_protocol", "{} with unknown protocol"},
        {"in_delivered", "{} incoming packets delivered"},
        {"out_requests", "{} requests sent out"},
        {"out_no_route", "{} dropped because of missing route"},
        {"frag.timed_out", "{} fragments dropped after timeout"},
        {"in_fragments", "{} reassemblies required"},
        {"reassembled", "{} packets reassembled ok"},
        {"out_fragments", "{} fragments created"}},
       true},
      {"Icmp",
       "icmp",
       nullptr,
       {{"in_msgs", "{} ICMP messages received"},
        {"in_errors", "{} input ICMP message failed"},
        {"in_dest_unreachable", "destination unreachable: {}", Shape::in_hist},
        {"in_echo_requests", "echo requests: {}", Shape::in_hist},
        {"in_echo_replies", "echo replies: {}", Shape::in_hist},
        {"out_dest_unreachable", "destination unreachable: {}", Shape::out_hist},
        {"out_echo_requests", "echo requests: {}", Shape::out_hist},
        {"out_echo_replies", "echo replies: {}", Shape::out_hist}},
       true},
      // RFC 4022's MIB; the rest of the TCP counters go to TcpExt, as
      // Linux splits /proc/net/snmp from /proc/net/netstat.
      {"Tcp",
       "tcp",
       "tcp",
       {{"active_opens", "{} active connection openings"},
        {"passive_opens", "{} passive connection openings"},
        {"attempt_fails", "{} failed connection attempts"},
        {"estab_resets", "{} connection resets received"},
        {"curr_estab", "{} connections established"},
        {"in_segs", "{} segments received"},
        {"out_segs", "{} segments sent out"},
        {"retrans_segs", "{} segments retransmitted"},
        {"in_errs", "{} bad segments received"},
        {"out_rsts", "{} resets sent"}},
       false},
      {"Udp",
       "udp",
       "udp",
       {{"in_datagrams", "{} packets received"},
        {"no_ports", "{} packets to unknown port received"},
        {"in_errors", "{} packet receive errors"},
        {"out_datagrams", "{} packets sent"},
        {"rcvbuf_errors", "{} receive buffer errors"}},
       true},
      {"TcpExt",
       "tcp",
       "tcp",
       {{"delayed_acks", "{} delayed acks sent"},
        {"listen_overflows", "{} times the listen queue of a socket overflowed"},
        {"sack_recoveries", "{} times recovered from packet loss by selective acknowledgements"},
        {"newreno_recoveries", "{} times recovered from packet loss due to fast retransmit"},
        {"fast_retransmits", "{} fast retransmits"},
        {"timeouts", "{} connections aborted due to timeout"}},
       true},
  };
  return k;
}

const CounterList* find_group(const NetstatSnapshot& snap, std::string_view name) {
  for (const auto& g : snap.counters)
    if (g.name == name) return &g.counters;
  return nullptr;
}

const std::uint64_t* find_counter(const CounterList& list, std::string_view name) {
  for (const auto& [n, v] : list)
    if (n == name) return &v;
  return nullptr;
}

std::string stats(const NetstatSnapshot& snap, const NetstatOptions& o) {
  const bool every = !o.tcp && !o.udp;
  auto wanted = [&](const char* proto) {
    if (every) return true;
    if (!proto) return false;
    return (o.tcp && std::string_view(proto) == "tcp") || (o.udp && std::string_view(proto) == "udp");
  };
  std::set<std::string> known_groups;
  for (const auto& sec : sections()) known_groups.insert(sec.group);

  std::string out;
  for (const auto& sec : sections()) {
    const CounterList* group = find_group(snap, sec.group);
    if (!group || !wanted(sec.proto)) continue;
    out += sec.title;
    out += ":\n";
    bool in_title = false, out_title = false;
    for (const auto& l : sec.lines) {
      const std::uint64_t* v = find_counter(*group, l.name);
      if (!v) continue;
      switch (l.shape) {
        case Shape::phrase:
          out += "    " + fmt::format(fmt::runtime(l.format), *v) + "\n";
          break;
        case Shape::in_hist:
        case Shape::out_hist: {
          if (*v == 0) break;
          bool& titled = l.shape == Shape::in_hist ? in_title : out_title;
          if (!titled)
            out += l.shape == Shape::in_hist ? "    ICMP input histogram:\n" : "    ICMP output histogram:\n";
          titled = true;
          out += "        " + fmt::format(fmt::runtime(l.format), *v) + "\n";
          break;
        }
      }
    }
    if (sec.rest) {
      // Every name some section of this group phrases.
      std::set<std::string_view> phrased;
      for (const auto& other : sections())
        if (std::string_view(other.group) == sec.group)
          for (const auto& l : other.lines) phrased.insert(l.name);
      for (const auto& [name, v] : *group)
        if (!phrased.count(name)) out += fmt::format("    {}: {}\n", name, v);
    }
  }
  if (every) {
    for (const auto& g : snap.counters) {
      if (known_groups.count(g.name)) continue;
      std::string title = g.name;
      if (!title.empty() && title[0] >= 'a' && title[0] <= 'z') title[0] = static_cast<char>(title[0] - 'a' + 'A');
      out += title + ":\n";
      for (const auto& [name, v] : g.counters) out += fmt::format("    {}: {}\n", name, v);
    }
  }
  return out;
}

}  // namespace

NetstatSnapshot parse_netstat_snapshot(const json& j) {
  if (!j.is_object()) fail("snapshot", fmt::format("expected an object, got {}", j.type_name()));
  const std::string schema = string_at(j, "", "schema");
  if (schema != kNetstatSchema && schema != kNetstatSchemaV2)
    fail("schema",
         fmt::format("'{}' is not {} or {} (the schemas this weft reads)", schema, kNetstatSchema, kNetstatSchemaV2));
  const bool v2 = schema == kNetstatSchemaV2;

  NetstatSnapshot snap;
  snap.schema = schema;
  const json& host = object_at(need(j, "", "host"), "host");
  snap.host.name = string_at(host, "host", "name");
  if (auto* k = maybe(host, "kind")) snap.host.kind = as_string(*k, "host.kind");
  snap.host.address = string_at(host, "host", "address");
  snap.host.link = string_at(host, "host", "link");
  snap.host.pid = uint_at(host, "host", "pid");

  const json& sockets = need(j, "", "sockets");
  if (!sockets.is_array()) fail("sockets", fmt::format("expected an array, got {}", sockets.type_name()));
  for (std::size_t i = 0; i < sockets.size(); ++i)
    snap.sockets.push_back(parse_socket(sockets[i], fmt::format("sockets[{}]", i), v2));

  const json& counters = object_at(need(j, "", "counters"), "counters");
  for (const auto& [gname, group] : counters.items()) {
    const std::string gpath = "counters." + gname;
    object_at(group, gpath);
    NetstatCounterGroup g{gname, {}};
    for (const auto& [name, v] : group.items()) g.counters.emplace_back(name, as_uint(v, gpath + "." + name));
    snap.counters.push_back(std::move(g));
  }
  return snap;
}

bool netstat_is_server(const NetstatSocket& s) {
  // net-tools decides by the remote port for TCP (tcp_do_one) and by the
  // remote address for UDP (udp_do_one's notnull()).
  if (!s.remote) return true;
  if (is_tcp_proto(s.proto)) return s.remote->port == 0;
  const auto b = address_bytes(s.remote->address, is_v6_proto(s.proto));
  return !b || std::all_of(b->begin(), b->end(), [](unsigned char c) { return c == 0; });
}

bool netstat_selects(const NetstatSocket& s, const NetstatOptions& o) {
  if (o.tcp || o.udp) {
    if (is_tcp_proto(s.proto) && !o.tcp) return false;
    if (!is_tcp_proto(s.proto) && !o.udp) return false;
  }
  return o.all || o.listening == netstat_is_server(s);
}

std::vector<std::string_view> split_words(std::string_view line) {
  constexpr auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && space(line[i])) ++i;
    std::size_t j = i;
    while (j < line.size() && !space(line[j])) ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<std::string> hosts_file_name(std::string_view hosts_text, std::string_view address) {
  const bool v6 = address.find(':') != std::string_view::npos;
  const auto want = address_bytes(address, v6);
  if (!want) return std::nullopt;
  std::size_t i = 0;
  while (i < hosts_text.size()) {
    std::size_t j = hosts_text.find('\n', i);
    if (j == std::string_view::npos) j = hosts_text.size();
    std::string_view line = hosts_text.substr(i, j - i);
    i = j + 1;
    const auto w = split_words(line.substr(0, line.find('#')));
    if (w.size() < 2) continue;
    if (address_bytes(w[0], v6) == want) return std::string(w[1]);
  }
  return std::nullopt;
}

std::string netstat_address_text(std::string_view address, bool numeric, std::string_view hosts_text) {
  const bool v6 = address.find(':') != std::string_view::npos;
  std::string text(address);
  if (v6) {
    // net-tools prints an IPv4-mapped address (a v4 peer of a dual-stack
    // socket) as the IPv4 address alone, named or not.
    const auto b = address_bytes(address, true);
    if (b && std::all_of(b->begin(), b->begin() + 10, [](unsigned char c) { return c == 0; }) && (*b)[10] == 0xff &&
        (*b)[11] == 0xff) {
      std::array<char, INET_ADDRSTRLEN> v4{};
      ::inet_ntop(AF_INET, b->data() + 12, v4.data(), v4.size());
      return v4.data();
    }
    if (numeric) return text;
    if (b && std::all_of(b->begin(), b->end(), [](unsigned char c) { return c == 0; })) return "[::]";
  } else if (numeric || text == "0.0.0.0") {
    return text;
  }
  return hosts_file_name(hosts_text, address).value_or(text);
}

std::string format_table(const json& snapshot, const NetstatOptions& o) {
  return table(parse_netstat_snapshot(snapshot), o);
}

std::string format_info(const json& snapshot, const NetstatOptions& o) {
  NetstatOptions with_info = o;
  with_info.info = true;
  return table(parse_netstat_snapshot(snapshot), with_info);
}

std::string format_stats(const json& snapshot, const NetstatOptions& o) {
  return stats(parse_netstat_snapshot(snapshot), o);
}

json filter_snapshot(const json& snapshot, const NetstatOptions& o) {
  const NetstatSnapshot snap = parse_netstat_snapshot(snapshot);
  json out = snapshot;
  json kept = json::array();
  const json& all = snapshot.at("sockets");  // checked by the parse above
  for (std::size_t i = 0; i < snap.sockets.size(); ++i)
    if (netstat_selects(snap.sockets[i], o)) kept.push_back(all[i]);
  out["sockets"] = std::move(kept);
  return out;
}

}  // namespace weft
