// The Linux kernel's own sockets as a netstat snapshot, so that
// `weft netstat --system` prints them with the same formatter, flags and
// JSON as a weft host's (docs/netstat-json.md, schema weft-netstat/2).
//
// Where the data comes from, as net-tools `netstat` gets it:
//   - the sockets: /proc/net/tcp, tcp6, udp, udp6 (parse_proc_net);
//   - who owns them: the "socket:[INODE]" links under /proc/PID/fd
//     (scan_socket_owners), named like net-tools names them;
//   - the counters of -s: /proc/net/snmp and /proc/net/netstat;
//   - the TCP internals of --info: NETLINK_SOCK_DIAG with INET_DIAG_INFO,
//     the way `ss -i` gets them (netstat/sock_diag.hpp).
//
// Everything here but read_system_snapshot() is a pure function of text or
// of a directory tree given by its root, so that the unit tests can feed
// captured /proc samples and a fake /proc. read_system_snapshot() does the
// reading (and, with tcp_info, the netlink query).
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace weft {

// The four tables, and the protocol name net-tools prints for each.
enum class ProcNetTable { tcp, tcp6, udp, udp6 };
const char* proc_net_proto(ProcNetTable t);  // "tcp", "tcp6", "udp", "udp6"
bool proc_net_is_tcp(ProcNetTable t);

// One line of a /proc/net/{tcp,tcp6,udp,udp6} table.
struct ProcNetSocket {
  ProcNetTable table = ProcNetTable::tcp;
  // Numeric text from inet_ntop: dotted quad, or IPv6 in its compressed
  // form (an IPv4-mapped address as "::ffff:192.0.2.1").
  std::string local_address, remote_address;
  std::uint16_t local_port = 0, remote_port = 0;
  unsigned state = 0;  // the kernel's TCP state code, 1 (ESTABLISHED) .. 11 (CLOSING); UDP uses 1 and 7
  std::uint64_t tx_queue = 0, rx_queue = 0;  // Send-Q and Recv-Q, as the kernel prints them
  std::uint32_t uid = 0;                     // the socket's user
  std::uint64_t inode = 0;                   // 0 when no file holds it (TIME_WAIT, SYN_RECV, accept queue)
};

struct ProcNetParse {
  std::vector<ProcNetSocket> sockets;  // in the file's order
  std::size_t malformed = 0;           // lines skipped because they did not parse
};

// Parses one table's text, the header line included. Addresses are
// printed by the kernel as the raw 32-bit words of the address in the
// machine's byte order ("%08X"), so the text is decoded for the byte order
// of the machine running this code, which is the kernel that wrote it.
// Lines that do not parse (or whose address length does not fit `table`)
// are counted in `malformed` and skipped, as net-tools warns and skips.
ProcNetParse parse_proc_net(std::string_view text, ProcNetTable table);

// net-tools' state column for a kernel state code: TCP codes 1-11 by
// their names (ESTABLISHED ... CLOSING); UDP: 1 is "ESTABLISHED" (a
// connected socket), 7 is "" (unconnected). nullopt for a code net-tools
// has no name for (the kernel does not list such sockets today).
std::optional<std::string> netstat_state_name(ProcNetTable table, unsigned code);

// net-tools' program name from the contents of /proc/PID/cmdline: only
// the first 511 bytes are read, argv[0] is what comes before the first
// NUL, and it is cut to its last path component only when it starts with
// '/' ("/usr/bin/python3" → "python3", "build/weft" stays). An empty
// command line (a zombie, a kernel thread) gives "".
std::string netstat_program_name(std::string_view cmdline);

struct SocketOwner {
  std::uint32_t pid = 0;
  std::string program;  // netstat_program_name() of its cmdline
};

struct OwnerScan {
  std::map<std::uint64_t, SocketOwner> by_inode;
  // Processes whose fd directory could not be opened for lack of
  // permission (EACCES): their sockets show no owner. Processes that
  // exited during the scan are not counted.
  std::size_t denied = 0;
  // Set when `proc_root` itself could not be listed (e.g. /proc is not
  // mounted): "cannot list /proc: No such file or directory". Then
  // by_inode is empty.
  std::string error;
};

// Which process holds each socket inode: every /PID/fd/N link under
// `proc_root` that reads "socket:[INODE]" (or the old "[0000]:INODE").
// PIDs are visited in increasing order and the first holder of an inode
// wins, as net-tools does (a socket shared after fork() shows under the
// lowest PID). Never throws for a missing or unreadable entry.
OwnerScan scan_socket_owners(const std::string& proc_root);

// The counters of `netstat -s` from /proc/net/snmp and /proc/net/netstat
// text, as snapshot counter groups: group "ip", "icmp", "tcp", "udp".
// A Linux MIB counter whose meaning matches a weft counter takes weft's
// name (Tcp ActiveOpens → tcp.active_opens, so -s prints net-tools'
// phrase for it); every other keeps its Linux name in its group, TcpExt
// counters in "tcp". Negative values (Tcp MaxConn -1: "no limit") and
// sections other than Ip, Icmp, Tcp, Udp and TcpExt are left out.
nlohmann::json proc_net_counters(std::string_view snmp, std::string_view netstat);

// The snapshot's tcp_info object for a kernel socket, from the bytes of
// an INET_DIAG_INFO attribute (struct tcp_info, <linux/tcp.h>). The
// kernel sends as many bytes as it knows; fields past the end are taken
// as absent. Units follow weft's: cwnd = tcpi_snd_cwnd segments ×
// tcpi_snd_mss bytes, ssthresh likewise (2147483647 while the kernel's is
// "infinite"), bytes_out = tcpi_bytes_sent, bytes_acked =
// tcpi_bytes_acked, bytes_in = tcpi_bytes_received, retransmits =
// tcpi_total_retrans, snd_wnd = tcpi_snd_wnd (0 from a kernel too old
// to report it), rcv_wnd = tcpi_rcv_wnd (the field after tcpi_snd_wnd)
// where the kernel reports it and tcpi_rcv_space otherwise. nullopt when
// `raw` is too short to hold even tcpi_total_retrans.
std::optional<nlohmann::json> kernel_tcp_info_json(std::span<const std::uint8_t> raw);

// What system_snapshot() assembles.
struct SystemSnapshotInput {
  std::vector<ProcNetSocket> sockets;
  const OwnerScan* owners = nullptr;  // null: no owner lookup (every owner null)
  // tcp_info objects, by inode, and by key (socket_key()) for sockets
  // without an inode. Null: no tcp_info members.
  const std::map<std::uint64_t, nlohmann::json>* tcp_info_by_inode = nullptr;
  const std::map<std::string, nlohmann::json>* tcp_info_by_key = nullptr;
  nlohmann::json counters = nlohmann::json::object();
  std::string kernel = "Linux";  // host.link: free text for people
};

// "tcp 127.0.0.1:80 192.0.2.1:5000": the protocol and both endpoints,
// which name a TCP socket uniquely where the inode cannot (0).
std::string socket_key(std::string_view proto, std::string_view local_address, std::uint16_t local_port,
                       std::string_view remote_address, std::uint16_t remote_port);

// The weft-netstat/2 document for the kernel: host {"name": "system",
// "kind": "system", "address": "", "link": input.kernel, "pid": 0}; one
// socket per input socket (proto, id = inode, net-tools' state name,
// local, remote, recv_q, send_q, uid, owner, tcp_info); the counters as
// given. Sockets whose state code has no net-tools name are left out.
nlohmann::json system_snapshot(const SystemSnapshotInput& input);

// A failure that leaves no system section to show: /proc/net/tcp or
// /proc/net/udp missing or unreadable. what() is one line, e.g.
// "cannot read /proc/net/tcp: No such file or directory (is /proc mounted?)".
struct SystemSocketsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct SystemReadOptions {
  std::string proc_root = "/proc";
  bool owners = true;     // scan PID fds (for -p; cheap enough to always do)
  bool tcp_info = false;  // ask NETLINK_SOCK_DIAG for every TCP socket's tcp_info
};

struct SystemRead {
  nlohmann::json snapshot;
  // Problems that leave the snapshot usable but incomplete, one line each
  // and without a program prefix: fds nobody may read, malformed lines,
  // a failed netlink query.
  std::vector<std::string> warnings;
};

// Reads the four tables, the counters, the owners and (if asked) tcp_info
// under `o.proc_root`, and builds system_snapshot(). tcp6 and udp6 may be
// missing (a kernel without IPv6), as net-tools allows; the counter files
// may be missing too (no counters then). Throws SystemSocketsError when
// tcp or udp cannot be read.
SystemRead read_system_snapshot(const SystemReadOptions& o);

}  // namespace weft
