// TcpLayer: the socket table and the user calls (RFC 9293 §3.10.1-§3.10.6).
#include "tcp/tcp.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace weft {

using tcp::TcpState;

namespace {
SipKey derive(const SipKey& k, std::uint8_t tweak) {
  SipKey out = k;
  for (auto& b : out) b = static_cast<std::uint8_t>(b ^ tweak);
  return out;
}
}  // namespace

TcpLayer::TcpLayer(IpSender& ip, PortTableConfig ports, TcpConfig cfg, SipKey secret)
    : ip_(ip), cfg_(cfg), secret_(secret), ports_(ports), conns_(derive(secret, 0x36)) {}

TcpLayer::~TcpLayer() = default;

// The slot's TCB, if it is this id's: a stale id (an older generation of
// the slot) finds nothing.
tcp::Tcb* TcpLayer::get(SocketId s) {
  const SocketSlot slot = socket_slot(s);
  Tcb* t = slot < sockets_.size() ? sockets_[slot].get() : nullptr;
  return t && t->id == s && !t->retired ? t : nullptr;
}
const tcp::Tcb* TcpLayer::get(SocketId s) const {
  const SocketSlot slot = socket_slot(s);
  const Tcb* t = slot < sockets_.size() ? sockets_[slot].get() : nullptr;
  return t && t->id == s && !t->retired ? t : nullptr;
}

// The closed-socket rule (tcp.hpp): a socket the user closed is not the
// user's any more, even while it finishes as an orphan.
tcp::Tcb* TcpLayer::user(SocketId s) {
  Tcb* t = get(s);
  return t && !t->user_closed ? t : nullptr;
}
const tcp::Tcb* TcpLayer::user(SocketId s) const {
  const Tcb* t = get(s);
  return t && !t->user_closed ? t : nullptr;
}

tcp::Tcb& TcpLayer::create() {
  const SocketId id = ids_.take(sockets_);
  auto& slot = sockets_[socket_slot(id)];
  slot = std::make_unique<Tcb>(cfg_.rto);
  slot->id = id;
  ++live_;
  return *slot;
}

void TcpLayer::retire(Tcb& t) {
  assert(depth_ > 0 && "retire() outside an Entry would never be reclaimed");
  if (t.retired) return;
  const SocketId id = t.id;
  if (t.in_index) conns_.erase(t.tuple);
  t.in_index = false;
  if (t.port_bound) ports_.release(id);
  t.port_bound = false;
  if (t.state == TcpState::established || t.state == TcpState::close_wait) --counters_.curr_estab;
  timers_.cancel(id);
  if (t.parent) detach_child(t);
  // A listener's unaccepted children go with it.
  std::vector<SocketId> children = t.syn_queue;
  children.insert(children.end(), t.accept_queue.begin(), t.accept_queue.end());
  t.syn_queue.clear();
  t.accept_queue.clear();
  t.retired = true;
  graveyard_.push_back(id);
  --live_;
  for (SocketId c : children)
    if (Tcb* ct = get(c)) {
      ct->parent.reset();
      ct->user_closed = true;
      retire(*ct);
    }
}

void TcpLayer::reclaim() {
  // Freeing runs destructors only: nothing here retires more.
  for (SocketId id : graveyard_) {
    if (on_reclaim_) on_reclaim_(id);
    sockets_[socket_slot(id)].reset();
    ids_.give(id);  // the id is stale from now on
  }
  graveyard_.clear();
}

void TcpLayer::set_state(Tcb& t, TcpState s, Instant) {
  const bool was = t.state == TcpState::established || t.state == TcpState::close_wait;
  const bool is = s == TcpState::established || s == TcpState::close_wait;
  if (was && !is) --counters_.curr_estab;
  if (!was && is) ++counters_.curr_estab;
  t.state = s;
}

SeqNum TcpLayer::make_isn(const FourTuple& tuple, Instant now) const {
  if (cfg_.iss_for_tests) return SeqNum{*cfg_.iss_for_tests};
  // RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey),
  // M a timer ticking every 4 microseconds.
  const std::uint32_t la = tuple.local.addr.value(), ra = tuple.remote.addr.value();
  const std::uint16_t lp = tuple.local.port.value(), rp = tuple.remote.port.value();
  const std::array<std::uint8_t, 12> b{std::uint8_t(la >> 24), std::uint8_t(la >> 16), std::uint8_t(la >> 8),
                                       std::uint8_t(la),       std::uint8_t(lp >> 8),  std::uint8_t(lp),
                                       std::uint8_t(ra >> 24), std::uint8_t(ra >> 16), std::uint8_t(ra >> 8),
                                       std::uint8_t(ra),       std::uint8_t(rp >> 8),  std::uint8_t(rp)};
  const auto f = static_cast<std::uint32_t>(siphash24(derive(secret_, 0x5a), b));
  const auto m = static_cast<std::uint32_t>(now.time_since_epoch().count() / 4000);
  return SeqNum{f + m};
}

std::uint32_t TcpLayer::ts_now(const Tcb& t, Instant now) const {
  // A 1 ms timestamp clock (RFC 7323 §5.4 allows 1 ms to 1 s per tick),
  // offset per connection so that TSval says nothing about uptime.
  return static_cast<std::uint32_t>(
             std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count()) +
         t.ts_offset;
}

// Per-connection state common to both opens: buffers, congestion control.
void TcpLayer::init_connection(Tcb& t, Instant now) {
  const std::size_t snd = snd_limit(t);
  const std::size_t rcv = std::max(t.opt.rcvbuf ? t.opt.rcvbuf : cfg_.rcvbuf, kMinBuffer);
  // Window scale: the smallest shift that lets the buffer be advertised.
  t.rcv_wscale = 0;
  if (cfg_.window_scaling)
    while (t.rcv_wscale < tcp::kMaxWindowShift && (rcv >> t.rcv_wscale) > tcp::kMaxWindowField) ++t.rcv_wscale;
  t.rcv_buf = rcv;
  t.data = std::make_unique<Tcb::Data>(snd, rcv);
  const std::size_t mtu = ip_.mtu_for(t.tuple.remote.addr);
  t.rcv_mss = static_cast<std::uint32_t>(
      std::min<std::size_t>(mtu > tcp::kIpTcpHeaders ? mtu - tcp::kIpTcpHeaders : tcp::kDefaultMss, tcp::kMaxMss));
  // TCP_MAXSEG: the MSS announced is the user's cap when lower, and the MSS
  // sent with follows (apply_syn_options takes the lesser of the peer's and
  // this), as Linux's user_mss clamps both (tcp_connect_init, tcp_openreq_init).
  if (t.opt.user_mss) t.rcv_mss = std::min(t.rcv_mss, t.opt.user_mss);
  t.mss = std::min<std::uint32_t>(tcp::kDefaultMss, t.rcv_mss);
  t.cc = tcp::make_newreno(t.mss);
  const std::array<std::uint8_t, 12> b{std::uint8_t(t.tuple.local.addr.value()),
                                       std::uint8_t(t.tuple.remote.addr.value()),
                                       std::uint8_t(t.tuple.local.port.value()),
                                       std::uint8_t(t.tuple.remote.port.value() >> 8),
                                       std::uint8_t(t.tuple.remote.addr.value() >> 8),
                                       std::uint8_t(t.tuple.remote.addr.value() >> 16),
                                       std::uint8_t(t.tuple.remote.addr.value() >> 24),
                                       std::uint8_t(t.tuple.local.port.value() >> 8),
                                       std::uint8_t(t.tuple.remote.port.value()),
                                       0,
                                       0,
                                       0};
  t.ts_offset = static_cast<std::uint32_t>(siphash24(derive(secret_, 0x71), b));
  t.last_rcv = now;
  t.last_progress = now;
}

// The send sequence variables start at the ISS (RFC 9293 §3.4), and so does
// everything compared with them in loss recovery: RFC 6582 §3.2 step 1,
// "recover" is initialised to the ISS (held here, like SND.MAX, one past,
// so the first fast retransmit passes step 2's check), and the RFC 6675
// scoreboard keeps only what lies above SND.UNA. Sequence numbers compare
// modulo 2^32, meaningfully only within 2^31 of each other: either left at
// 0 would compare backwards for an ISS in the upper half of the space.
void TcpLayer::init_send_seq(Tcb& t, SeqNum iss) {
  t.iss = iss;
  t.snd_una = iss;
  t.snd_nxt = iss;
  t.snd_max = iss;
  t.snd_buf_seq = iss + 1;
  t.recover = iss;
  t.ecn_recover = iss;
  t.data->sb.reset(iss);
}

// ------------------------------------------------------------ socket API

SocketId TcpLayer::open() { return create().id; }

Status TcpLayer::bind(SocketId id, Endpoint local) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  if (t->bound || t->state != TcpState::closed) return std::errc::invalid_argument;
  if (!local.addr.is_any() && !ip_.is_local_address(local.addr)) return std::errc::address_not_available;
  auto port = ports_.bind(BindRequest{id, local.addr, local.port, t->opt.reuse_addr});
  if (!port) return port.error();
  t->bound = Endpoint{local.addr, *port};
  t->port_bound = true;
  return ok_status();
}

Status TcpLayer::listen(SocketId id, std::size_t backlog) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  if (t->state == TcpState::listen) {
    t->backlog = std::clamp<std::size_t>(backlog, 1, cfg_.max_backlog);
    return ok_status();
  }
  if (t->state != TcpState::closed || !t->tuple.remote.port.is_zero() || t->reset) return std::errc::invalid_argument;
  if (!t->bound) {
    auto port = ports_.bind(BindRequest{id, Ipv4Addr::any(), Port{0}, t->opt.reuse_addr});
    if (!port) return port.error();
    t->bound = Endpoint{Ipv4Addr::any(), *port};
    t->port_bound = true;
  }
  if (auto st = ports_.listen(id); !st) return st.error();
  t->backlog = std::clamp<std::size_t>(backlog, 1, cfg_.max_backlog);
  t->state = TcpState::listen;
  return ok_status();
}

Result<Accepted> TcpLayer::accept(SocketId id) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  if (t->state != TcpState::listen) return std::errc::invalid_argument;
  if (t->accept_queue.empty()) return std::errc::resource_unavailable_try_again;
  const SocketId c = t->accept_queue.front();
  t->accept_queue.erase(t->accept_queue.begin());
  Tcb* ct = get(c);
  ct->parent.reset();
  return Accepted{c, ct->tuple.remote};
}

std::size_t TcpLayer::pending_accepts(SocketId id) const {
  const Tcb* t = user(id);
  return t && t->state == TcpState::listen ? t->accept_queue.size() : 0;
}

Status TcpLayer::connect(SocketId id, Endpoint remote, Instant now) {
  const Entry entry(*this);
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  if (remote.port.is_zero() || remote.addr.is_any() || remote.addr.is_broadcast() || remote.addr.is_multicast())
    return std::errc::invalid_argument;
  if (t->state == TcpState::closed && t->connect_failed) {
    // Linux: after a failed connect the socket is CLOSED and connect() may
    // be called again. An error not yet read is reported by this call
    // instead (Linux's __inet_stream_connect returns it too); the next
    // one starts over. The new attempt starts from a fresh TCB (no RTO
    // backoff, buffers or sequence numbers of the old one); only the
    // user's options and binding carry over.
    if (t->pending_error) {
      const auto e = *t->pending_error;
      t->pending_error.reset();
      return e;
    }
    Tcb fresh(cfg_.rto);
    fresh.id = t->id;
    fresh.opt = t->opt;
    fresh.bound = t->bound;
    fresh.port_bound = t->port_bound;
    *t = std::move(fresh);
  }
  switch (t->state) {
    case TcpState::closed:
      break;
    case TcpState::listen:
      return std::errc::invalid_argument;
    case TcpState::syn_sent:
    case TcpState::syn_received:
      return std::errc::connection_already_in_progress;
    case TcpState::established:
    case TcpState::fin_wait_1:
    case TcpState::fin_wait_2:
    case TcpState::close_wait:
    case TcpState::closing:
    case TcpState::last_ack:
    case TcpState::time_wait:
      return std::errc::already_connected;
  }
  if (!t->tuple.remote.port.is_zero() || t->reset)
    return std::errc::invalid_argument;  // a finished connection is not reused
  // No route: refused now, as Linux's ip_route_connect does, not 127 s of
  // SYN retransmissions later as a timeout.
  if (!ip_.has_route(remote.addr)) return std::errc::network_unreachable;
  const Ipv4Addr local_addr = t->bound && !t->bound->addr.is_any() ? t->bound->addr : ip_.source_for(remote.addr);
  if (!t->bound) {
    auto port = ports_.bind_ephemeral_for(id, local_addr, remote, [&](Port p) {
      return conns_.find(FourTuple{{local_addr, p}, remote}) == nullptr;
    });
    if (!port) return port.error();
    t->bound = Endpoint{Ipv4Addr::any(), *port};
    t->port_bound = true;
  }
  FourTuple tuple{{local_addr, t->bound->port}, remote};
  if (conns_.find(tuple) != nullptr) return std::errc::address_in_use;
  conns_.insert(tuple, socket_slot(id));  // before any other bind_ephemeral_for (PortTable's contract)
  t->in_index = true;
  t->tuple = tuple;
  init_connection(*t, now);
  init_send_seq(*t, make_isn(tuple, now));
  set_state(*t, TcpState::syn_sent, now);
  ++counters_.active_opens;
  send_syn(*t, now);
  arm_rtx(*t, now);
  rearm(*t);
  return ok_status();
}

std::size_t TcpLayer::send_room(SocketId id) const {
  const Tcb* t = user(id);
  if (!t || t->pending_error || t->reset || t->fin_queued || !t->data) return 0;
  if (t->state != TcpState::established && t->state != TcpState::close_wait) return 0;
  return snd_room(*t);
}

std::size_t TcpLayer::snd_limit(const Tcb& t) const {
  return std::max(t.opt.sndbuf ? t.opt.sndbuf : cfg_.sndbuf, kMinBuffer);
}

std::size_t TcpLayer::snd_room(const Tcb& t) const {
  if (!t.data) return 0;
  const std::size_t limit = std::min(snd_limit(t), t.data->snd.capacity());
  const std::size_t queued = t.data->snd.size();
  std::size_t room = limit > queued ? limit - queued : 0;
  if (t.opt.notsent_lowat) {
    const std::size_t unsent = t.snd_unsent();
    room = std::min<std::size_t>(room, unsent < t.opt.notsent_lowat ? t.opt.notsent_lowat - unsent : 0);
  }
  return room;
}

Status TcpLayer::shutdown(SocketId id, Shutdown how, Instant now) {
  const Entry entry(*this);
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  if (t->state == TcpState::listen || (t->state == TcpState::closed && t->tuple.remote.port.is_zero()) ||
      t->state == TcpState::syn_sent)
    return std::errc::not_connected;
  if (how == Shutdown::read || how == Shutdown::both) {
    t->rd_shut = true;
    if (t->data) t->data->rcv.consume(t->data->rcv.size());
  }
  if (how == Shutdown::write || how == Shutdown::both) {
    // RFC 9293 §3.10.4 CLOSE: queue the FIN behind the data.
    if (!t->fin_queued && !t->reset) {
      switch (t->state) {
        case TcpState::syn_received:
        case TcpState::established:
          t->fin_queued = true;
          set_state(*t, TcpState::fin_wait_1, now);
          break;
        case TcpState::close_wait:
          t->fin_queued = true;
          set_state(*t, TcpState::last_ack, now);
          break;
        case TcpState::closed:
        case TcpState::listen:
        case TcpState::syn_sent:
        case TcpState::fin_wait_1:
        case TcpState::fin_wait_2:
        case TcpState::closing:
        case TcpState::last_ack:
        case TcpState::time_wait:
          break;
      }
      if (t->state != TcpState::syn_received) output(*t, now);
    }
  }
  notify(*t);
  rearm(*t);
  return ok_status();
}

Status TcpLayer::close(SocketId id, Instant now) {
  const Entry entry(*this);
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  const bool unread = t->data && !t->data->rcv.empty();
  const bool linger0 = t->opt.linger && *t->opt.linger == Duration::zero();
  if (t->state == TcpState::listen) {
    // Connections nobody will accept are reset, as Linux's inet_csk_listen_stop does.
    for (const auto* q : {&t->syn_queue, &t->accept_queue})
      for (SocketId c : *q)
        if (Tcb* ct = get(c)) send_rst_for(*ct, now);
  }
  switch (t->state) {
    case TcpState::closed:
    case TcpState::listen:
    case TcpState::syn_sent:
      retire(*t);
      return ok_status();
    case TcpState::time_wait:
      t->user_closed = true;
      return ok_status();
    case TcpState::syn_received:
    case TcpState::established:
    case TcpState::fin_wait_1:
    case TcpState::fin_wait_2:
    case TcpState::close_wait:
    case TcpState::closing:
    case TcpState::last_ack:
      break;
  }
  if (unread || linger0) {
    // RFC 2525 §2.17 / RFC 9293 §3.10.4: discarding unread data must be
    // signalled with RST, not a FIN the peer would take for success.
    return abort(id, now);
  }
  t->user_closed = true;
  t->rd_shut = true;
  if (!t->fin_queued) {
    t->user_closed = false;  // let shutdown() run its checks
    (void)shutdown(id, Shutdown::write,
                   now);  // only fails when nothing may be sent (not synchronized): then there is no FIN to queue
    t->user_closed = true;
  }
  rearm(*t);
  return ok_status();
}

Status TcpLayer::abort(SocketId id, Instant now) {
  const Entry entry(*this);
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  // RFC 9293 §3.10.5 ABORT: RST in the synchronized states and SYN-RECEIVED.
  switch (t->state) {
    case TcpState::syn_received:
    case TcpState::established:
    case TcpState::fin_wait_1:
    case TcpState::fin_wait_2:
    case TcpState::close_wait:
      if (!t->reset) send_rst_for(*t, now);
      break;
    case TcpState::closed:
    case TcpState::listen:
    case TcpState::syn_sent:
    case TcpState::closing:
    case TcpState::last_ack:
    case TcpState::time_wait:
      break;
  }
  if (t->state == TcpState::syn_sent || t->state == TcpState::syn_received) ++counters_.attempt_fails;
  retire(*t);
  return ok_status();
}

std::optional<std::errc> TcpLayer::take_error(SocketId id) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  auto e = t->pending_error;
  t->pending_error.reset();
  return e;
}

// ---------------------------------------------------------------- options

Status TcpLayer::set_rcvbuf(SocketId id, std::size_t bytes) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  if (bytes == 0) return std::errc::invalid_argument;
  t->opt.rcvbuf = bytes;
  return ok_status();
}
Status TcpLayer::set_sndbuf(SocketId id, std::size_t bytes) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  if (bytes == 0) return std::errc::invalid_argument;
  t->opt.sndbuf = bytes;
  // Growing raises the ring's limit now; shrinking does too when what is
  // queued fits, else process_ack() finishes it as the queue drains
  // (snd_room() counts against the new size meanwhile).
  const std::size_t limit = snd_limit(*t);
  if (t->data && t->data->snd.capacity() != limit && t->data->snd.size() <= limit)
    (void)t->data->snd.resize(limit);  // cannot fail: size() <= limit was checked
  notify(*t);                          // writability may have changed either way
  return ok_status();
}
Status TcpLayer::set_nodelay(SocketId id, bool on, Instant now) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  t->opt.nodelay = on;
  if (on && t->data) {
    // What Nagle held goes now, and what TCP_CORK holds goes once: tcp(7),
    // "setting this option forces an explicit flush of pending output,
    // even if TCP_CORK is currently set".
    output(*t, now, Push::push);
    rearm(*t);
  }
  return ok_status();
}
Status TcpLayer::set_cork(SocketId id, bool on, Instant now) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  const bool was = t->opt.cork;
  t->opt.cork = on;
  if (was && !on && t->data) {
    output(*t, now);  // uncorked: what was held goes, Nagle permitting
    rearm(*t);
  }
  return ok_status();
}
Status TcpLayer::set_notsent_lowat(SocketId id, std::uint32_t bytes) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  t->opt.notsent_lowat = bytes;
  notify(*t);
  return ok_status();
}
Status TcpLayer::set_inq(SocketId id, bool on) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  t->opt.inq = on;
  return ok_status();
}
Status TcpLayer::set_maxseg(SocketId id, std::uint32_t mss) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  if (mss != 0 && (mss < kMinUserMss || mss > kMaxUserMss)) return std::errc::invalid_argument;
  t->opt.user_mss = mss;
  return ok_status();
}
std::optional<tcp::SocketOptions> TcpLayer::options(SocketId id) const {
  const Tcb* t = user(id);
  if (!t) return std::nullopt;
  return t->opt;
}
std::size_t TcpLayer::readable(SocketId id) const {
  const Tcb* t = user(id);
  return t && t->state != TcpState::listen && t->data ? t->data->rcv.size() : 0;
}
Status TcpLayer::set_keepalive(SocketId id, bool on, Duration idle, Duration interval, unsigned count, Instant now) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  if (idle < Duration::zero() || idle > kMaxKeepIdle || interval < Duration::zero() || interval > kMaxKeepIdle ||
      count > kMaxKeepCount)
    return std::errc::invalid_argument;
  t->opt.keepalive = on;
  t->opt.keep_idle = idle;
  t->opt.keep_interval = interval;
  t->opt.keep_count = count;
  arm_keepalive(*t, now);
  rearm(*t);
  return ok_status();
}
Status TcpLayer::set_linger(SocketId id, std::optional<Duration> linger) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  if (linger && *linger < Duration::zero()) return std::errc::invalid_argument;
  t->opt.linger = linger;
  return ok_status();
}
Status TcpLayer::set_reuse_addr(SocketId id, bool on) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  t->opt.reuse_addr = on;
  return ok_status();
}
Status TcpLayer::set_user_timeout(SocketId id, Duration d) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  if (d < Duration::zero()) return std::errc::invalid_argument;
  t->opt.user_timeout = d;
  return ok_status();
}
Status TcpLayer::set_ecn(SocketId id, bool on) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  if (t->state != TcpState::closed && t->state != TcpState::listen) return std::errc::already_connected;
  t->opt.ecn = on;
  return ok_status();
}
Status TcpLayer::set_syn_retries(SocketId id, unsigned n) {
  Tcb* t = user(id);
  if (!t) return std::errc::bad_file_descriptor;
  if (n == 0 || n > kMaxSynRetries) return std::errc::invalid_argument;
  t->opt.syn_retries = n;
  return ok_status();
}

// ----------------------------------------------------- readiness and info

std::uint32_t TcpLayer::events(SocketId id) const {
  const Tcb* t = user(id);
  if (!t) return 0;
  std::uint32_t ev = 0;
  if (t->pending_error) ev |= tcp_event::error | tcp_event::readable;
  if (t->state == TcpState::listen) {
    if (!t->accept_queue.empty()) ev |= tcp_event::readable;
    return ev;
  }
  if ((t->data && !t->data->rcv.empty()) || t->fin_received || t->rd_shut || t->reset) ev |= tcp_event::readable;
  if ((t->state == TcpState::established || t->state == TcpState::close_wait) && !t->fin_queued && snd_room(*t) > 0)
    ev |= tcp_event::writable;
  if (t->reset || (t->state == TcpState::closed && !t->tuple.remote.port.is_zero()))
    ev |= tcp_event::hup | tcp_event::writable;
  if (t->fin_received && t->fin_queued) ev |= tcp_event::hup;
  return ev;
}

std::optional<TcpInfo> TcpLayer::info(SocketId id) const {
  const Tcb* t = get(id);
  if (!t) return std::nullopt;
  TcpInfo i;
  i.id = id;
  i.state = t->state;
  if (!t->tuple.remote.port.is_zero()) {
    i.local = t->tuple.local;
    i.remote = t->tuple.remote;
  } else if (t->bound) {
    i.local = *t->bound;
  }
  if (t->data) {
    i.recv_queue = t->data->rcv.size();
    i.send_queue = t->snd_queued();
    i.unsent = t->snd_unsent();
    i.rcv_wnd = static_cast<std::uint32_t>(rcv_space(*t));
  }
  if (t->state == TcpState::listen) {
    // As Linux reports listeners (inet_diag, /proc/net/tcp): Recv-Q is the
    // accept queue's length, Send-Q the backlog.
    i.recv_queue = t->accept_queue.size();
    i.send_queue = t->backlog;
  }
  i.srtt = t->rto.srtt().value_or(Duration::zero());
  i.rttvar = t->rto.rttvar();
  i.rto = t->rto.rto();
  if (t->cc) {
    i.cwnd = t->cc->cwnd();
    i.ssthresh = t->cc->ssthresh();
  }
  i.snd_wnd = t->snd_wnd;
  i.mss = t->mss;
  i.rcv_mss = t->rcv_mss;
  i.user_mss = t->opt.user_mss;
  if (t->state != TcpState::listen && t->state != TcpState::closed) i.in_flight = t->flight_size();
  i.rto_backoffs = t->rto.backoffs();
  i.consecutive_rtos = t->rtx_count;
  i.probes = t->persist_backoff + t->keep_probes;
  i.in_recovery = t->recovery != tcp::Recovery::none;
  i.bytes_acked = t->bytes_acked;
  i.retransmits = t->retransmits;
  i.bytes_in = t->bytes_in;
  i.bytes_out = t->bytes_out;
  i.sack = t->sack_ok;
  i.timestamps = t->ts_ok;
  i.ecn = t->ecn_ok;
  i.snd_wscale = t->snd_wscale;
  i.rcv_wscale = t->rcv_wscale;
  return i;
}

void TcpLayer::for_each_socket(const std::function<void(const TcpInfo&)>& f) const {
  for (const auto& t : sockets_)
    if (t && !t->retired) f(*info(t->id));  // retired ones are gone already
}

std::optional<Endpoint> TcpLayer::local_endpoint(SocketId id) const {
  const Tcb* t = user(id);
  if (!t) return std::nullopt;
  if (!t->tuple.remote.port.is_zero()) return t->tuple.local;
  return t->bound;
}
std::optional<Endpoint> TcpLayer::remote_endpoint(SocketId id) const {
  const Tcb* t = user(id);
  if (!t || t->tuple.remote.port.is_zero()) return std::nullopt;
  return t->tuple.remote;
}

// ------------------------------------------------------- connection ends

void TcpLayer::connection_done(Tcb& t, std::optional<std::errc> err, Instant now) {
  if (err) {
    t.pending_error = err;
    if (*err == std::errc::connection_reset) t.reset = true;
  }
  if (t.state == TcpState::syn_sent || t.state == TcpState::syn_received) {
    if (err) ++counters_.attempt_fails;
    if (err && !t.parent) t.connect_failed = true;
  } else if ((t.state == TcpState::established || t.state == TcpState::close_wait) &&
             (err == std::errc::connection_reset || err == std::errc::broken_pipe)) {  // reset (EPIPE: in CLOSE-WAIT)
    ++counters_.estab_resets;
  }
  set_state(t, TcpState::closed, now);
  t.rtx_at.reset();
  t.delack_at.reset();
  t.persist_at.reset();
  t.keepalive_at.reset();
  t.timewait_at.reset();
  t.cork_at.reset();
  // The 4-tuple is free again at once (no TIME-WAIT after a reset or abort).
  if (t.in_index) {
    conns_.erase(t.tuple);
    t.in_index = false;
  }
  if (t.user_closed || t.parent) {
    retire(t);
    return;
  }
  if (t.data) t.data->snd.consume(t.data->snd.size());
  rearm(t);
  notify(t);
}

void TcpLayer::enter_time_wait(Tcb& t, Instant now) {
  set_state(t, TcpState::time_wait, now);
  t.rtx_at.reset();
  t.persist_at.reset();
  t.keepalive_at.reset();
  t.delack_at.reset();
  t.cork_at.reset();
  t.timewait_at = deadline_after(now, 2 * cfg_.msl);
  // TIME-WAIT keeps only what it needs to answer a retransmitted FIN.
  if (t.data && t.data->rcv.empty()) {
    t.snd_buf_seq = t.data_end();
    t.data.reset();
    t.cc.reset();
  }
  rearm(t);
  notify(t);
}

}  // namespace weft
