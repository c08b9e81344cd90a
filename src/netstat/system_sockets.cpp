#include "netstat/system_sockets.hpp"

#include <arpa/inet.h>
#include <linux/tcp.h>
#include <netinet/in.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

#include "netstat/netstat_format.hpp"
#include "netstat/sock_diag.hpp"

namespace weft {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

template <class T>
bool number(std::string_view s, T& out, int base) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc{} && p == s.data() + s.size();
}

// "0100007F:0050" → ("127.0.0.1", 80). The kernel prints each 32-bit word
// of the address as the number it is in memory ("%08X" of a __be32), so
// copying the parsed number back into memory restores the address bytes
// on any byte order.
bool endpoint(std::string_view s, bool v6, std::string& address, std::uint16_t& port) {
  const auto colon = s.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view hex = s.substr(0, colon);
  unsigned p = 0;
  if (!number(s.substr(colon + 1), p, 16) || p > 0xffff) return false;
  std::array<char, INET6_ADDRSTRLEN> buf{};
  if (!v6) {
    std::uint32_t w = 0;
    if (hex.size() != 8 || !number(hex, w, 16)) return false;
    in_addr a{};
    std::memcpy(&a, &w, sizeof(w));
    ::inet_ntop(AF_INET, &a, buf.data(), buf.size());
  } else {
    if (hex.size() != 32) return false;
    in6_addr a{};
    for (std::size_t i = 0; i < 4; ++i) {
      std::uint32_t w = 0;
      if (!number(hex.substr(i * 8, 8), w, 16)) return false;
      std::memcpy(reinterpret_cast<unsigned char*>(&a) + i * 4, &w, sizeof(w));
    }
    ::inet_ntop(AF_INET6, &a, buf.data(), buf.size());
  }
  address = buf.data();
  port = static_cast<std::uint16_t>(p);
  return true;
}

bool is_v6(ProcNetTable t) { return t == ProcNetTable::tcp6 || t == ProcNetTable::udp6; }

std::optional<ProcNetSocket> parse_line(std::string_view line, ProcNetTable table) {
  // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
  const auto w = split_words(line);
  if (w.size() < 10 || w[0].back() != ':') return std::nullopt;
  ProcNetSocket s;
  s.table = table;
  if (!endpoint(w[1], is_v6(table), s.local_address, s.local_port)) return std::nullopt;
  if (!endpoint(w[2], is_v6(table), s.remote_address, s.remote_port)) return std::nullopt;
  if (!number(w[3], s.state, 16)) return std::nullopt;
  const auto colon = w[4].find(':');
  if (colon == std::string_view::npos || !number(w[4].substr(0, colon), s.tx_queue, 16) ||
      !number(w[4].substr(colon + 1), s.rx_queue, 16))
    return std::nullopt;
  if (!number(w[7], s.uid, 10) || !number(w[9], s.inode, 10)) return std::nullopt;
  return s;
}

// The contents of a file, or nullopt with errno set.
std::optional<std::string> slurp(const std::string& path, std::size_t limit = std::string::npos) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::string text;
  if (limit == std::string::npos) {
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  } else {
    text.resize(limit);
    f.read(text.data(), static_cast<std::streamsize>(limit));
    text.resize(static_cast<std::size_t>(f.gcount()));
  }
  if (f.bad()) {
    errno = EIO;
    return std::nullopt;
  }
  return text;
}

// "socket:[12345]" (or the form of old kernels, "[0000]:12345") → 12345.
std::optional<std::uint64_t> socket_inode(std::string_view link) {
  std::uint64_t inode = 0;
  if (link.starts_with("socket:[") && link.ends_with("]") && number(link.substr(8, link.size() - 9), inode, 10))
    return inode;
  if (link.starts_with("[0000]:") && number(link.substr(7), inode, 10)) return inode;
  return std::nullopt;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// ---- netstat -s ---------------------------------------------------------

struct MibName {
  const char* linux_name;
  const char* weft_name;
};

// Linux MIB counters that mean what a weft counter means, by weft's name
// (so that format_stats() prints net-tools' phrase for them). The pairs
// are the ones net-tools itself phrases (its statistics.c tables).
const std::vector<MibName>& mib_names(std::string_view section) {
  static const std::vector<MibName> ip = {
      {"InReceives", "in_receives"},      {"InAddrErrors", "in_not_for_us"}, {"InUnknownProtos", "in_unknown_protocol"},
      {"InDelivers", "in_delivered"},     {"OutRequests", "out_requests"},   {"OutNoRoutes", "out_no_route"},
      {"ReasmTimeout", "frag.timed_out"}, {"ReasmReqds", "in_fragments"},    {"ReasmOKs", "reassembled"},
      {"FragCreates", "out_fragments"}};
  static const std::vector<MibName> icmp = {{"InMsgs", "in_msgs"},
                                            {"InErrors", "in_errors"},
                                            {"InDestUnreachs", "in_dest_unreachable"},
                                            {"InEchos", "in_echo_requests"},
                                            {"InEchoReps", "in_echo_replies"},
                                            {"OutDestUnreachs", "out_dest_unreachable"},
                                            {"OutEchos", "out_echo_requests"},
                                            {"OutEchoReps", "out_echo_replies"}};
  static const std::vector<MibName> tcp = {
      {"ActiveOpens", "active_opens"}, {"PassiveOpens", "passive_opens"}, {"AttemptFails", "attempt_fails"},
      {"EstabResets", "estab_resets"}, {"CurrEstab", "curr_estab"},       {"InSegs", "in_segs"},
      {"OutSegs", "out_segs"},         {"RetransSegs", "retrans_segs"},   {"InErrs", "in_errs"},
      {"OutRsts", "out_rsts"}};
  static const std::vector<MibName> udp = {{"InDatagrams", "in_datagrams"},
                                           {"NoPorts", "no_ports"},
                                           {"InErrors", "in_errors"},
                                           {"OutDatagrams", "out_datagrams"},
                                           {"RcvbufErrors", "rcvbuf_errors"}};
  static const std::vector<MibName> tcpext = {
      {"DelayedACKs", "delayed_acks"},        {"ListenOverflows", "listen_overflows"},
      {"TCPSackRecovery", "sack_recoveries"}, {"TCPRenoRecovery", "newreno_recoveries"},
      {"TCPFastRetrans", "fast_retransmits"}, {"TCPAbortOnTimeout", "timeouts"}};
  static const std::vector<MibName> none;
  if (section == "Ip") return ip;
  if (section == "Icmp") return icmp;
  if (section == "Tcp") return tcp;
  if (section == "Udp") return udp;
  if (section == "TcpExt") return tcpext;
  return none;
}

const char* group_of(std::string_view section) {
  if (section == "Ip") return "ip";
  if (section == "Icmp") return "icmp";
  if (section == "Tcp" || section == "TcpExt") return "tcp";
  if (section == "Udp") return "udp";
  return nullptr;
}

// Both files hold pairs of lines: "Tcp: Name1 Name2 ..." then
// "Tcp: 1 2 ...".
void add_mib_pairs(std::string_view text, json& groups) {
  std::vector<std::string_view> lines;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = text.find('\n', i);
    if (j == std::string_view::npos) j = text.size();
    lines.push_back(text.substr(i, j - i));
    i = j + 1;
  }
  for (std::size_t l = 0; l + 1 < lines.size(); ++l) {
    const auto names = split_words(lines[l]);
    const auto values = split_words(lines[l + 1]);
    if (names.size() < 2 || values.size() != names.size() || names[0] != values[0] || names[0].back() != ':') continue;
    std::int64_t probe = 0;
    if (number(names[1], probe, 10) || !number(values[1], probe, 10)) continue;  // not a names line and its values
    const std::string_view section = names[0].substr(0, names[0].size() - 1);
    ++l;  // the values line is consumed
    const char* group = group_of(section);
    if (!group) continue;
    json& g = groups[group];
    if (g.is_null()) g = json::object();
    for (std::size_t k = 1; k < names.size(); ++k) {
      std::int64_t v = 0;
      if (!number(values[k], v, 10) || v < 0) continue;
      std::string name(names[k]);
      for (const auto& m : mib_names(section))
        if (names[k] == m.linux_name) name = m.weft_name;
      g[name] = static_cast<std::uint64_t>(v);
    }
  }
}

}  // namespace

const char* proc_net_proto(ProcNetTable t) {
  switch (t) {
    case ProcNetTable::tcp:
      return "tcp";
    case ProcNetTable::tcp6:
      return "tcp6";
    case ProcNetTable::udp:
      return "udp";
    case ProcNetTable::udp6:
      return "udp6";
  }
  return "?";
}

bool proc_net_is_tcp(ProcNetTable t) { return t == ProcNetTable::tcp || t == ProcNetTable::tcp6; }

ProcNetParse parse_proc_net(std::string_view text, ProcNetTable table) {
  ProcNetParse out;
  bool header = true;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = text.find('\n', i);
    if (j == std::string_view::npos) j = text.size();
    const std::string_view line = text.substr(i, j - i);
    i = j + 1;
    if (header) {  // "  sl  local_address rem_address   st ..."
      header = false;
      continue;
    }
    if (split_words(line).empty()) continue;
    if (auto s = parse_line(line, table)) {
      out.sockets.push_back(std::move(*s));
    } else {
      ++out.malformed;
    }
  }
  return out;
}

std::optional<std::string> netstat_state_name(ProcNetTable table, unsigned code) {
  if (!proc_net_is_tcp(table)) {
    if (code == 1) return std::string("ESTABLISHED");
    if (code == 7) return std::string();
    return std::nullopt;
  }
  static constexpr std::array<const char*, 12> kNames = {nullptr,      "ESTABLISHED", "SYN_SENT",  "SYN_RECV",
                                                         "FIN_WAIT1",  "FIN_WAIT2",   "TIME_WAIT", "CLOSE",
                                                         "CLOSE_WAIT", "LAST_ACK",    "LISTEN",    "CLOSING"};
  if (code == 0 || code >= kNames.size()) return std::nullopt;
  return std::string(kNames[code]);
}

std::string netstat_program_name(std::string_view cmdline) {
  constexpr std::size_t kRead = 511;  // net-tools reads the command line into 512 bytes
  std::string_view argv0 = cmdline.substr(0, std::min(cmdline.size(), kRead));
  argv0 = argv0.substr(0, argv0.find('\0'));
  if (!argv0.empty() && argv0[0] == '/') argv0.remove_prefix(argv0.rfind('/') + 1);
  return std::string(argv0);
}

OwnerScan scan_socket_owners(const std::string& proc_root) {
  OwnerScan scan;
  std::error_code ec;
  fs::directory_iterator it(proc_root, ec);
  if (ec) {
    scan.error = fmt::format("cannot list {}: {}", proc_root, ec.message());
    return scan;
  }
  std::vector<std::uint32_t> pids;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    std::uint32_t pid = 0;
    if (all_digits(name) && number(std::string_view(name), pid, 10)) pids.push_back(pid);
  }
  std::sort(pids.begin(), pids.end());

  for (std::uint32_t pid : pids) {
    const std::string dir = fmt::format("{}/{}", proc_root, pid);
    fs::directory_iterator fds(dir + "/fd", ec);
    if (ec) {
      // EACCES: another user's process. ENOENT: it exited meanwhile.
      if (ec == std::errc::permission_denied) ++scan.denied;
      continue;
    }
    std::optional<std::string> program;
    bool no_program = false;
    for (; fds != fs::directory_iterator(); fds.increment(ec)) {
      if (ec) break;
      const auto target = fs::read_symlink(fds->path(), ec);
      if (ec) continue;
      const auto inode = socket_inode(target.native());
      if (!inode) continue;
      if (!program && !no_program) {
        // As net-tools: a process whose command line cannot be read
        // (it exited between the two reads) is not named at all.
        if (auto cmd = slurp(dir + "/cmdline", 511)) {
          program = netstat_program_name(*cmd);
        } else {
          no_program = true;
        }
      }
      if (program) scan.by_inode.emplace(*inode, SocketOwner{pid, *program});  // the first holder wins
    }
  }
  return scan;
}

json proc_net_counters(std::string_view snmp, std::string_view netstat) {
  json groups = json::object();
  add_mib_pairs(snmp, groups);
  add_mib_pairs(netstat, groups);
  return groups;
}

std::optional<json> kernel_tcp_info_json(std::span<const std::uint8_t> raw) {
  tcp_info ti{};
  const std::size_t have = std::min(raw.size(), sizeof(ti));
  auto present = [&](std::size_t offset, std::size_t size) { return raw.size() >= offset + size; };
  if (!present(offsetof(tcp_info, tcpi_total_retrans), sizeof(ti.tcpi_total_retrans))) return std::nullopt;
  std::memcpy(&ti, raw.data(), have);

  // Linux's "no threshold yet" (TCP_INFINITE_SSTHRESH), in segments.
  constexpr std::uint32_t kInfinite = 0x7fffffff;
  const std::uint64_t mss = ti.tcpi_snd_mss;
  const bool has_bytes_sent = present(offsetof(tcp_info, tcpi_bytes_sent), sizeof(ti.tcpi_bytes_sent));
  const bool has_bytes_acked = present(offsetof(tcp_info, tcpi_bytes_acked), sizeof(ti.tcpi_bytes_acked));
  const bool has_bytes_received = present(offsetof(tcp_info, tcpi_bytes_received), sizeof(ti.tcpi_bytes_received));
  const bool has_snd_wnd = present(offsetof(tcp_info, tcpi_snd_wnd), sizeof(ti.tcpi_snd_wnd));
  // tcpi_rcv_wnd follows tcpi_snd_wnd in newer kernels than the headers
  // this builds with may know; read it by its offset when it was sent.
  const std::size_t rcv_wnd_at = offsetof(tcp_info, tcpi_snd_wnd) + sizeof(ti.tcpi_snd_wnd);
  std::uint64_t rcv_wnd = ti.tcpi_rcv_space;
  if (present(rcv_wnd_at, sizeof(std::uint32_t))) {
    std::uint32_t w = 0;
    std::memcpy(&w, raw.data() + rcv_wnd_at, sizeof(w));
    rcv_wnd = w;
  }
  const bool wscale = (ti.tcpi_options & TCPI_OPT_WSCALE) != 0;
  json j = {
      {"srtt_us", ti.tcpi_rtt},
      {"rttvar_us", ti.tcpi_rttvar},
      {"rto_us", ti.tcpi_rto},
      {"cwnd", ti.tcpi_snd_cwnd * mss},
      {"ssthresh", ti.tcpi_snd_ssthresh >= kInfinite ? std::uint64_t{kInfinite} : ti.tcpi_snd_ssthresh * mss},
      {"snd_wnd", has_snd_wnd ? ti.tcpi_snd_wnd : 0u},
      {"rcv_wnd", rcv_wnd},
      {"mss", mss},
      {"retransmits", ti.tcpi_total_retrans},
      {"bytes_in", has_bytes_received ? ti.tcpi_bytes_received : 0u},
      {"bytes_out", has_bytes_sent ? ti.tcpi_bytes_sent : (has_bytes_acked ? ti.tcpi_bytes_acked : 0u)},
      {"sack", (ti.tcpi_options & TCPI_OPT_SACK) != 0},
      {"timestamps", (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) != 0},
      {"snd_wscale", wscale ? ti.tcpi_snd_wscale : 0},
      {"rcv_wscale", wscale ? ti.tcpi_rcv_wscale : 0},
  };
  if (has_bytes_acked) j["bytes_acked"] = ti.tcpi_bytes_acked;
  return j;
}

std::string socket_key(std::string_view proto, std::string_view local_address, std::uint16_t local_port,
                       std::string_view remote_address, std::uint16_t remote_port) {
  return fmt::format("{} {}:{} {}:{}", proto, local_address, local_port, remote_address, remote_port);
}

json system_snapshot(const SystemSnapshotInput& in) {
  json sockets = json::array();
  for (const auto& s : in.sockets) {
    const auto state = netstat_state_name(s.table, s.state);
    if (!state) continue;
    const char* proto = proc_net_proto(s.table);
    json o = {
        {"proto", proto},
        {"id", s.inode},
        {"state", *state},
        {"local", {{"address", s.local_address}, {"port", s.local_port}}},
        {"remote", {{"address", s.remote_address}, {"port", s.remote_port}}},
        {"recv_q", s.rx_queue},
        {"send_q", s.tx_queue},
        {"uid", s.uid},
        {"owner", nullptr},
    };
    if (in.owners && s.inode != 0) {
      if (auto it = in.owners->by_inode.find(s.inode); it != in.owners->by_inode.end())
        o["owner"] = {{"pid", it->second.pid}, {"uid", s.uid}, {"program", it->second.program}};
    }
    if (proc_net_is_tcp(s.table)) {
      const json* info = nullptr;
      if (s.inode != 0 && in.tcp_info_by_inode) {
        if (auto it = in.tcp_info_by_inode->find(s.inode); it != in.tcp_info_by_inode->end()) info = &it->second;
      } else if (s.inode == 0 && in.tcp_info_by_key) {
        auto key = socket_key(proto, s.local_address, s.local_port, s.remote_address, s.remote_port);
        if (auto it = in.tcp_info_by_key->find(key); it != in.tcp_info_by_key->end()) info = &it->second;
      }
      if (info) o["tcp_info"] = *info;
    }
    sockets.push_back(std::move(o));
  }
  return {
      {"schema", kNetstatSchemaV2},
      {"host", {{"name", "system"}, {"kind", "system"}, {"address", ""}, {"link", in.kernel}, {"pid", 0}}},
      {"sockets", std::move(sockets)},
      {"counters", in.counters.is_object() ? in.counters : json::object()},
  };
}

SystemRead read_system_snapshot(const SystemReadOptions& o) {
  SystemRead out;
  SystemSnapshotInput in;
  const std::string net = o.proc_root + "/net/";
  for (ProcNetTable t : {ProcNetTable::tcp, ProcNetTable::tcp6, ProcNetTable::udp, ProcNetTable::udp6}) {
    const std::string path = net + proc_net_proto(t);
    auto text = slurp(path);
    if (!text) {
      const int e = errno;
      // No IPv6 in this kernel: net-tools shows IPv4 alone, silently.
      if (is_v6(t) && e == ENOENT) continue;
      throw SystemSocketsError(fmt::format("cannot read {}: {}{}", path, std::strerror(e),
                                           e == ENOENT ? fmt::format(" (is {} mounted?)", o.proc_root) : ""));
    }
    auto parsed = parse_proc_net(*text, t);
    if (parsed.malformed)
      out.warnings.push_back(
          fmt::format("{}: {} malformed line{} skipped", path, parsed.malformed, parsed.malformed == 1 ? "" : "s"));
    for (auto& s : parsed.sockets) in.sockets.push_back(std::move(s));
  }

  OwnerScan owners;
  if (o.owners) {
    owners = scan_socket_owners(o.proc_root);
    in.owners = &owners;
    if (!owners.error.empty()) {
      out.warnings.push_back(fmt::format("no PID/Program names: {}", owners.error));
    } else if (owners.denied) {
      out.warnings.push_back(
          fmt::format("not all processes could be identified: no permission to read the descriptors of {} process{}, "
                      "whose sockets show '-' (only root sees them all)",
                      owners.denied, owners.denied == 1 ? "" : "es"));
    }
  }

  std::map<std::uint64_t, json> by_inode;
  std::map<std::string, json> by_key;
  if (o.tcp_info) {
    auto diag = sock_diag_tcp();
    if (!diag) {
      out.warnings.push_back(fmt::format("no TCP internals: NETLINK_SOCK_DIAG: {}", errc_message(diag.error())));
    } else {
      for (const auto& t : diag.value()) {
        auto info = kernel_tcp_info_json(t.info);
        if (!info) continue;
        if (t.inode != 0) {
          by_inode[t.inode] = std::move(*info);
        } else {
          by_key[socket_key(t.ipv6 ? "tcp6" : "tcp", t.local_address, t.local_port, t.remote_address, t.remote_port)] =
              std::move(*info);
        }
      }
    }
    in.tcp_info_by_inode = &by_inode;
    in.tcp_info_by_key = &by_key;
  }

  // The counters are a convenience (-s): their absence is no error.
  in.counters = proc_net_counters(slurp(net + "snmp").value_or(""), slurp(net + "netstat").value_or(""));
  if (auto release = slurp(o.proc_root + "/sys/kernel/osrelease")) {
    while (!release->empty() && (release->back() == '\n' || release->back() == ' ')) release->pop_back();
    in.kernel = "Linux " + *release;
  }
  out.snapshot = system_snapshot(in);
  return out;
}

}  // namespace weft
