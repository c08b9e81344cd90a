// Segment arrival (RFC 9293 §3.10.7), step by step as the RFC reads, with
// RFC 5961's defences, RFC 7323's PAWS and the ACK processing of RFC 5681,
// RFC 6582 (NewReno) and RFC 6675 (SACK loss recovery).
#include <algorithm>

#include "tcp/tcp.hpp"
#include "wire/ipv4.hpp"

namespace weft {

using tcp::Recovery;
using tcp::TcpState;
namespace flag = wire::tcp_flag;

// ------------------------------------------------------------ demux

void TcpLayer::input(Ipv4Addr src, Ipv4Addr dst, std::span<const std::uint8_t> segment, Instant now,
                     std::uint8_t ecn) {
  const Entry entry(*this);
  in_ecn_ = ecn & 3;
  auto v = wire::TcpView::parse(segment, src, dst, !ip_.checksum_offload());
  if (!v) {
    ++counters_.in_errs;
    if (v.error() == wire::ParseError::bad_checksum) ++counters_.bad_checksum;
    return;
  }
  ++counters_.in_segs;
  // RFC 1122 §4.2.3.10: TCP is unicast only.
  if (dst.is_broadcast() || dst.is_multicast() || src.is_broadcast() || src.is_multicast() || src.is_any()) {
    ++counters_.in_errs;
    return;
  }
  const FourTuple key{{dst, v->dst_port()}, {src, v->src_port()}};
  // 1. A connection on exactly this 4-tuple.
  if (const SocketSlot* idp = conns_.find(key)) {
    Tcb& t = *sockets_[*idp];
    const bool new_syn = v->has(flag::syn) && !v->has(flag::ack) && !v->has(flag::rst);
    if (!(t.state == TcpState::time_wait && new_syn)) {
      input_segment(t, *v, now);
      return;
    }
    // A SYN for a connection in TIME-WAIT may start a new incarnation when
    // it is provably newer (RFC 6191: a higher timestamp; RFC 1122
    // §4.2.2.13: without timestamps, a higher sequence number).
    const auto& ts = v->options().timestamps;
    const bool newer = (t.ts_ok && ts) ? static_cast<std::int32_t>(ts->first - t.ts_recent) > 0 : v->seq() > t.rcv_nxt;
    if (!newer) {
      input_segment(t, *v, now);
      return;
    }
    ++counters_.timewait_reused;
    connection_done(t, std::nullopt, now);  // frees the 4-tuple (and the socket if orphaned)
  }
  // 2. A listener on (dst, port), else (wildcard, port).
  if (auto lid = ports_.lookup(dst, v->dst_port())) {
    Tcb* l = get(*lid);
    if (l && l->state == TcpState::listen) {
      input_listen(*l, src, dst, *v, now);
      return;
    }
  }
  // 3. Nobody: RFC 9293 §3.10.7.1, "If the state is CLOSED ... a reset is sent".
  ++counters_.no_socket;
  send_reset_reply(src, dst, *v, now);
}

// --------------------------------------------------------- helpers

bool TcpLayer::acceptable(const Tcb& t, SeqNum seq, std::uint32_t len) const {
  // RFC 9293 §3.10.7.4, the four cases of the acceptance test.
  const std::uint32_t wnd = t.rcv_adv > t.rcv_nxt ? static_cast<std::uint32_t>(t.rcv_adv - t.rcv_nxt) : 0;
  if (len == 0) return wnd == 0 ? seq == t.rcv_nxt : SeqNum::in_window(seq, t.rcv_nxt, wnd);
  if (wnd == 0) return false;
  return SeqNum::in_window(seq, t.rcv_nxt, wnd) || SeqNum::in_window(seq + (len - 1), t.rcv_nxt, wnd);
}

void TcpLayer::send_challenge_ack(Tcb& t, Instant now) {
  // RFC 5961 §7: rate-limited, per socket here.
  if (now - t.challenge_window >= 1s) {
    t.challenge_window = now;
    t.challenges_in_window = 0;
  }
  if (t.challenges_in_window >= cfg_.challenge_acks_per_sec) {
    ++counters_.challenge_limited;
    return;
  }
  ++t.challenges_in_window;
  ++counters_.challenge_acks;
  send_ack(t, now);
}

void TcpLayer::apply_syn_options(Tcb& t, const wire::TcpOptions& o) {
  // RFC 9293 §3.7.1: send MSS is the peer's MSS option (536 without one),
  // never more than our own path allows.
  t.mss_base = std::min<std::uint32_t>(o.mss ? std::max<std::uint16_t>(*o.mss, 64) : 536, t.rcv_mss);
  // RFC 7323 §2.2: both sides must send window scale for either to use it.
  t.wscale_ok = cfg_.window_scaling && o.window_scale.has_value();
  if (t.wscale_ok) {
    t.snd_wscale = std::min<std::uint8_t>(*o.window_scale, 14);  // RFC 7323 §2.3
  } else {
    t.snd_wscale = 0;
    t.rcv_wscale = 0;
  }
  t.sack_ok = cfg_.sack && o.sack_permitted;
  t.ts_ok = cfg_.timestamps && o.timestamps.has_value();
  if (t.ts_ok) t.ts_recent = o.timestamps->first;
  t.mss = t.mss_base - (t.ts_ok ? 12 : 0);
  if (t.cc) t.cc->set_mss(t.mss);
}

void TcpLayer::hold_syn_text(Tcb& t, const wire::TcpView& seg) {
  // At most what the receive buffer could take; the peer retransmits the
  // rest, which the SYN-ACK does not acknowledge.
  const auto p = seg.payload();
  if (!t.data) return;
  const std::size_t n = std::min(p.size(), t.data->rcv.capacity());
  if (n > 0) t.data->syn_text.assign(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(n));
  // A FIN on the SYN is one of the "other controls" queued with the text
  // (RFC 9293 §3.10.7.2-3): held as an out-of-order FIN is, it takes
  // effect in the eighth step once the text before it is in, so the
  // reader gets the text, then end of stream. Only when all the text was
  // kept: otherwise the peer's retransmission brings both.
  if (seg.has(flag::fin) && n == p.size())
    t.data->ooo.hold_fin(seg.seq() + 1 + static_cast<std::uint32_t>(n));
}

void TcpLayer::update_window(Tcb& t, const wire::TcpView& seg) {
  // RFC 9293 §3.10.7.4 fifth, ESTABLISHED: update the send window only from
  // a segment at least as new as the one that last set it.
  if (t.snd_wl1 < seg.seq() || (t.snd_wl1 == seg.seq() && t.snd_wl2 <= seg.ack())) {
    t.snd_wnd = std::uint32_t{seg.window()} << t.snd_wscale;
    t.snd_wl1 = seg.seq();
    t.snd_wl2 = seg.ack();
    t.max_snd_wnd = std::max(t.max_snd_wnd, t.snd_wnd);
    if (t.snd_wnd > 0) t.persist_backoff = 0;
  }
}

void TcpLayer::take_rtt_sample(Tcb& t, const wire::TcpView& seg, SeqNum ack, Instant now) {
  const auto& ts = seg.options().timestamps;
  if (t.ts_ok && ts && ts->second != 0) {
    // RFC 7323 §4.1: the echoed timestamp ties the ACK to one transmission,
    // so even retransmitted segments give a valid sample.
    const std::uint32_t ms = ts_now(t, now) - ts->second;
    if (ms < 60000) t.rto.on_sample(std::chrono::milliseconds(ms));
    return;
  }
  if (t.rtt_seq && ack > *t.rtt_seq) {
    t.rto.on_sample(now - t.rtt_start);
    t.rtt_seq.reset();
  }
}

// ------------------------------------------------------- SEGMENT ARRIVES

void TcpLayer::input_segment(Tcb& t, const wire::TcpView& seg, Instant now) {
  t.last_rcv = now;
  t.keep_probes = 0;
  switch (t.state) {
    case TcpState::closed:
    case TcpState::listen:
      // Not in the index in these states; answer as for no connection.
      send_reset_reply(t.tuple.remote.addr, t.tuple.local.addr, seg, now);
      return;
    case TcpState::syn_sent:
      input_syn_sent(t, seg, now);
      if (!t.retired) rearm(t);  // (a refused orphan is retired, its timers gone)
      return;
    case TcpState::syn_received:
    case TcpState::established:
    case TcpState::fin_wait_1:
    case TcpState::fin_wait_2:
    case TcpState::close_wait:
    case TcpState::closing:
    case TcpState::last_ack:
    case TcpState::time_wait:
      break;
  }

  SeqNum seq = seg.seq();
  std::span<const std::uint8_t> payload = seg.payload();
  bool fin = seg.has(flag::fin);
  const std::uint32_t seg_len =
      static_cast<std::uint32_t>(payload.size()) + (seg.has(flag::syn) ? 1 : 0) + (fin ? 1 : 0);
  const auto& ts = seg.options().timestamps;

  // A retransmitted SYN for a half-open passive connection: the SYN-ACK was
  // lost; answer it again (RFC 9293 §3.10.7.4 treats it as a duplicate).
  if (t.state == TcpState::syn_received && seg.has(flag::syn) && !seg.has(flag::ack) && !seg.has(flag::rst) &&
      seq == t.irs) {
    // RFC 7323 §4.3: SEG.SEQ (IRS) <= Last.ACK.sent (IRS + 1) and the TSval
    // is newer, so TS.Recent takes it; the SYN-ACK then echoes the SYN that
    // is being answered, not the first one.
    if (t.ts_ok && ts && static_cast<std::int32_t>(ts->first - t.ts_recent) > 0) t.ts_recent = ts->first;
    send_syn(t, now);
    return;
  }

  // PAWS (RFC 7323 §5.3): a segment whose timestamp is older than TS.Recent
  // is an old duplicate; drop it and ACK (unless it is a RST).
  if (t.ts_ok && ts && !seg.has(flag::rst) && static_cast<std::int32_t>(ts->first - t.ts_recent) < 0) {
    ++counters_.paws_rejected;
    // RFC 2883 §4.3: a segment PAWS discards is a duplicate like any other,
    // and the ACK answering it reports it.
    if (t.sack_ok && t.data && !payload.empty())
      t.data->ooo.note_duplicate(seq, seq + static_cast<std::uint32_t>(payload.size()));
    send_ack(t, now);
    return;
  }

  // first, check sequence number
  bool zero_window_ack = false;
  if (!acceptable(t, seq, seg_len)) {
    // RFC 9293: with a zero window, valid ACKs (and RSTs) are still
    // processed; the text is dropped.
    const std::uint32_t wnd = t.rcv_adv > t.rcv_nxt ? static_cast<std::uint32_t>(t.rcv_adv - t.rcv_nxt) : 0;
    if (wnd == 0 && seq == t.rcv_nxt && seg_len > 0) {
      zero_window_ack = true;
    } else {
      if (seg.has(flag::rst)) return;
      // TIME-WAIT (RFC 9293 §3.10.7.4): "The only thing that can arrive in
      // this state is a retransmission of the remote FIN. Acknowledge it,
      // and restart the 2 MSL timeout." Its FIN (after its data, if any)
      // sits at RCV.NXT - 1, below the window: it fails the acceptance test
      // and is recognised here, before the plain ACK below.
      if (t.state == TcpState::time_wait && fin && seg.has(flag::ack) && !seg.has(flag::syn) &&
          seq + static_cast<std::uint32_t>(payload.size()) == t.rcv_nxt - 1) {
        t.timewait_at = deadline_after(now, 2 * cfg_.msl);
        send_ack(t, now);
        rearm(t);
        return;
      }
      // An old duplicate: report its part below RCV.NXT with a D-SACK
      // (RFC 2883 §4 rule 3: the duplicated bytes, not the whole segment).
      if (t.sack_ok && t.data && !payload.empty() && seq < t.rcv_nxt)
        t.data->ooo.note_duplicate(seq, std::min(seq + static_cast<std::uint32_t>(payload.size()), t.rcv_nxt));
      // In TIME-WAIT the answer is rate-limited (RFC 5961 §7; Linux's
      // tcp_timewait_state_process): nothing there may be made to talk
      // without bound.
      if (t.state == TcpState::time_wait)
        send_challenge_ack(t, now);
      else
        send_ack(t, now);
      return;
    }
  }
  // RFC 7323 §4.3: the timestamp to echo, taken below once the ACK has
  // been found acceptable. (R3 of §5.3 takes it here; a segment in the
  // window with a bogus ACK and a huge TSval would then poison TS.Recent
  // and PAWS would drop every later valid segment: RFC 5961 §5.2's blind
  // injection. Linux takes it after the ACK check too; docs/conformance.md.)
  const bool take_ts =
      t.ts_ok && ts && seq <= t.last_ack_sent && static_cast<std::int32_t>(ts->first - t.ts_recent) >= 0;

  // RFC 3168 §6.1.3: on an acceptable segment, the peer's CWR ends the
  // echo of an earlier CE, and a CE starts one: ECE on every ACK until the
  // peer says CWR. The ACK goes at once, so the sender hears of the
  // congestion within a round trip (as Linux's quick-ACK on CE).
  if (t.ecn_ok) {
    if (seg.has(flag::cwr)) t.ece_pending = false;
    if (in_ecn_ == wire::ecn::ce) {
      ++counters_.ce_received;
      t.ece_pending = true;
      t.ack_now = true;
    }
  }

  // second, check the RST bit (RFC 5961 §3.2: only an exact match resets;
  // one elsewhere in the window gets a challenge ACK)
  if (seg.has(flag::rst)) {
    if (seq != t.rcv_nxt) {
      send_challenge_ack(t, now);
      return;
    }
    switch (t.state) {
      case TcpState::syn_received:
        // Passive open: back to LISTEN, i.e. the child goes away quietly.
        connection_done(t, t.parent ? std::optional<std::errc>{} : std::errc::connection_refused, now);
        return;
      // RFC 9293 §3.10.7.4 second: "all segment queues should be flushed
      // ... enter the CLOSED state, delete the TCB"; which error the user
      // sees follows Linux's tcp_reset(): in CLOSE-WAIT the peer had
      // already closed, so what fails is writing (EPIPE); in every other
      // synchronized state, CLOSING and LAST-ACK included, ECONNRESET.
      case TcpState::close_wait:
        connection_done(t, std::errc::broken_pipe, now);
        return;
      case TcpState::established:
      case TcpState::fin_wait_1:
      case TcpState::fin_wait_2:
      case TcpState::closing:
      case TcpState::last_ack:
        connection_done(t, std::errc::connection_reset, now);
        return;
      case TcpState::time_wait:
        // The connection is over; nothing to report (Linux's TIME-WAIT
        // socket is gone from the user's view already).
        connection_done(t, std::nullopt, now);
        return;
      case TcpState::closed:
      case TcpState::listen:
      case TcpState::syn_sent:
        return;
    }
  }

  // third, check security (not used by weft)

  // fourth, check the SYN bit (RFC 5961 §4: a SYN in a synchronized state,
  // or any SYN here, gets a challenge ACK, never a reset)
  if (seg.has(flag::syn)) {
    send_challenge_ack(t, now);
    return;
  }

  // Trim the segment to the window (RFC 9293 §3.10.7.4: "only the new
  // parts are processed"). The trimmed part was received before: RFC 2883 §4 reports it as the
  // D-SACK (rule 3: exactly the duplicated bytes; §4.2: being the lowest,
  // it is the first duplicate part of the segment, the one reported). The
  // ACK goes at once so that the D-SACK describes the segment that just
  // arrived (rule 1); RFC 2883 itself leaves the timing of ACKs alone.
  bool dsack_noted = false;
  auto trim_front = [&] {
    if (!(seq < t.rcv_nxt)) return;
    const std::uint32_t skip = static_cast<std::uint32_t>(t.rcv_nxt - seq);
    if (t.sack_ok && t.data && !payload.empty() && !dsack_noted) {
      t.data->ooo.note_duplicate(seq, seq + std::min<std::uint32_t>(skip, static_cast<std::uint32_t>(payload.size())));
      t.ack_now = true;
      dsack_noted = true;
    }
    if (skip >= payload.size()) {
      if (fin && skip > payload.size()) fin = false;  // the FIN too was old
      payload = {};
    } else {
      payload = payload.subspan(skip);
    }
    seq = t.rcv_nxt;
  };
  trim_front();
  if (zero_window_ack) {
    payload = {};
    fin = false;
    t.ack_now = true;
  }
  {
    const std::uint32_t wnd = t.rcv_adv > t.rcv_nxt ? static_cast<std::uint32_t>(t.rcv_adv - t.rcv_nxt) : 0;
    const std::uint32_t room = wnd > static_cast<std::uint32_t>(seq - t.rcv_nxt) ? wnd - static_cast<std::uint32_t>(seq - t.rcv_nxt) : 0;
    if (payload.size() > room) {
      payload = payload.first(room);
      fin = false;
      t.ack_now = true;
    }
  }

  // fifth, check the ACK field
  if (!seg.has(flag::ack)) return;
  switch (t.state) {
    case TcpState::syn_received: {
      // "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state"
      if (!(t.snd_una < seg.ack() && seg.ack() <= t.snd_max)) {
        send_reset_reply(t.tuple.remote.addr, t.tuple.local.addr, seg, now);
        return;
      }
      if (t.parent) {
        Tcb* l = get(*t.parent);
        if (l && l->accept_queue.size() >= l->backlog) {
          // Accept queue full: ignore the ACK, the SYN-ACK is retransmitted
          // and the handshake completes once the application catches up
          // (Linux's behaviour without tcp_abort_on_overflow).
          ++counters_.listen_overflows;
          return;
        }
      }
      t.snd_una = t.iss + 1;
      if (t.rto.backoffs() == 0) t.rto.on_sample(now - t.syn_sent_at);
      if (t.syn_timed_out) {
        t.rto.reset_after_syn_timeout();
        t.cc->set_cwnd(t.mss);  // RFC 5681 §3.1: the SYN-ACK was lost, IW = 1 segment
      }
      t.rtx_at.reset();
      t.rtx_count = 0;
      t.snd_wnd = std::uint32_t{seg.window()} << t.snd_wscale;
      t.max_snd_wnd = std::max(t.max_snd_wnd, t.snd_wnd);
      t.snd_wl1 = seg.seq();
      t.snd_wl2 = seg.ack();
      set_state(t, TcpState::established, now);
      child_established(t, now);
      arm_keepalive(t, now);
      if (!process_ack(t, seg, now)) return;
      if (t.data && !t.data->syn_text.empty()) {
        // RFC 9293 §3.10.7.2 (LISTEN) and §3.10.7.3 (simultaneous open):
        // text that came on the SYN is queued "for processing later after
        // the ESTABLISHED state has been reached". Now it has: the text
        // goes before this segment's, which may repeat it (the SYN-ACK did
        // not acknowledge it), so this segment is trimmed again.
        const std::vector<std::uint8_t> text = std::move(t.data->syn_text);
        t.data->syn_text = {};
        process_text(t, t.rcv_nxt, text, false, now);
        trim_front();
      }
      break;
    }
    case TcpState::established:
    case TcpState::fin_wait_1:
    case TcpState::fin_wait_2:
    case TcpState::close_wait:
    case TcpState::closing:
      if (!process_ack(t, seg, now)) return;
      if (t.state == TcpState::fin_wait_1 && t.fin_acked()) {
        // FIN-WAIT-1: "if the FIN segment is now acknowledged, then enter FIN-WAIT-2"
        set_state(t, TcpState::fin_wait_2, now);
        t.rtx_at.reset();
        // Linux's tcp_fin_timeout: an orphan does not wait forever for the
        // peer's FIN.
        if (t.user_closed) t.timewait_at = deadline_after(now, 2 * cfg_.msl);
      }
      if (t.state == TcpState::closing && t.fin_acked()) {
        // CLOSING: "if the ACK acknowledges our FIN, then enter TIME-WAIT"
        enter_time_wait(t, now);
        return;
      }
      break;
    case TcpState::last_ack:
      if (!process_ack(t, seg, now)) return;
      // LAST-ACK: "if our FIN is now acknowledged, delete the TCB"
      if (t.fin_acked()) {
        connection_done(t, std::nullopt, now);
        return;
      }
      break;
    case TcpState::time_wait:
      // TIME-WAIT: the retransmitted FIN, the only segment expected, was
      // answered before the acceptance test. Anything else acceptable but a
      // bare ACK at RCV.NXT (a RST was handled above, a SYN in the fourth
      // step) gets an ACK, rate-limited, as Linux answers it: the peer
      // learns where this end stands.
      if (!(seg.seq() == t.rcv_nxt && seg_len == 0)) send_challenge_ack(t, now);
      return;
    case TcpState::closed:
    case TcpState::listen:
    case TcpState::syn_sent:
      return;
  }

  if (take_ts) t.ts_recent = ts->first;

  // sixth, check the URG bit (weft does not implement urgent data; the
  // pointer is ignored, RFC 6093 discourages its use)

  // seventh, process the segment text
  if (!payload.empty()) {
    switch (t.state) {
      case TcpState::established:
      case TcpState::fin_wait_1:
      case TcpState::fin_wait_2:
        if (t.user_closed) {
          // New data for a closed socket cannot be delivered: RST (RFC 9293
          // §3.10.4, as Linux does for an orphan receiving data).
          send_rst_for(t, now);
          connection_done(t, std::nullopt, now);
          return;
        }
        process_text(t, seq, payload, dsack_noted, now);
        break;
      case TcpState::close_wait:
      case TcpState::closing:
      case TcpState::last_ack:
      case TcpState::time_wait:
      case TcpState::closed:
      case TcpState::listen:
      case TcpState::syn_sent:
      case TcpState::syn_received:
        break;  // "This should not occur, since a FIN has been received"
    }
  }

  // eighth, check the FIN bit. The FIN takes effect once RCV.NXT reaches
  // it, i.e. every byte before it has arrived. One ahead of a gap is held
  // beside the out-of-order data and takes effect when the gap fills, which
  // may be by a segment with no FIN of its own.
  bool fin_now = false;
  if (fin) {
    const SeqNum fin_seq = seq + static_cast<std::uint32_t>(payload.size());
    if (fin_seq == t.rcv_nxt) {
      fin_now = true;
    } else {
      if (t.data && !t.fin_received && t.rcv_nxt < fin_seq) t.data->ooo.hold_fin(fin_seq);
      t.ack_now = true;  // out of order: ACK what we have
    }
  }
  if (t.data && !t.fin_received && t.data->ooo.take_fin(t.rcv_nxt)) fin_now = true;
  if (fin_now) process_fin(t, now);  // never ends the connection: it moves on to CLOSE-WAIT, CLOSING or TIME-WAIT

  output(t, now);
  rearm(t);
  notify(t);
}

// RFC 9293 §3.10.7.3: SYN-SENT.
void TcpLayer::input_syn_sent(Tcb& t, const wire::TcpView& seg, Instant now) {
  // first, check the ACK bit
  const bool ack = seg.has(flag::ack);
  if (ack && (seg.ack() <= t.iss || seg.ack() > t.snd_max)) {
    if (!seg.has(flag::rst)) send_reset_reply(t.tuple.remote.addr, t.tuple.local.addr, seg, now);
    return;
  }
  // second, check the RST bit: acceptable only if it acknowledges our SYN
  if (seg.has(flag::rst)) {
    if (ack) connection_done(t, std::errc::connection_refused, now);
    return;
  }
  // third, security (not used); fourth, check the SYN bit
  if (!seg.has(flag::syn)) return;
  t.irs = seg.seq();
  t.rcv_nxt = t.irs + 1;
  t.rcv_adv = t.rcv_nxt;
  t.rcv_free_edge = t.rcv_nxt;
  apply_syn_options(t, seg.options());
  t.snd_wl1 = seg.seq();
  if (ack) {
    // RFC 3168 §6.1.1: an ECN-setup SYN-ACK answers ours with ECE, not CWR.
    t.ecn_ok = t.opt.ecn.value_or(cfg_.ecn) && seg.has(flag::ece) && !seg.has(flag::cwr);
    if (t.ecn_ok) ++counters_.ecn_negotiated;
    t.snd_una = seg.ack();
    t.snd_wl2 = seg.ack();
    t.snd_wnd = seg.window();  // RFC 7323 §2.2: never scaled in a SYN
    t.max_snd_wnd = t.snd_wnd;
    if (t.rto.backoffs() == 0) t.rto.on_sample(now - t.syn_sent_at);
    if (t.syn_timed_out) {
      t.rto.reset_after_syn_timeout();
      t.cc->set_cwnd(t.mss);  // RFC 5681 §3.1: IW is one segment when the SYN was lost
    }
    t.rtx_at.reset();
    t.rtx_count = 0;
    set_state(t, TcpState::established, now);
    arm_keepalive(t, now);
    // "form an ACK segment <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and send it"
    t.ack_now = true;
    // "If there are other controls or text in the segment, then continue
    // processing at the sixth step ... where the URG bit is checked": the
    // text is processed (seventh step) so that the ACK above covers it and
    // the application reads it, then a FIN right after it (eighth step).
    const auto payload = seg.payload();
    if (!payload.empty()) process_text(t, t.rcv_nxt, payload, false, now);
    if (seg.has(flag::fin) && t.rcv_nxt == t.irs + 1 + static_cast<std::uint32_t>(payload.size()))
      process_fin(t, now);  // to CLOSE-WAIT: the connection goes on
    output(t, now);
    notify(t);
    return;
  }
  // Simultaneous open: "enter SYN-RECEIVED, form a SYN,ACK segment ...
  // If there are other controls or text in the segment, queue them for
  // processing after the ESTABLISHED state has been reached".
  hold_syn_text(t, seg);
  t.snd_wnd = seg.window();
  t.max_snd_wnd = t.snd_wnd;
  set_state(t, TcpState::syn_received, now);
  send_syn(t, now);
}

// ACK processing shared by the synchronized states (RFC 9293 §3.10.7.4
// fifth, ESTABLISHED). Returns false when the segment is to be dropped.
bool TcpLayer::process_ack(Tcb& t, const wire::TcpView& seg, Instant now) {
  const SeqNum ack = seg.ack();
  // RFC 5961 §5.2: acceptable only in [SND.UNA - MAX.SND.WND, SND.NXT];
  // anything else is discarded and answered with a (challenge) ACK.
  if (ack > t.snd_max || ack < t.snd_una - std::max<std::uint32_t>(t.max_snd_wnd, 1)) {
    send_challenge_ack(t, now);
    return false;
  }
  if (!t.data) return true;  // TIME-WAIT and friends: nothing to acknowledge
  if (t.ecn_ok && seg.has(flag::ece)) on_ece(t, ack);

  std::uint32_t newly_sacked = 0;
  const auto& o = seg.options();
  if (t.sack_ok && o.sack_count > 0) {
    std::array<tcp::SackRange, 4> blocks;
    std::size_t n = 0;
    for (std::size_t i = 0; i < o.sack_count && i < 4; ++i) {
      const tcp::SackRange r{o.sack[i].left, o.sack[i].right};
      if (!(r.left < r.right)) continue;
      const bool dsack = i == 0 && r.right <= ack;  // RFC 2883: below the cumulative ACK
      const bool inside = r.left >= ack && r.right <= t.snd_max;
      if (dsack || inside) blocks[n++] = r;
    }
    newly_sacked = t.data->sb.on_ack(ack, std::span<const tcp::SackRange>(blocks.data(), n));
  } else if (t.sack_ok) {
    (void)t.data->sb.on_ack(ack, {});  // the newly SACKed count: no SACK blocks, so nothing new
  }

  const std::uint32_t wnd_before = t.snd_wnd;
  if (ack > t.snd_una) {
    const std::uint32_t acked = static_cast<std::uint32_t>(ack - t.snd_una);
    const std::uint32_t flight_before = static_cast<std::uint32_t>(t.snd_max - t.snd_una);
    const SeqNum data_acked_to = std::min(ack, t.data_end());
    if (data_acked_to > t.snd_buf_seq) {
      const std::uint32_t n = static_cast<std::uint32_t>(data_acked_to - t.snd_buf_seq);
      t.data->snd.consume(n);
      t.snd_buf_seq += n;
      t.bytes_acked += n;
      // A smaller SO_SNDBUF set while more was queued: the storage follows
      // once what is left fits (set_sndbuf).
      const std::size_t limit = snd_limit(t);
      if (t.data->snd.capacity() > limit && t.data->snd.size() <= limit) (void)t.data->snd.resize(limit);  // cannot fail: size() <= limit was checked
    }
    t.snd_una = ack;
    if (t.snd_nxt < t.snd_una) t.snd_nxt = t.snd_una;
    take_rtt_sample(t, seg, ack, now);
    t.last_progress = now;
    t.rtx_count = 0;
    t.dupacks = 0;
    t.limited_sent = 0;
    switch (t.recovery) {
      case Recovery::newreno:
        if (ack >= t.recover) {
          // RFC 6582 §3.2 step 3: full acknowledgment, leave recovery.
          t.cc->on_recovery_exit();
          t.recovery = Recovery::none;
        } else {
          // Partial acknowledgment: retransmit the first unacknowledged
          // segment, deflate cwnd by the amount acked, add back one SMSS.
          (void)transmit(t, t.snd_una, t.mss, now);  // the byte count: the RTO covers a retransmission that could not go
          const std::uint32_t cwnd = t.cc->cwnd();
          t.cc->set_cwnd((cwnd > acked ? cwnd - acked : 0) + (acked >= t.mss ? t.mss : 0));
          arm_rtx(t, now);  // RFC 6582: reset the timer on the first partial ACK
        }
        break;
      case Recovery::sack:
        if (ack >= t.recover) {
          // RFC 6675 §5: recovery ends when the cumulative ACK passes RecoveryPoint.
          t.cc->on_recovery_exit();
          t.recovery = Recovery::none;
        } else if (t.high_rxt < t.snd_una - 1) {
          t.high_rxt = t.snd_una - 1;
        }
        break;
      case Recovery::none:
        t.cc->on_ack(acked, flight_before, now);
        break;
    }
    // RFC 6298 §5.2/§5.3: stop the timer when all is acknowledged, else restart it.
    if (t.snd_una == t.snd_max)
      t.rtx_at.reset();
    else
      arm_rtx(t, now);
    update_window(t, seg);
    if (t.recovery == Recovery::none && t.snd_una == t.snd_max && t.rto.backoffs() > 0 && t.ts_ok)
      t.rto.clear_backoff();
    // RFC 6675 §5: an ACK that SACKs new data is a duplicate ACK "regardless
    // of its status as a cumulative acknowledgment": DupAcks, just reset,
    // counts it, and step (2) enters recovery at once if IsLost(HighACK + 1).
    if (t.sack_ok && newly_sacked > 0 && t.recovery == Recovery::none && t.snd_max > t.snd_una) {
      t.dupacks = 1;
      on_dupack(t, now);
    }
    return true;
  }

  // Not new: is it a duplicate ACK? With SACK, RFC 6675 §2: one whose SACK
  // blocks cover octets not SACKed before, even when it carries data or
  // changes the window; an ACK without new SACK information (a D-SACK, a
  // repeat) is none. Without SACK, RFC 5681 §2: ACK = SND.UNA, no data, no
  // SYN or FIN, the same window.
  update_window(t, seg);
  bool dup;
  if (t.sack_ok) {
    dup = newly_sacked > 0;
  } else {
    const bool plain = seg.payload().empty() && !seg.has(flag::syn) && !seg.has(flag::fin);
    dup = ack == t.snd_una && plain && t.snd_wnd == wnd_before;
  }
  if (dup && t.snd_max > t.snd_una) {  // and data outstanding
    ++t.dupacks;
    on_dupack(t, now);
  }
  return true;
}

// RFC 3168 §6.1.2: an ECE is congestion as a loss would be, minus the
// retransmission: ssthresh and cwnd to half the flight, at most once per
// window of data (until SND.UNA passes what was outstanding then), and CWR
// on the next new data segment so that the receiver stops echoing. In loss
// recovery the window is already reduced: only the CWR is owed.
void TcpLayer::on_ece(Tcb& t, SeqNum ack) {
  if (!(ack > t.ecn_recover)) return;
  t.ecn_recover = t.snd_max;
  t.cwr_pending = true;
  if (t.recovery != Recovery::none) return;
  t.cc->on_loss_detected(static_cast<std::uint32_t>(t.snd_max - t.snd_una));
  t.cc->set_cwnd(t.cc->ssthresh());
  ++counters_.ecn_reductions;
}

void TcpLayer::on_dupack(Tcb& t, Instant now) {
  switch (t.recovery) {
    case Recovery::none: {
      const bool sack_trigger = t.sack_ok && t.data->sb.is_lost(t.snd_una, t.mss);
      if (t.dupacks < tcp::SackScoreboard::kDupThresh && !sack_trigger) {
        limited_transmit(t, now);
        return;
      }
      if (t.snd_nxt != t.snd_max) return;  // still resending after an RTO
      // RFC 5681 §3.2 step 2: "When [RFC3042] is in use, additional data
      // sent in limited transmit MUST NOT be included in this calculation"
      // of ssthresh from FlightSize.
      const std::uint32_t flight = static_cast<std::uint32_t>(t.snd_max - t.snd_una) - t.limited_sent;
      if (t.sack_ok) {
        // RFC 6675 §5.1: after a retransmission timeout (which set
        // "recover", RecoveryPoint + 1, to HighData + 1) "a new recovery
        // phase ... MUST NOT be initiated until HighACK is greater than or
        // equal to the new value of RecoveryPoint". Also holds, trivially,
        // after a recovery that ended normally.
        if (!(t.snd_una - 1u >= t.recover - 1u)) return;
        // RFC 6675 §5 step (4): RecoveryPoint = HighData, ssthresh and cwnd
        // from FlightSize, retransmit the first lost segment.
        t.recover = t.snd_max;
        t.cc->on_loss_detected(flight);
        t.cc->set_cwnd(t.cc->ssthresh());
        t.high_rxt = t.snd_una - 1;
        t.rescue_rxt.reset();
        t.recovery = Recovery::sack;
        ++counters_.sack_recoveries;
        // Step (4.3): "the first segment presumed dropped", as NextSeg()
        // would pick it: from SND.UNA up to at most SMSS, stopping before
        // the first SACKed octet (the peer holds those already).
        SeqNum from = t.snd_una;
        std::uint32_t len = t.mss;
        if (auto hole = t.data->sb.next_unsacked_seg(t.snd_una, t.snd_max, t.high_rxt, t.mss)) {
          from = hole->left;
          len = hole->length();
        }
        const std::uint32_t n = transmit(t, from, len, now);
        if (n > 0) {
          t.high_rxt = from + (n - 1);
          ++counters_.fast_retransmits;  // counted when one is sent
        }
        return;  // output() continues with NextSeg()
      }
      // RFC 6582 §3.2 step 2: only if the ACK covers more than "recover"
      // (which starts at the ISS, step 1: init_send_seq()). If not, no fast
      // retransmit and no change to ssthresh.
      if (!(t.snd_una - 1 >= t.recover)) return;
      t.recover = t.snd_max;
      t.cc->on_loss_detected(flight);
      if (transmit(t, t.snd_una, t.mss, now) > 0) ++counters_.fast_retransmits;
      t.cc->set_cwnd(t.cc->ssthresh() + 3 * t.mss);
      t.recovery = Recovery::newreno;
      ++counters_.newreno_recoveries;
      return;
    }
    case Recovery::newreno:
      t.cc->set_cwnd(t.cc->cwnd() + t.mss);  // RFC 6582 §3.2 step 4: inflate
      return;
    case Recovery::sack:
      return;  // output() sends what the scoreboard allows
  }
}

// Limited Transmit (RFC 3042 §2; RFC 5681 §3.2 step 1; RFC 6675 §5 step 3
// allows it with SACK): on the first and second duplicate ACK, one segment
// of previously unsent data, if the receiver's window allows it and
// FlightSize stays at most cwnd + 2*SMSS. cwnd is not changed. A tail
// shorter than a segment waits, as Nagle's algorithm (RFC 1122 §4.2.3.4)
// would have it with data outstanding, unless TCP_NODELAY or the FIN is
// queued behind it.
void TcpLayer::limited_transmit(Tcb& t, Instant now) {
  if (t.dupacks < 1 || t.dupacks > 2) return;
  if (t.snd_nxt != t.snd_max) return;  // resending after an RTO: nothing "previously unsent" goes first
  const SeqNum end_data = t.data_end();
  if (!(t.snd_nxt < end_data)) return;
  const std::uint32_t avail = static_cast<std::uint32_t>(end_data - t.snd_nxt);
  const std::uint32_t len = std::min(avail, t.mss);
  if (len < t.mss && !t.opt.nodelay && !t.fin_queued) return;
  const std::uint32_t flight = static_cast<std::uint32_t>(t.snd_max - t.snd_una);
  if (flight + len > t.snd_wnd) return;                  // the receiver's window
  if (flight + len > t.cc->cwnd() + 2 * t.mss) return;   // cwnd + 2*SMSS
  t.limited_sent += transmit(t, t.snd_nxt, len, now);
}

void TcpLayer::process_text(Tcb& t, SeqNum seq, std::span<const std::uint8_t> payload, bool dsack_noted,
                            Instant now) {
  auto& d = *t.data;
  // Quick-ACK, as Linux does (tcp_event_data_recv, tcp_incr_quickack): the
  // first data of a connection, or the first after it was idle for longer
  // than the RTO, starts a run of min(max(rcv_wnd / (2 * rcv_mss), 2), 16)
  // segments ACKed at once. RFC 1122 §4.2.3.2 and RFC 9293 §3.8.6.3 allow
  // delaying ACKs but do not require it; delaying them at the start would
  // hold back a sender in slow start, whose cwnd grows with each ACK.
  if (!t.last_data_rcv || now - *t.last_data_rcv > t.rto.rto()) {
    const std::uint32_t per = 2 * std::max<std::uint32_t>(t.rcv_mss, 1);
    t.quick_acks = std::clamp<std::uint32_t>(static_cast<std::uint32_t>(d.rcv.free()) / per, 2, 16);
  }
  t.last_data_rcv = now;
  std::uint32_t off = static_cast<std::uint32_t>(seq - t.rcv_nxt);
  if (off >= d.rcv.free()) {
    ++counters_.ooo_dropped;
    t.ack_now = true;
    return;
  }
  if (off + payload.size() > d.rcv.free()) payload = payload.first(d.rcv.free() - off);
  const auto len = static_cast<std::uint32_t>(payload.size());
  // RFC 2883 §4: bytes already held out of order are a duplicate, whether
  // the segment repeats them all or overlaps them in part (rule 3: the
  // D-SACK gives exactly the repeated bytes; §4.2: the first such part
  // only, and none if a part below RCV.NXT was reported already). Looked
  // up before add() merges the segment into what is held.
  const auto dup = dsack_noted || !t.sack_ok ? std::nullopt : d.ooo.first_held(seq, seq + len);
  const auto res = d.ooo.add(t.rcv_nxt, seq, len);
  if (!res.stored) {
    ++counters_.ooo_dropped;
    t.ack_now = true;
    return;
  }
  if (dup) {
    d.ooo.note_duplicate(dup->left, dup->right);
    t.ack_now = true;  // rule 1: the D-SACK describes this segment
  }
  if (res.duplicate) {
    t.ack_now = true;  // nothing new: tell the sender where we are at once
    return;
  }
  if (!t.rd_shut) d.rcv.write_at(off, payload);
  if (res.advance > 0) {
    if (t.rd_shut) {
      d.rcv.commit(res.advance);
      d.rcv.consume(res.advance);  // shut for reading: discard
    } else {
      d.rcv.commit(res.advance);
    }
    t.rcv_nxt += res.advance;
    t.bytes_in += res.advance;
  }
  // RFC 5681 §4.2 / RFC 9293 §3.8.6.3: ACK at once for out-of-order data
  // and when a hole is filled; else at least every second full-sized
  // segment, and within the delayed-ACK timeout.
  if (off > 0 || res.filled_hole || !d.ooo.empty()) {
    t.ack_now = true;
    return;
  }
  t.unacked_bytes += len;
  if (t.quick_acks > 0 && !t.interactive) {
    // In quick-ACK mode, unless interactive: there the delayed ACK is
    // meant to ride on the answer (Linux's tcp_in_quickack_mode()).
    --t.quick_acks;
    t.ack_now = true;
  } else if (t.unacked_bytes >= 2 * t.rcv_mss) {
    t.ack_now = true;
  } else if (!t.delack_at) {
    t.delack_at = deadline_after(now, cfg_.delayed_ack);
  }
}

void TcpLayer::process_fin(Tcb& t, Instant now) {
  // RFC 9293 §3.10.7.4 eighth: advance RCV.NXT over the FIN, ACK it, and
  // signal end of stream.
  t.rcv_nxt += 1;
  t.fin_received = true;
  t.ack_now = true;
  switch (t.state) {
    case TcpState::syn_received:
    case TcpState::established:
      set_state(t, TcpState::close_wait, now);
      break;
    case TcpState::fin_wait_1:
      if (t.fin_acked()) {
        send_ack(t, now);
        enter_time_wait(t, now);
      } else {
        set_state(t, TcpState::closing, now);
      }
      break;
    case TcpState::fin_wait_2:
      send_ack(t, now);
      enter_time_wait(t, now);
      break;
    case TcpState::time_wait:
      t.timewait_at = deadline_after(now, 2 * cfg_.msl);
      break;
    case TcpState::close_wait:
    case TcpState::closing:
    case TcpState::last_ack:
    case TcpState::closed:
    case TcpState::listen:
    case TcpState::syn_sent:
      break;
  }
  notify(t);
}

void TcpLayer::icmp_error(Endpoint local, Endpoint remote, SeqNum quoted_seq, std::errc err, bool hard, Instant now) {
  const Entry entry(*this);
  const SocketSlot* idp = conns_.find(FourTuple{local, remote});
  if (!idp) return;
  Tcb& t = *sockets_[*idp];
  // RFC 5927 §4.1: only believe an error quoting a sequence number in flight.
  if (!(t.snd_una <= quoted_seq && quoted_seq < t.snd_max) && !(t.state == TcpState::syn_sent && quoted_seq == t.iss))
    return;
  if (t.state == TcpState::syn_sent && hard) {
    // RFC 1122 §4.2.3.9: port/protocol unreachable abort a connection
    // attempt (Linux reports ECONNREFUSED).
    connection_done(t, std::errc::connection_refused, now);
    return;
  }
  t.soft_error = err;
}

}  // namespace weft
