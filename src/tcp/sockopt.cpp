// Socket options for TCP as Linux has them: net/core/sock.c
// (sk_setsockopt, sk_getsockopt) and net/ipv4/tcp.c (do_tcp_setsockopt,
// do_tcp_getsockopt, tcp_get_info); the ranges are Linux's.
//
// <linux/tcp.h> and not <netinet/tcp.h>: the kernel's struct tcp_info is
// the one getsockopt(TCP_INFO) returns (glibc's copy stops short of the
// byte counters). The two headers cannot both be included.
#include "tcp/sockopt.hpp"

#include <linux/tcp.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>

namespace weft::tcp {

namespace {

constexpr std::errc kNoOption = std::errc::no_protocol_option;

// The number Linux gives each state in tcpi_state (include/net/tcp_states.h).
std::uint8_t linux_state(TcpState s) {
  switch (s) {
    case TcpState::established:
      return 1;
    case TcpState::syn_sent:
      return 2;
    case TcpState::syn_received:
      return 3;
    case TcpState::fin_wait_1:
      return 4;
    case TcpState::fin_wait_2:
      return 5;
    case TcpState::time_wait:
      return 6;
    case TcpState::closed:
      return 7;
    case TcpState::close_wait:
      return 8;
    case TcpState::last_ack:
      return 9;
    case TcpState::listen:
      return 10;
    case TcpState::closing:
      return 11;
  }
  return 7;
}

int clamp_int(std::uint64_t v) { return static_cast<int>(std::min<std::uint64_t>(v, std::numeric_limits<int>::max())); }

// Linux's sock_setsockopt for SO_SNDBUF / SO_RCVBUF: the value as an
// unsigned (so negative is huge) clamped to the sysctl maximum. What weft
// uses (at least 1 byte: 0 means "the default" to the layer).
std::size_t buffer_request(int v, int max) {
  const auto u = static_cast<std::uint32_t>(v);
  return std::max<std::size_t>(1, std::min<std::uint32_t>(u, static_cast<std::uint32_t>(max)));
}

// What Linux stores for a request of `set` bytes, and so reports.
int buffer_report(std::size_t set, int min) { return std::max(clamp_int(2 * static_cast<std::uint64_t>(set)), min); }

Status keepalive(TcpLayer& tcp, SocketId s, const SocketOptions& o, Instant now) {
  return tcp.set_keepalive(s, o.keepalive, o.keep_idle, o.keep_interval, o.keep_count, now);
}

std::int64_t seconds(Duration d) { return std::chrono::duration_cast<std::chrono::seconds>(d).count(); }

}  // namespace

Status set_socket_option(TcpLayer& tcp, SocketId s, int name, int v, Instant now) {
  const auto o = tcp.options(s);
  if (!o) return std::errc::bad_file_descriptor;
  switch (name) {
    case SO_SNDBUF:
      return tcp.set_sndbuf(s, buffer_request(v, kWmemMax));
    case SO_RCVBUF:
      return tcp.set_rcvbuf(s, buffer_request(v, kRmemMax));
    case SO_KEEPALIVE: {
      SocketOptions n = *o;
      n.keepalive = v != 0;
      return keepalive(tcp, s, n, now);
    }
    case SO_REUSEADDR:
      return tcp.set_reuse_addr(s, v != 0);
    default:
      return kNoOption;
  }
}

Status set_tcp_option(TcpLayer& tcp, SocketId s, int name, int v, Instant now) {
  const auto o = tcp.options(s);
  if (!o) return std::errc::bad_file_descriptor;
  switch (name) {
    case TCP_NODELAY:
      return tcp.set_nodelay(s, v != 0, now);
    case TCP_CORK:
      return tcp.set_cork(s, v != 0, now);
    case TCP_MAXSEG:
      // 0 clears it; otherwise TCP_MIN_MSS .. MAX_TCP_WINDOW.
      if (v < 0) return std::errc::invalid_argument;
      return tcp.set_maxseg(s, static_cast<std::uint32_t>(v));
    case TCP_KEEPIDLE:
    case TCP_KEEPINTVL: {
      // 1 .. MAX_TCP_KEEPIDLE / MAX_TCP_KEEPINTVL; each sets its own value
      // and keeps the others, and neither turns keepalive on.
      if (v < 1 || std::chrono::seconds(v) > TcpLayer::kMaxKeepIdle) return std::errc::invalid_argument;
      SocketOptions n = *o;
      (name == TCP_KEEPIDLE ? n.keep_idle : n.keep_interval) = std::chrono::seconds(v);
      return keepalive(tcp, s, n, now);
    }
    case TCP_KEEPCNT: {
      if (v < 1 || static_cast<unsigned>(v) > TcpLayer::kMaxKeepCount) return std::errc::invalid_argument;
      SocketOptions n = *o;
      n.keep_count = static_cast<unsigned>(v);
      return keepalive(tcp, s, n, now);
    }
    case TCP_USER_TIMEOUT:
      if (v < 0) return std::errc::invalid_argument;
      return tcp.set_user_timeout(s, std::chrono::milliseconds(v));
    case TCP_SYNCNT:
      if (v < 1 || static_cast<unsigned>(v) > TcpLayer::kMaxSynRetries) return std::errc::invalid_argument;
      return tcp.set_syn_retries(s, static_cast<unsigned>(v));
    case TCP_NOTSENT_LOWAT:
      // Linux stores any int as a u32 (a negative one is a mark too high to reach).
      return tcp.set_notsent_lowat(s, static_cast<std::uint32_t>(v));
    case TCP_INQ:
      if (v < 0 || v > 1) return std::errc::invalid_argument;
      return tcp.set_inq(s, v != 0);
    case kWeftTcpEcn:
      return tcp.set_ecn(s, v != 0);
    default:
      return kNoOption;
  }
}

Result<int> get_socket_option(TcpLayer& tcp, SocketId s, int name) {
  const auto o = tcp.options(s);
  const auto i = tcp.info(s);
  if (!o || !i) return std::errc::bad_file_descriptor;
  const TcpConfig& cfg = tcp.config();
  switch (name) {
    case SO_ERROR: {
      const auto e = tcp.take_error(s);
      return e ? static_cast<int>(*e) : 0;
    }
    case SO_SNDBUF:
      return o->sndbuf ? buffer_report(o->sndbuf, kSockMinSndbuf) : clamp_int(cfg.sndbuf);
    case SO_RCVBUF:
      return o->rcvbuf ? buffer_report(o->rcvbuf, kSockMinRcvbuf) : clamp_int(cfg.rcvbuf);
    case SO_KEEPALIVE:
      return o->keepalive ? 1 : 0;
    case SO_REUSEADDR:
      return o->reuse_addr ? 1 : 0;
    case SO_TYPE:
      return SOCK_STREAM;
    case SO_DOMAIN:
      return AF_INET;
    case SO_PROTOCOL:
      return IPPROTO_TCP;
    case SO_ACCEPTCONN:
      return i->state == TcpState::listen ? 1 : 0;
    default:
      return kNoOption;
  }
}

Result<int> get_tcp_option(TcpLayer& tcp, SocketId s, int name) {
  const auto o = tcp.options(s);
  const auto i = tcp.info(s);
  if (!o || !i) return std::errc::bad_file_descriptor;
  const TcpConfig& cfg = tcp.config();
  switch (name) {
    case TCP_NODELAY:
      return o->nodelay ? 1 : 0;
    case TCP_CORK:
      return o->cork ? 1 : 0;
    case TCP_MAXSEG:
      // The user's value while closed or listening, else the MSS in use
      // (tp->mss_cache; 536 before a connection, TCP_MSS_DEFAULT).
      if (o->user_mss && (i->state == TcpState::closed || i->state == TcpState::listen))
        return static_cast<int>(o->user_mss);
      return static_cast<int>(i->mss);
    case TCP_KEEPIDLE:
      return static_cast<int>(seconds(o->keep_idle > Duration::zero() ? o->keep_idle : cfg.keep_idle));
    case TCP_KEEPINTVL:
      return static_cast<int>(seconds(o->keep_interval > Duration::zero() ? o->keep_interval : cfg.keep_interval));
    case TCP_KEEPCNT:
      return static_cast<int>(o->keep_count ? o->keep_count : cfg.keep_count);
    case TCP_USER_TIMEOUT:
      return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(o->user_timeout).count());
    case TCP_SYNCNT:
      return static_cast<int>(o->syn_retries ? o->syn_retries : cfg.syn_retries);
    case TCP_NOTSENT_LOWAT:
      return static_cast<int>(o->notsent_lowat);
    case TCP_INQ:
      return o->inq ? 1 : 0;
    case kWeftTcpEcn:
      return o->ecn.value_or(cfg.ecn) ? 1 : 0;
    default:
      return kNoOption;
  }
}

std::size_t tcp_info_bytes(const TcpInfo& i, std::span<std::uint8_t> out) {
  // tcp_get_info(): times in microseconds, counts in segments, cwnd and
  // ssthresh in segments of snd_mss.
  tcp_info t{};
  const auto us = [](Duration d) {
    return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  };
  const std::uint32_t mss = std::max<std::uint32_t>(i.mss, 1);
  t.tcpi_state = linux_state(i.state);
  t.tcpi_ca_state = i.in_recovery ? TCP_CA_Recovery : (i.consecutive_rtos > 0 ? TCP_CA_Loss : TCP_CA_Open);
  t.tcpi_retransmits = static_cast<std::uint8_t>(std::min(i.consecutive_rtos, 255u));
  t.tcpi_probes = static_cast<std::uint8_t>(std::min(i.probes, 255u));
  t.tcpi_backoff = static_cast<std::uint8_t>(std::min(i.rto_backoffs, 255u));
  if (i.timestamps) t.tcpi_options |= TCPI_OPT_TIMESTAMPS;
  if (i.sack) t.tcpi_options |= TCPI_OPT_SACK;
  if (i.snd_wscale || i.rcv_wscale) {
    t.tcpi_options |= TCPI_OPT_WSCALE;
    t.tcpi_snd_wscale = i.snd_wscale & 0xf;
    t.tcpi_rcv_wscale = i.rcv_wscale & 0xf;
  }
  if (i.state != TcpState::listen) {
    t.tcpi_rto = us(i.rto);
    t.tcpi_snd_mss = i.mss;
    t.tcpi_rcv_mss = i.rcv_mss;
    t.tcpi_advmss = i.rcv_mss;
    t.tcpi_unacked = static_cast<std::uint32_t>((i.in_flight + mss - 1) / mss);
    t.tcpi_rtt = us(i.srtt);
    t.tcpi_rttvar = us(i.rttvar);
    t.tcpi_snd_cwnd = i.cwnd / mss;
    // Linux reports TCP_INFINITE_SSTHRESH (0x7fffffff) as is.
    t.tcpi_snd_ssthresh = i.ssthresh >= 0x7fffffffu ? 0x7fffffffu : i.ssthresh / mss;
    t.tcpi_total_retrans = static_cast<std::uint32_t>(i.retransmits);
    t.tcpi_bytes_acked = i.bytes_acked;
    t.tcpi_bytes_received = i.bytes_in;
    t.tcpi_bytes_sent = i.bytes_out;
    t.tcpi_notsent_bytes = static_cast<std::uint32_t>(i.unsent);
    t.tcpi_snd_wnd = i.snd_wnd;
    t.tcpi_rcv_space = i.rcv_wnd;
  } else {
    // A listener: tcpi_unacked is the accept queue, tcpi_sacked the backlog.
    t.tcpi_unacked = static_cast<std::uint32_t>(i.recv_queue);
    t.tcpi_sacked = static_cast<std::uint32_t>(i.send_queue);
  }
  const std::size_t n = std::min(out.size(), sizeof t);
  std::memcpy(out.data(), &t, n);
  return n;
}

Status set_option(TcpLayer& tcp, SocketId s, int level, int name, std::span<const std::uint8_t> value, Instant now) {
  if (level == SOL_SOCKET && name == SO_LINGER) {
    if (value.size() < sizeof(linger)) return std::errc::invalid_argument;
    linger l;
    std::memcpy(&l, value.data(), sizeof l);
    // A negative l_linger counts as 0 (Linux: `ling.l_linger < 0 ? 0 : ...`).
    return tcp.set_linger(
        s, l.l_onoff ? std::optional<Duration>(std::chrono::seconds(std::max(l.l_linger, 0))) : std::nullopt);
  }
  if (level != SOL_SOCKET && level != IPPROTO_TCP) return kNoOption;
  if (value.size() < sizeof(int)) return std::errc::invalid_argument;
  int v;
  std::memcpy(&v, value.data(), sizeof v);
  return level == SOL_SOCKET ? set_socket_option(tcp, s, name, v, now) : set_tcp_option(tcp, s, name, v, now);
}

Result<std::size_t> get_option(TcpLayer& tcp, SocketId s, int level, int name, std::span<std::uint8_t> out) {
  const auto o = tcp.options(s);
  if (!o) return std::errc::bad_file_descriptor;
  if (level == SOL_SOCKET && name == SO_LINGER) {
    linger l{};
    if (o->linger) {
      l.l_onoff = 1;
      l.l_linger = static_cast<int>(seconds(*o->linger));
    }
    const std::size_t n = std::min(out.size(), sizeof l);
    std::memcpy(out.data(), &l, n);
    return n;
  }
  if (level == IPPROTO_TCP && name == TCP_INFO) return tcp_info_bytes(*tcp.info(s), out);
  Result<int> v = level == SOL_SOCKET    ? get_socket_option(tcp, s, name)
                  : level == IPPROTO_TCP ? get_tcp_option(tcp, s, name)
                                         : Result<int>(kNoOption);
  if (!v) return v.error();
  const std::size_t n = std::min(out.size(), sizeof(int));
  std::memcpy(out.data(), &*v, n);
  return n;
}

}  // namespace weft::tcp
