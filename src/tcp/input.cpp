// Segment arrival (RFC 9293 §3.10.7): the demux, then the steps of
// §3.10.7.4 for the synchronized states (and SYN-RECEIVED) as the RFC reads
// them, with RFC 5961's defences and RFC 7323's PAWS. The rest is split by
// concern: input_syn.cpp (SYN-SENT and the SYN's options), input_ack.cpp
// (the fifth step's ACK processing and loss recovery), input_text.cpp (the
// seventh and eighth steps, text and FIN).
#include <algorithm>

#include "tcp/tcp.hpp"
#include "wire/ipv4.hpp"

namespace weft {

using tcp::Recovery;
using tcp::TcpState;
namespace flag = wire::tcp_flag;

// ------------------------------------------------------------ demux

void TcpLayer::input(Ipv4Addr src, Ipv4Addr dst, std::span<const std::uint8_t> segment, Instant now, std::uint8_t ecn) {
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
    const bool newer = (t.ts_ok && ts) ? ts->val > t.ts_recent : v->seq() > t.rcv_nxt;
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
    if (t.ts_ok && ts && ts->val > t.ts_recent) t.ts_recent = ts->val;
    send_syn(t, now);
    return;
  }

  // PAWS (RFC 7323 §5.3): a segment whose timestamp is older than TS.Recent
  // is an old duplicate; drop it and ACK (unless it is a RST).
  if (t.ts_ok && ts && !seg.has(flag::rst) && ts->val < t.ts_recent) {
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
  if (!t.acceptable(seq, seg_len)) {
    // RFC 9293: with a zero window, valid ACKs (and RSTs) are still
    // processed; the text is dropped.
    if (t.rcv_wnd() == 0 && seq == t.rcv_nxt && seg_len > 0) {
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
  const bool take_ts = t.ts_ok && ts && seq <= t.last_ack_sent && ts->val >= t.ts_recent;

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
    const std::uint32_t skip = seq_len(seq, t.rcv_nxt);
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
    const std::uint32_t wnd = t.rcv_wnd();
    const std::uint32_t off = seq_len(t.rcv_nxt, seq);
    const std::uint32_t room = wnd > off ? wnd - off : 0;
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

  if (take_ts) t.ts_recent = ts->val;

  // sixth, check the URG bit (weft does not implement urgent data; the
  // pointer is ignored, RFC 6093 discourages its use)

  // seventh, process the segment text
  // In the other states "This should not occur, since a FIN has been
  // received" (or the handshake is not done): the text is ignored.
  if (!payload.empty() && tcp::accepts_text(t.state)) {
    if (t.user_closed) {
      // New data for a closed socket cannot be delivered: RST (RFC 9293
      // §3.10.4, as Linux does for an orphan receiving data).
      send_rst_for(t, now);
      connection_done(t, std::nullopt, now);
      return;
    }
    process_text(t, seq, payload, dsack_noted, now);
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
