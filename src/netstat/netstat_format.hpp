// `weft netstat` output, as pure functions of a snapshot.
//
// A weft host (the daemon) answers a netstat query with one JSON document,
// schema "weft-netstat/1"; the kernel's sockets (`weft netstat --system`,
// netstat/system_sockets.hpp) come as a "weft-netstat/2" document, which
// adds IPv6 (docs/netstat-json.md). These functions check either and turn
// it into the text net-tools `netstat` users expect: the socket table
// (-t -u -l -a -n -p -e), the table with one line of TCP internals per
// connection (--info, after `ss -ti`) and the counters (-s). They do no
// I/O of their own; the only outside reads are the local name databases
// (getservbyport_r for port names, getpwuid_r for user names, the hosts
// file for host names) when the options ask for names rather than numbers.
//
// Layout notes, for anyone comparing with net-tools byte by byte: the
// columns have net-tools' widths (Proto 4, Recv-Q/Send-Q 6, addresses 23,
// State 11, User 10, Inode 10, PID/Program 19 characters), but trailing
// spaces are cut from every line, so that scripts and diffs do not trip
// over invisible padding.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "base/counters.hpp"

namespace weft {

// The schema a weft host writes, and the one of snapshots that may hold
// IPv6 sockets (proto "tcp6"/"udp6"; otherwise the same), which the
// kernel's snapshot is always written with (docs/netstat-json.md,
// Compatibility). This module reads both.
inline constexpr const char* kNetstatSchema = "weft-netstat/1";
inline constexpr const char* kNetstatSchemaV2 = "weft-netstat/2";

// What to show, with net-tools' meanings.
struct NetstatOptions {
  bool tcp = false;        // -t: TCP sockets (with neither -t nor -u: both)
  bool udp = false;        // -u: UDP sockets
  bool listening = false;  // -l: only servers (sockets with no peer)
  bool all = false;        // -a: servers and connected sockets; overrides -l
  bool numeric = false;    // -n: numeric addresses, ports and user ids
  bool programs = false;   // -p: PID/Program name column
  bool extend = false;     // -e: User and Inode (weft socket id) columns
  bool info = false;       // --info: a line of TCP internals under each TCP row
  // Without -n, host names come from this file alone (never DNS, which
  // could hang); "" means no host names at all.
  std::string hosts_file = "/etc/hosts";
};

// A snapshot that does not follow "weft-netstat/1": a missing or
// mistyped field, an unknown schema, protocol or TCP state. what() names
// the field, e.g. "sockets[2].local.port: 70000 is not a port (0-65535)".
struct NetstatSnapshotError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct NetstatEndpoint {
  std::string address;  // dotted quad (tcp, udp) or IPv6 text (tcp6, udp6), checked
  std::uint16_t port = 0;
};

struct NetstatOwner {
  std::uint32_t pid = 0;
  std::uint32_t uid = 0;
  std::string program;
};

// Mirrors TcpInfo (src/tcp/tcp.hpp); units as there: times in
// microseconds, cwnd, ssthresh and windows in bytes.
struct NetstatTcpInfo {
  std::uint64_t srtt_us = 0, rttvar_us = 0, rto_us = 0;
  std::uint64_t cwnd = 0, ssthresh = 0, snd_wnd = 0, rcv_wnd = 0, mss = 0;
  std::uint64_t retransmits = 0, bytes_in = 0, bytes_out = 0;
  std::optional<std::uint64_t> bytes_acked;  // optional in the schema (kernel sockets carry it)
  bool sack = false, timestamps = false;
  std::uint64_t snd_wscale = 0, rcv_wscale = 0;
};

struct NetstatSocket {
  std::string proto;  // "tcp" or "udp"; in weft-netstat/2 also "tcp6" or "udp6"
  std::uint64_t id = 0;
  std::string state;  // net-tools name; "" for an unconnected UDP socket
  NetstatEndpoint local;
  std::optional<NetstatEndpoint> remote;
  std::uint64_t recv_q = 0, send_q = 0;
  std::optional<std::uint32_t> uid;  // the socket's user, when the snapshot gives it (-e prefers it)
  std::optional<NetstatOwner> owner;
  std::optional<NetstatTcpInfo> tcp_info;
};

struct NetstatHost {
  std::string name, address, link;
  std::string kind;  // "system" for the kernel's snapshot; "" (absent) for a weft host
  std::uint64_t pid = 0;
};

struct NetstatCounterGroup {
  std::string name;  // "ip", "tcp", "link", ...
  CounterList counters;
};

struct NetstatSnapshot {
  std::string schema;  // "weft-netstat/1" or "weft-netstat/2"
  NetstatHost host;
  std::vector<NetstatSocket> sockets;         // in the daemon's order
  std::vector<NetstatCounterGroup> counters;  // groups and names sorted by name
};

// Checks `j` against its schema ("weft-netstat/1" or "weft-netstat/2")
// and returns its contents. Fields the schema does not name are ignored
// (adding fields is a compatible change). Throws NetstatSnapshotError;
// never lets a JSON library exception out.
NetstatSnapshot parse_netstat_snapshot(const nlohmann::json& j);

// A socket without a peer, by net-tools' rule: TCP with remote null or
// remote port 0, UDP with remote null or the unspecified remote address
// (0.0.0.0, ::). These are the "servers" of -l: TCP listeners (and any
// bound, unconnected socket) and unconnected UDP sockets.
bool netstat_is_server(const NetstatSocket& s);

// Whether -t/-u and -l/-a select `s` (-t: tcp and tcp6, -u: udp and udp6).
bool netstat_selects(const NetstatSocket& s, const NetstatOptions& o);

// The socket table, net-tools `netstat` style: the "Active Internet
// connections (...)" line, the column line, then one row per selected
// socket, in net-tools' order: tcp, tcp6, udp, udp6, each in the
// snapshot's order. Every line ends in '\n'. With o.info, as format_info.
// Throws NetstatSnapshotError.
std::string format_table(const nlohmann::json& snapshot, const NetstatOptions& o);

// format_table (o.info or not), with each TCP row that carries tcp_info
// followed by one line of its internals, indented 8 spaces, after `ss -ti`:
//   rto:201 rtt:1.2/0.3 mss:1432 cwnd:10 (14320 bytes) ssthresh:inf
//   snd_wnd:65535 rcv_wnd:262144 retrans:0 bytes_sent:0 bytes_received:0 sack ts wscale:7,7
// (one line; "bytes_acked:N" after bytes_sent when the snapshot has it). Times in milliseconds; cwnd and ssthresh in
// segments of `mss` (rounded down; "-" when mss is 0) with the bytes weft keeps in parentheses; ssthresh "inf" while it
// is still the initial 0x7fffffff; windows and byte counts in bytes; "sack"/"ts" only when negotiated. Throws
// NetstatSnapshotError.
std::string format_info(const nlohmann::json& snapshot, const NetstatOptions& o);

// The counters, `netstat -s` style: sections "Ip:", "Icmp:", "Tcp:",
// "Udp:", "TcpExt:" (TCP counters outside RFC 4022's MIB), then every
// other group as its own section, named after the group with its first
// letter capitalised ("Link:"). Counters with a netstat -s equivalent
// use its phrase ("    3 active connection openings"); the rest print as
// "    name: N". ICMP message types form net-tools' input/output
// histograms, which list only non-zero types. With -t and/or -u (o.tcp,
// o.udp) only the sections of those protocols print. Throws
// NetstatSnapshotError.
std::string format_stats(const nlohmann::json& snapshot, const NetstatOptions& o = {});

// The snapshot with only the sockets netstat_selects() keeps; everything
// else (schema, host, counters, unknown fields) unchanged. For --json.
// Throws NetstatSnapshotError.
nlohmann::json filter_snapshot(const nlohmann::json& snapshot, const NetstatOptions& o);

// The words of one line of a /proc or /etc table: runs of characters
// between spaces, tabs and carriage returns. They point into `line`.
std::vector<std::string_view> split_words(std::string_view line);

// The host name a hosts file (text in /etc/hosts format) gives `address`:
// the first name on the first line whose address is the same address
// (compared as addresses, so "::1" matches "0::1"), as the C library's
// files lookup answers. nullopt when no line has it or `address` is not
// an address.
std::optional<std::string> hosts_file_name(std::string_view hosts_text, std::string_view address);

// How net-tools prints an address in the Local/Foreign columns. With
// `numeric` (-n): IPv4 dotted; IPv6 as inet_ntop writes it, except that
// an IPv4-mapped address shows as its IPv4 part ("::ffff:127.0.0.1" →
// "127.0.0.1"). Without: 0.0.0.0 stays "0.0.0.0", :: becomes "[::]", a
// mapped address shows as its IPv4 part, and any other address takes its
// name from `hosts_text` (hosts_file_name) or stays numeric.
std::string netstat_address_text(std::string_view address, bool numeric, std::string_view hosts_text);

}  // namespace weft
