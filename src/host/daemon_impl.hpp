// The host daemon's insides (host/daemon.hpp), shared by the files that
// hold its jobs:
//   daemon.cpp           setup (control socket, descriptor limit), the
//                        loop, memory give-back, SIGTERM
//   daemon_control.cpp   the control server: accept, validate, dispatch,
//                        responses; who may act on a socket
//   daemon_stream.cpp    the TCP socketpair: filler, both pump directions,
//                        accepts; close(2) of every kind
//   daemon_datagram.cpp  the UDP and ICMP socketpairs: datagram framing
//   daemon_snapshot.cpp  the netstat snapshot (build_snapshot, a pure
//                        function, daemon_snapshot.hpp, of what the daemon
//                        gathers)
// and a socket's kinds, one variant, in daemon_sockets.hpp. Private to the
// daemon: nothing else includes it.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/control.hpp"
#include "host/daemon.hpp"
#include "host/daemon_snapshot.hpp"
#include "host/daemon_sockets.hpp"
#include "host/event_loop.hpp"
#include "host/runtime_dir.hpp"

namespace weft {

namespace daemon_detail {

// "what: strerror(errno)", for setup's one-line errors.
std::runtime_error sys_error(const std::string& what);

// Event-loop keys: the high 32 bits say what the low 32 name.
enum Tag : std::uint64_t { kListen = 3, kClient = 4, kSock = 5 };
inline std::uint64_t tag(Tag t, std::uint32_t id) { return (std::uint64_t{t} << 32) | id; }

// Bytes waiting in a socket's receive queue (for a UNIX stream or seqpacket
// socket, the sum of what is queued); 0 for no descriptor. Declared with
// ClientEnd (daemon_sockets.hpp), its first user.

// The program as net-tools netstat names it (daemon_control.cpp).
std::string program_name(pid_t pid);

inline constexpr std::size_t kPairBuffer = 256 * 1024;  // each socketpair direction
inline constexpr std::size_t kFillChunk = 1024;         // see Impl::fill()
inline constexpr std::size_t kIoChunk = 64 * 1024;

}  // namespace daemon_detail

struct Daemon::Impl {
  using Request = control::Request;
  using Response = control::Response;
  using SockKind = control::SockKind;

  struct Client {
    std::uint32_t id = 0;
    int fd = -1;
    pid_t pid = 0;
    uid_t uid = 0;
    std::string program;
    bool greeted = false;
    std::vector<std::uint32_t> handles;  // sockets it owns (may hold closed ones)
    struct Out {
      std::string bytes;
      int fd = -1;  // passed with SCM_RIGHTS, closed once sent
    };
    std::deque<Out> out;  // responses the client has not taken yet
  };

  Host& host;
  DaemonConfig cfg;
  DirFd run_dir, host_dir;  // RUNTIME and RUNTIME/NAME, checked (open_control_socket)
  std::string socket_path;
  int listen_fd = -1;
  EventLoop loop;
  ino_t sock_ino = 0;
  std::uint32_t next_client = 1;
  std::uint32_t next_handle = 1;
  std::uint16_t next_ident = 1;
  std::unordered_map<std::uint32_t, Client> clients;
  std::unordered_map<std::uint32_t, Sock> socks;
  std::unordered_map<SocketId, std::uint32_t> tcp_sid, udp_sid;
  std::unordered_map<std::uint16_t, std::uint32_t> icmp_ident;
  std::vector<std::uint8_t> buf = std::vector<std::uint8_t>(daemon_detail::kIoChunk + sizeof(control::DgramHeader));
  DaemonCounters counters;
  Instant now{};

  Impl(Host& h, DaemonConfig c) : host(h), cfg(std::move(c)) {}
  ~Impl();

  // ------------------------------------------------- daemon.cpp: setup, loop
  void open_control_socket();
  // Each socket costs two descriptors here (its end and the duplicate of
  // the client's) and a third while its descriptor waits to be taken by
  // its client; the margin covers the clients, the link and a capture.
  static constexpr rlim_t kFdMargin = 256;
  static rlim_t fds_needed(std::size_t sockets) { return static_cast<rlim_t>(sockets) * 3 + kFdMargin; }
  void raise_fd_limit(std::vector<std::string>& notes);
  void epoll_add(int fd, std::uint32_t events, std::uint64_t data);
  Status run(const EventLoopHooks& hooks);
  void on_event(std::uint64_t key, std::uint32_t events);
  void shutdown_all();

  // Giving memory back (daemon.cpp). A daemon runs for weeks while
  // connections come and go, each with buffers of whatever size it grew
  // to; glibc keeps freed memory inside its heap and returns only its top
  // by itself. A second after sockets close (their buffers are freed when
  // the close completes) or a netstat snapshot (a JSON tree of every
  // socket), malloc_trim() returns every free page, at most once a second
  // whatever the churn. (Measured over kill -9 cycles: RSS grew 1.8 MiB in
  // 400 with glibc's defaults and 0.8 MiB with the fixed mmap threshold of
  // Daemon::start; at 1,000 cycles, with both, about 1.1 MiB, which is a
  // minute's worth of TIME-WAIT connections and goes once they expire.)
  std::optional<Instant> trim_at;
  void want_trim() {
    if (!trim_at) trim_at = now + std::chrono::seconds(1);
  }
  void trim_if_due();
  // The loop's wait, shortened to the daemon's own deadlines.
  int own_timeout_ms(int timeout) const;

  // ------------------------------------------ daemon_control.cpp: clients
  void accept_clients();
  void client_gone(std::uint32_t cid, bool by_error);
  void drop_responses(Client& c);
  // Out of descriptors (daemon_control.cpp). When accept4() or
  // socketpair() fails for want of descriptors, the daemon stops taking new
  // control connections and new TCP connections (they wait in the kernel's
  // and the listener's queues: nothing is reset) and takes them again as
  // soon as it frees a descriptor, or after a second in case one was freed
  // elsewhere. A level-triggered listener left in the epoll set would wake
  // the loop for nothing, forever.
  bool accept_paused = false;
  std::optional<Instant> resume_at;
  std::vector<std::uint32_t> accept_waiting;  // listeners with connections not yet handed over
  void pause_accepting();
  // Only notes it: the resumption runs from the loop (resume_if_due), never
  // inside the close that freed the descriptor. Handing connections over
  // from there would create sockets for a client being torn down, or for a
  // listener being closed, while their caller walks them.
  bool freed = false;
  void descriptors_freed() { freed = true; }
  void resume_accepting();
  void resume_if_due();
  void send_response(Client& c, const Response& r, int pass_fd = -1, std::string extra = {});
  void flush_client(Client& c);
  // A client that does not take its responses stops being read once
  // kMaxQueued are waiting: each may hold a descriptor, and none of it may
  // grow without bound. EPOLLHUP is reported whatever the interest, so
  // its death is still seen.
  static constexpr std::size_t kMaxQueued = 64;
  static bool reading(const Client& c) { return c.out.size() < kMaxQueued; }
  void set_client_interest(Client& c);
  void on_client(std::uint32_t cid, std::uint32_t events);
  void protocol_error(Client& c, const char* why);
  // Who may act on a socket (today: the one client whose control
  // connection made it). The one place that says so, kept behind this
  // because serving ordinary programs changes the rule.
  static bool may_act(const Client& c, const Sock& s);
  Sock* owned(Client& c, std::uint32_t h);
  bool handle_request(Client& c, const Request& rq);
  Status set_option(Sock& s, int level, int name, std::int64_t v);
  Result<std::int64_t> get_option(Sock& s, int level, int name);
  bool op_socket(Client& c, const Request& rq, Response& r);

  // One path for every new socket (daemon_control.cpp): the pair, its ends'
  // flags and buffers, then the socket in the table, the loop and its
  // client's list.
  struct NewPair {
    int dfd = -1, cfd = -1;
  };
  static Result<NewPair> open_pair(SockKind kind);
  Sock new_sock(NewPair p, std::uint32_t client);
  Sock& adopt(Sock&& s, Client& c);

  // ------------------------------------------ daemon_stream.cpp: TCP pairs
  void fill(Sock& s, StreamPair& t);
  void unfill(Sock& s, StreamPair& t);
  void update_interest(Sock& s);
  void end_stream(Sock& s, StreamPair& t, std::optional<std::errc> err);
  void tcp_to_client(Sock& s, StreamPair& t);
  void client_to_tcp(Sock& s, StreamPair& t);
  void push_accepts(Sock& l, Listener& ls);
  void on_tcp_event(SocketId sid);
  void on_sock(std::uint32_t h, std::uint32_t events);
  void close_sock(std::uint32_t h, bool reset_all);

  // ------------------------------------- daemon_datagram.cpp: UDP and ICMP
  void send_dgrams(Sock& s);
  void report_dgram_error(Sock& s, std::errc e);
  void deliver_dgrams(Sock& s, DatagramPair& u);
  void on_echo_reply(const EchoReply& e);

  // ------------------------------------------ daemon_snapshot.cpp: netstat
  SnapshotInput snapshot_input() const;
  nlohmann::json snapshot() const { return build_snapshot(snapshot_input()); }
};

}  // namespace weft
