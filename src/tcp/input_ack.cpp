// ACK processing of an arriving segment (RFC 9293 §3.10.7.4, fifth step):
// RFC 5961 §5.2's check of the ACK field, the send window (SND.WL1/WL2),
// RTT samples (RFC 7323 §4.1, RFC 6298), the reaction to ECE (RFC 3168
// §6.1.2) and loss recovery: duplicate ACKs, fast retransmit and Limited
// Transmit (RFC 5681, RFC 3042), NewReno (RFC 6582), SACK (RFC 6675).
#include <algorithm>
#include <array>

#include "tcp/tcp.hpp"

namespace weft {

using tcp::Recovery;
namespace flag = wire::tcp_flag;

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
  if (t.ts_ok && ts && ts->ecr != TsVal{0}) {
    // RFC 7323 §4.1: the echoed timestamp ties the ACK to one transmission,
    // so even retransmitted segments give a valid sample.
    const std::uint32_t ms = TsVal{ts_now(t, now)}.since(ts->ecr);
    if (ms < tcp::kMaxTsRttSample.count()) t.rto.on_sample(std::chrono::milliseconds(ms));
    return;
  }
  if (t.rtt_seq && ack > *t.rtt_seq) {
    t.rto.on_sample(now - t.rtt_start);
    t.rtt_seq.reset();
  }
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
    const std::uint32_t acked = seq_len(t.snd_una, ack);
    const std::uint32_t flight_before = t.flight_size();
    const SeqNum data_acked_to = std::min(ack, t.data_end());
    if (data_acked_to > t.snd_buf_seq) {
      const std::uint32_t n = seq_len(t.snd_buf_seq, data_acked_to);
      t.data->snd.consume(n);
      t.snd_buf_seq += n;
      t.bytes_acked += n;
      // A smaller SO_SNDBUF set while more was queued: the storage follows
      // once what is left fits (set_sndbuf).
      const std::size_t limit = snd_limit(t);
      if (t.data->snd.capacity() > limit && t.data->snd.size() <= limit)
        (void)t.data->snd.resize(limit);  // cannot fail: size() <= limit was checked
    }
    t.snd_una = ack;
    if (t.snd_nxt < t.snd_una) t.snd_nxt = t.snd_una;
    t.soft_error.reset();  // something got through: an earlier soft error says nothing now (Linux's tcp_ack)
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
          (void)transmit(t, t.snd_una, t.mss,
                         now);  // the byte count: the RTO covers a retransmission that could not go
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
  t.cc->on_loss_detected(t.flight_size());
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
      const std::uint32_t flight = t.flight_size() - t.limited_sent;
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
  const std::uint32_t avail = t.snd_avail();
  if (avail == 0) return;
  const std::uint32_t len = std::min(avail, t.mss);
  if (len < t.mss && !t.opt.nodelay && !t.fin_queued) return;
  const std::uint32_t flight = t.flight_size();
  if (flight + len > t.snd_wnd) return;                 // the receiver's window
  if (flight + len > t.cc->cwnd() + 2 * t.mss) return;  // cwnd + 2*SMSS
  t.limited_sent += transmit(t, t.snd_nxt, len, now);
}

}  // namespace weft
