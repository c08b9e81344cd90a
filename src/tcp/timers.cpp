// Timers (RFC 9293 §3.8; RFC 6298 retransmission; RFC 1122 §4.2.2.17
// keepalive; §4.2.3.2 delayed ACK; the persist timer of §3.8.6.1;
// TIME-WAIT's 2*MSL). Each socket keeps its deadlines; the layer's one
// TimerHeap holds each socket's earliest, so nothing scans all sockets.
#include <algorithm>

#include "tcp/tcp.hpp"

namespace weft {

using tcp::Recovery;
using tcp::TcpState;

void TcpLayer::rearm(Tcb& t) {
  std::optional<Instant> when;
  for (const auto& d : {t.rtx_at, t.delack_at, t.persist_at, t.keepalive_at, t.timewait_at, t.cork_at})
    if (d && (!when || *d < *when)) when = d;
  if (when)
    timers_.schedule(t.id, *when);
  else
    timers_.cancel(t.id);
}

void TcpLayer::poll(Instant now) {
  const Entry entry(*this);
  timers_.expire(now, [&](SocketId id) { on_timer(id, now); });
}

void TcpLayer::arm_rtx(Tcb& t, Instant now) { t.rtx_at = deadline_after(now, t.rto.rto()); }

Duration TcpLayer::keep_idle(const Tcb& t) const {
  return t.opt.keep_idle > Duration::zero() ? t.opt.keep_idle : cfg_.keep_idle;
}

void TcpLayer::arm_keepalive(Tcb& t, Instant now) {
  if (!t.opt.keepalive || !is_synchronized(t.state) || t.state == TcpState::time_wait) {
    t.keepalive_at.reset();
    return;
  }
  if (t.keep_probes == 0) t.keepalive_at = deadline_after(std::max(now, t.last_rcv), keep_idle(t));
}

bool TcpLayer::timed_out(const Tcb& t, Instant now) const {
  // TCP_USER_TIMEOUT when set (RFC 5482), else R2 as a retry count
  // (RFC 9293 §3.8.3, Linux's tcp_retries2).
  if (t.opt.user_timeout > Duration::zero()) return now - t.last_progress >= t.opt.user_timeout;
  const unsigned limit = t.state == TcpState::syn_sent
                             ? (t.opt.syn_retries ? t.opt.syn_retries : cfg_.syn_retries)
                             : (t.state == TcpState::syn_received ? cfg_.synack_retries : cfg_.retries2);
  return t.rtx_count >= limit;
}

void TcpLayer::on_timer(SocketId id, Instant now) {
  Tcb* t = get(id);
  if (!t) return;
  if (t->timewait_at && *t->timewait_at <= now) {
    // 2*MSL passed (or an orphan's FIN-WAIT-2 gave up): the connection is gone.
    t->timewait_at.reset();
    connection_done(*t, std::nullopt, now);
    return;
  }
  if (t->delack_at && *t->delack_at <= now) {
    t->delack_at.reset();
    ++counters_.delayed_acks;
    // No answer came to carry the ACK: not interactive after all (Linux's
    // tcp_delack_timer_handler leaves pingpong mode here too).
    t->interactive = false;
    send_ack(*t, now);
  }
  if (t->rtx_at && *t->rtx_at <= now) {
    t->rtx_at.reset();
    on_rtx_timeout(*t, now);
    if (t->retired) return;  // the connection ended (an orphan or a listener's child): nothing more to run
  }
  if (t->cork_at && *t->cork_at <= now) {
    // TCP_CORK's ceiling (tcp(7): "a 200 millisecond ceiling on the time
    // for which output is corked"): what was held goes now.
    t->cork_at.reset();
    output(*t, now, Push::push);
  }
  if (t->persist_at && *t->persist_at <= now) {
    t->persist_at.reset();
    on_persist(*t, now);
  }
  if (t->keepalive_at && *t->keepalive_at <= now) {
    t->keepalive_at.reset();
    on_keepalive(*t, now);
    if (t->retired) return;  // the connection ended (an orphan or a listener's child): nothing more to run
  }
  rearm(*t);
}

// The connection gave up on its peer (retransmissions, SYN retries,
// keepalive probes or the user timeout): RFC 1122 §4.2.3.5's R2 reached.
// The error reported is the last soft error if there was one (an ICMP
// unreachable, a send that failed), else ETIMEDOUT, as Linux's
// tcp_write_err() reports sk_err_soft.
void TcpLayer::time_out(Tcb& t, Instant now) {
  ++counters_.timeouts;
  connection_done(t, t.soft_error.value_or(std::errc::timed_out), now);
}

void TcpLayer::on_rtx_timeout(Tcb& t, Instant now) {
  ++counters_.rto_expired;
  switch (t.state) {
    case TcpState::syn_sent:
    case TcpState::syn_received:
      if (timed_out(t, now)) {
        time_out(t, now);
        return;
      }
      ++t.rtx_count;
      t.rto.backoff();
      t.syn_timed_out = true;
      ++counters_.retrans_segs;
      ++t.retransmits;
      send_syn(t, now);
      arm_rtx(t, now);
      return;
    case TcpState::established:
    case TcpState::fin_wait_1:
    case TcpState::fin_wait_2:
    case TcpState::close_wait:
    case TcpState::closing:
    case TcpState::last_ack:
      break;
    case TcpState::closed:
    case TcpState::listen:
    case TcpState::time_wait:
      return;
  }
  if (t.snd_una == t.snd_max || !t.data) return;
  if (timed_out(t, now)) {
    time_out(t, now);
    return;
  }
  // RFC 5681 §3.1 / RFC 6298 §5.5-5.6: collapse cwnd, back off, resend the
  // earliest unacknowledged segment and go back N from there.
  t.cc->on_rto(t.flight_size(), t.rtx_count == 0);
  t.rto.backoff();
  ++t.rtx_count;
  t.recovery = Recovery::none;
  t.dupacks = 0;
  t.limited_sent = 0;
  t.recover = t.snd_max;        // RFC 6582 §4: no fast retransmit for data sent before the timeout
  t.data->sb.reset(t.snd_una);  // forgetting SACK information is always safe
  t.rtt_seq.reset();
  t.snd_nxt = t.snd_una;
  (void)transmit(t, t.snd_una, t.mss, now);  // the byte count: the timer is rearmed whatever went
  arm_rtx(t, now);
}

void TcpLayer::on_persist(Tcb& t, Instant now) {
  if (!t.data || t.snd_una != t.snd_max || t.snd_nxt >= t.data_end()) return;
  const std::uint32_t usable = t.usable_window();
  const std::uint32_t avail = t.snd_avail();
  if (usable > 0) {
    // RFC 9293 §3.8.6.2.1's override timeout: send what the window allows.
    (void)transmit(t, t.snd_nxt, std::min({usable, avail, t.mss}),
                   now);  // the byte count: a probe that sends nothing is tried again at the next expiry
    return;
  }
  ++counters_.persist_probes;
  ++t.persist_backoff;
  send_probe(t, now);
  output(t, now);  // re-arms the persist timer with the longer backoff
}

void TcpLayer::on_keepalive(Tcb& t, Instant now) {
  if (!t.opt.keepalive || !is_synchronized(t.state) || t.state == TcpState::time_wait) return;
  const Duration interval = t.opt.keep_interval > Duration::zero() ? t.opt.keep_interval : cfg_.keep_interval;
  const unsigned count = t.opt.keep_count ? t.opt.keep_count : cfg_.keep_count;
  if (t.keep_probes == 0 && now - t.last_rcv < keep_idle(t)) {
    t.keepalive_at = deadline_after(t.last_rcv, keep_idle(t));
    return;
  }
  if (t.snd_una != t.snd_max) {
    // Data in flight: the retransmission timer watches the peer instead.
    t.keepalive_at = deadline_after(now, keep_idle(t));
    return;
  }
  if (t.keep_probes >= count) {
    time_out(t, now);
    return;
  }
  ++t.keep_probes;
  ++counters_.keepalive_probes;
  send_probe(t, now);
  t.keepalive_at = deadline_after(now, interval);
}

}  // namespace weft
