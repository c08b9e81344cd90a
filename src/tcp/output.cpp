// The sender: building segments and deciding what to send (RFC 9293 §3.8.6
// window management, §3.8.6.2.1 sender silly-window avoidance, Nagle's
// algorithm of RFC 1122 §4.2.3.4; RFC 6675 §5 transmission in recovery).
#include <algorithm>
#include <cstring>

#include "tcp/tcp.hpp"
#include "wire/ipv4.hpp"

namespace weft {

using tcp::TcpState;
namespace flag = wire::tcp_flag;

std::uint16_t TcpLayer::window_to_advertise(Tcb& t) {
  // RFC 7323 §2.2: the window of a SYN or SYN-ACK is never scaled.
  const unsigned shift = tcp::is_handshaking(t.state) ? 0 : t.rcv_wscale;
  if (t.rcv_adv < t.rcv_nxt) t.rcv_adv = t.rcv_nxt;
  const std::uint32_t before = t.rcv_wnd();  // RCV.ADV was just raised to RCV.NXT at least
  std::uint32_t want = before;
  if (t.data) {
    const SeqNum edge = t.rcv_nxt + static_cast<std::uint32_t>(rcv_space(t));
    // RFC 9293 §3.8.6.2.2: keep the right edge fixed until it can move by
    // min(RCV.BUFF / 2, Eff.snd.MSS), so the peer is never offered a sliver.
    const std::uint32_t threshold = std::min<std::uint32_t>(static_cast<std::uint32_t>(t.rcv_buf / 2), t.rcv_mss);
    if (edge > t.rcv_adv && seq_len(t.rcv_adv, edge) >= threshold) want = seq_len(t.rcv_nxt, edge);
    if (edge > t.rcv_free_edge) t.rcv_free_edge = edge;
  }
  std::uint32_t field = std::min<std::uint32_t>(want >> shift, tcp::kMaxWindowField);
  // Scaling rounds down, which could pull the right edge left of what the
  // peer was already offered: round up instead (RFC 7323 §2.4: the edge
  // never moves left; Linux's tcp_select_window does the same).
  if ((std::uint64_t{field} << shift) < before)
    field = std::min<std::uint32_t>(static_cast<std::uint32_t>((std::uint64_t{before} + (1u << shift) - 1) >> shift),
                                    tcp::kMaxWindowField);
  // RCV.WND is what this segment says, scaled: the acceptance test
  // (acceptable()) uses exactly that, never the larger free space behind
  // it (RFC 9293 §3.10.7.4, RFC 5961 §3.2).
  const SeqNum edge = t.rcv_nxt + static_cast<std::uint32_t>(std::uint64_t{field} << shift);
  if (edge > t.rcv_adv) t.rcv_adv = edge;
  // What was offered must fit: the ring grows past the buffer by what the
  // rounding added (a limit only; storage follows the bytes). The rounding
  // can add up to 2^shift - 1 bytes an ACK while nothing is read, so a peer
  // sending tiny segments could ratchet it; the growth stops at an eighth
  // of the buffer (at least one scaling unit), and what a peer sends beyond
  // that is dropped as Linux drops data past its memory limit.
  if (t.data) {
    auto& rcv = t.data->rcv;
    const std::size_t offered = t.rcv_wnd();
    const std::size_t most = t.rcv_buf + std::max<std::size_t>(std::size_t{1} << shift, t.rcv_buf / 8);
    if (rcv.free() < offered && rcv.capacity() < most)
      (void)rcv.resize(std::min(rcv.size() + offered, most));  // growing cannot fail
  }
  return static_cast<std::uint16_t>(field);
}

void TcpLayer::send_raw(const FourTuple& tuple, const wire::TcpRepr& r, std::span<const std::uint8_t> payload,
                        Instant now) {
  const std::size_t hl = r.header_len();
  PacketBuf b = ip_.take_buffer(hl + payload.size());
  auto seg = std::span<std::uint8_t>(b).subspan(IpSender::kHeaderRoom);
  if (!payload.empty()) std::memcpy(seg.data() + hl, payload.data(), payload.size());
  r.emit(seg, tuple.local.addr, tuple.remote.addr, payload.size(), !ip_.checksum_offload());
  ++counters_.out_segs;
  if (r.flags.has(flag::rst)) ++counters_.out_rsts;
  // Don't-fragment on every segment: the MSS keeps segments within the MTU.
  (void)ip_.send_ip(std::move(b), IpSendParams{tuple.local.addr, tuple.remote.addr, IpProto::tcp, true},
                    now);  // a RST or reply with no connection behind it: nobody to tell (the IP layer counts the drop)
}

void TcpLayer::send_segment(Tcb& t, SeqNum seq, wire::TcpFlags flags, std::size_t data_len, Instant now) {
  wire::TcpRepr r;
  r.src_port = t.tuple.local.port;
  r.dst_port = t.tuple.remote.port;
  r.seq = seq;
  r.flags = flags;
  if (flags.has(flag::ack)) r.ack = t.rcv_nxt;
  r.window = window_to_advertise(t);
  // RFC 3168 §6.1: the ECN-setup SYN carries ECE and CWR, the SYN-ACK ECE.
  // Then ECT(0) on new data only: never on a SYN, a pure ACK, a window
  // probe or a retransmission (§6.1.1, §6.1.4-6.1.5); CWR on the first new
  // data after a reduction; ECE on every ACK while a CE is unanswered.
  std::uint8_t ip_ecn = wire::ecn::not_ect;
  if (flags.has(flag::syn)) {
    if (t.state == TcpState::syn_sent && t.opt.ecn.value_or(cfg_.ecn)) r.flags |= flag::ece | flag::cwr;
    if (t.state == TcpState::syn_received && t.ecn_ok) r.flags |= flag::ece;
  } else if (t.ecn_ok && !flags.has(flag::rst)) {
    if (data_len > 0 && seq >= t.snd_max) {
      ip_ecn = wire::ecn::ect0;
      if (t.cwr_pending) {
        r.flags |= flag::cwr;
        t.cwr_pending = false;
      }
    }
    if (flags.has(flag::ack) && t.ece_pending) r.flags |= flag::ece;
  }
  if (flags.has(flag::syn)) {
    // RFC 9293 §3.7.1: MSS from the link MTU. An active open offers every
    // option; a SYN-ACK answers only what the peer offered.
    const bool offer = t.state == TcpState::syn_sent;
    r.options.mss = static_cast<std::uint16_t>(std::min<std::uint32_t>(t.rcv_mss, 0xffff));  // the option's 16 bits
    if (offer ? cfg_.window_scaling : t.wscale_ok) r.options.window_scale = t.rcv_wscale;
    r.options.sack_permitted = offer ? cfg_.sack : t.sack_ok;
    if (offer ? cfg_.timestamps : t.ts_ok)
      r.options.timestamps = wire::TcpTimestamps{TsVal{ts_now(t, now)}, t.ts_recent};
  } else {
    if (t.ts_ok) r.options.timestamps = wire::TcpTimestamps{TsVal{ts_now(t, now)}, t.ts_recent};
    // SACK blocks only as far as they fit beside the data within the MSS:
    // every segment leaves with don't-fragment set.
    using wire::TcpOptions;
    const std::size_t used = data_len + (t.ts_ok ? TcpOptions::timestamps_len : 0);
    const std::size_t room = t.mss_base > used ? t.mss_base - used : 0;
    const std::size_t fit = room >= TcpOptions::sack_len(1)
                                ? std::min<std::size_t>((room - TcpOptions::sack_len(0)) / 8, t.ts_ok ? 3 : 4)
                                : 0;
    if (t.sack_ok && t.data && fit > 0 && flags.has(flag::ack) && !flags.has(flag::rst)) {
      std::array<tcp::SackRange, 4> blocks;
      if (t.data->ooo.dsack_pending()) ++counters_.dsacks_sent;  // sack_blocks() sends it now (fit > 0)
      const std::size_t n = t.data->ooo.sack_blocks(blocks, fit);
      for (std::size_t i = 0; i < n; ++i) r.options.sack[i] = wire::SackBlock{blocks[i].left, blocks[i].right};
      r.options.sack_count = static_cast<std::uint8_t>(n);
    }
  }
  const std::size_t hl = r.header_len();
  PacketBuf b = ip_.take_buffer(hl + data_len);
  auto segbuf = std::span<std::uint8_t>(b).subspan(IpSender::kHeaderRoom);
  if (data_len > 0) {
    const std::size_t off = seq_len(t.snd_buf_seq, seq);
    t.data->snd.peek(off, segbuf.subspan(hl, data_len));
  }
  r.emit(segbuf, t.tuple.local.addr, t.tuple.remote.addr, data_len, !ip_.checksum_offload());
  ++counters_.out_segs;
  if (flags.has(flag::rst)) ++counters_.out_rsts;
  if (flags.has(flag::ack)) {
    t.last_ack_sent = t.rcv_nxt;
    t.delack_at.reset();
    t.ack_now = false;
    t.unacked_bytes = 0;
  }
  t.bytes_out += data_len;
  IpSendParams p{t.tuple.local.addr, t.tuple.remote.addr, IpProto::tcp, true};
  p.ecn = ip_ecn;
  // A send that fails (no route since the route went, a full queue) is a
  // lost segment: the RTO retransmits it. The error is kept as a soft
  // error, reported instead of ETIMEDOUT if the connection then times out
  // (Linux's sk_err_soft; docs/errors.md). connect() checks the route first.
  if (auto st = ip_.send_ip(std::move(b), p, now); !st) t.soft_error = st.error();
}

void TcpLayer::send_syn(Tcb& t, Instant now) {
  // SYN (active) or SYN-ACK (passive or simultaneous open) at ISS.
  const wire::TcpFlags flags = t.state == TcpState::syn_sent ? flag::syn : flag::syn | flag::ack;
  if (t.rto.backoffs() == 0) t.syn_sent_at = now;
  send_segment(t, t.iss, flags, 0, now);
  if (t.snd_nxt == t.iss) t.snd_nxt = t.iss + 1;
  if (t.snd_max < t.snd_nxt) t.snd_max = t.snd_nxt;
}

// A bare ACK (or RST) carries SND.MAX, not SND.NXT: after a timeout pulls
// SND.NXT back to retransmit, the peer's RCV.NXT may already be past it and
// an ACK at SND.NXT would fail its acceptance test (BSD's tcp_output does
// the same).
void TcpLayer::send_ack(Tcb& t, Instant now) { send_segment(t, t.snd_max, flag::ack, 0, now); }

void TcpLayer::send_probe(Tcb& t, Instant now) {
  // An old sequence number with no data: the peer must answer with an ACK
  // carrying its current window (RFC 9293 §3.8.6.1; Linux's zero-window and
  // keepalive probes are the same segment).
  send_segment(t, t.snd_una - 1, flag::ack, 0, now);
}

void TcpLayer::send_rst_for(Tcb& t, Instant now) { send_segment(t, t.snd_max, flag::rst | flag::ack, 0, now); }

void TcpLayer::send_reset_reply(Ipv4Addr src, Ipv4Addr dst, const wire::TcpView& seg, Instant now) {
  // RFC 9293 §3.10.7.1: never answer a RST with a RST.
  if (seg.has(flag::rst)) return;
  // Nor anything sent to a broadcast or multicast address (RFC 1122 §4.2.3.10).
  if (dst.is_broadcast() || dst.is_multicast() || src.is_broadcast() || src.is_multicast()) return;
  wire::TcpRepr r;
  r.src_port = seg.dst_port();
  r.dst_port = seg.src_port();
  if (seg.has(flag::ack)) {
    // <SEQ=SEG.ACK><CTL=RST>
    r.seq = seg.ack();
    r.flags = flag::rst;
  } else {
    // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
    const std::uint32_t len =
        static_cast<std::uint32_t>(seg.payload().size()) + (seg.has(flag::syn) ? 1 : 0) + (seg.has(flag::fin) ? 1 : 0);
    r.seq = SeqNum{0};
    r.ack = seg.seq() + len;
    r.flags = flag::rst | flag::ack;
  }
  send_raw(FourTuple{{dst, seg.dst_port()}, {src, seg.src_port()}}, r, {}, now);
}

std::uint32_t TcpLayer::transmit(Tcb& t, SeqNum seq, std::uint32_t max_len, Instant now) {
  const SeqNum end_data = t.data_end();
  std::uint32_t len = 0;
  if (seq < end_data) len = std::min(max_len, seq_len(seq, end_data));
  const bool fin = t.fin_queued && seq + len == end_data;
  if (len == 0 && !fin) return 0;
  wire::TcpFlags flags = flag::ack;
  if (fin) flags |= flag::fin;
  if (len > 0 && seq + len == end_data) flags |= flag::psh;
  const std::uint32_t consumed = len + (fin ? 1 : 0);
  const SeqNum end = seq + consumed;
  const bool retrans = seq < t.snd_max;
  if (retrans) {
    ++counters_.retrans_segs;
    ++t.retransmits;
    // Karn (RFC 6298 §3): a retransmitted segment gives no RTT sample.
    if (t.rtt_seq && *t.rtt_seq >= seq && *t.rtt_seq < end) t.rtt_seq.reset();
  } else if (!t.ts_ok && !t.rtt_seq && len > 0) {
    t.rtt_seq = seq;
    t.rtt_start = now;
  }
  // New data within the delayed-ACK time of the last data received: the
  // host answers requests, so the connection is interactive (Linux's
  // pingpong mode, entered when data is sent within the ACK timeout of the
  // last receive) and its ACKs are left to ride on the answers. Kept
  // simple: one answer enters the mode, a delayed-ACK timeout leaves it.
  if (!retrans && len > 0 && t.last_data_rcv && now - *t.last_data_rcv < cfg_.delayed_ack) t.interactive = true;
  if (t.snd_una == t.snd_max) t.last_progress = now;
  send_segment(t, seq, flags, len, now);
  if (seq == t.snd_nxt) t.snd_nxt = end;
  if (t.snd_max < end) t.snd_max = end;
  if (!t.rtx_at) arm_rtx(t, now);
  t.persist_at.reset();
  t.persist_backoff = 0;
  return consumed;
}

void TcpLayer::output(Tcb& t, Instant now, Push mode) {
  // TCP_CORK, or MSG_MORE for this call: a partial segment waits.
  const bool corked = mode == Push::more || (mode == Push::normal && t.opt.cork);
  const bool push = mode == Push::push;
  const bool can_send = tcp::sends_data(t.state) && t.data != nullptr;
  bool sent_any = false;
  if (can_send && t.recovery == tcp::Recovery::sack) {
    const auto before = counters_.out_segs;
    output_sack_recovery(t, now);
    sent_any = counters_.out_segs != before;
  } else if (can_send) {
    for (int guard = 0; guard < 100000; ++guard) {
      const SeqNum end_data = t.data_end();
      const bool fin_pending = t.fin_queued && t.snd_nxt <= end_data;
      const std::uint32_t avail = t.snd_avail();
      if (avail == 0 && !fin_pending) break;
      const std::uint32_t usable = t.usable_window();
      const std::uint32_t len = std::min({avail, usable, t.mss});
      bool go = false;
      if (len > 0 && len == t.mss) {
        go = true;  // a full segment
      } else if (len > 0 && len == avail &&
                 (fin_pending || push || (!corked && (t.opt.nodelay || t.snd_nxt == t.snd_una)))) {
        // All that is queued; Nagle: only when nothing is unacknowledged.
        // Corked, a partial segment waits, unless a FIN follows it (Linux's
        // tcp_send_fin pushes with Nagle off) or it is pushed.
        go = true;
      } else if (len > 0 && t.snd_nxt == t.snd_una && len >= t.max_snd_wnd / 2 && (!corked || avail >= t.mss)) {
        go = true;  // RFC 9293 §3.8.6.2.1: at least half the largest window offered
      } else if (avail == 0 && fin_pending) {
        go = true;  // a bare FIN
      }
      if (!go) break;
      const std::uint32_t n = transmit(t, t.snd_nxt, len, now);
      if (n == 0) break;
      sent_any = true;
    }
  }
  // A partial segment held by the cork starts the cork's ceiling; nothing
  // held, nothing to time.
  if (can_send && corked && t.snd_nxt < t.data_end()) {
    if (!t.cork_at) t.cork_at = deadline_after(now, kCorkTimeout);
  } else if (!corked || t.snd_nxt >= t.data_end()) {
    t.cork_at.reset();
  }
  if (t.ack_now && !sent_any && t.state != TcpState::closed && t.state != TcpState::listen) send_ack(t, now);
  // Zero window, or a sliver SWS avoidance will not use, and nothing in
  // flight to bring an ACK: the persist timer probes (RFC 9293 §3.8.6.1).
  // Not for a partial segment only the cork holds: the window is open,
  // and the cork's own ceiling sends it.
  const bool window_holds = t.snd_nxt < t.data_end() && t.usable_window() < std::min(t.snd_avail(), t.mss);
  if (can_send && t.snd_nxt == t.snd_una && t.snd_una == t.snd_max && t.snd_nxt < t.data_end() &&
      (window_holds || !corked)) {
    if (!t.persist_at) {
      Duration d = t.rto.rto();
      for (unsigned i = 0; i < t.persist_backoff && d < cfg_.persist_max; ++i) d *= 2;
      t.persist_at = deadline_after(now, std::min(std::max(d, Duration{200ms}), cfg_.persist_max));
    }
  } else if (t.snd_una != t.snd_max) {
    t.persist_at.reset();
  }
}

void TcpLayer::output_sack_recovery(Tcb& t, Instant now) {
  // RFC 6675 §5 step (C): while cwnd - pipe >= 1 SMSS, NextSeg() picks what goes.
  for (int guard = 0; guard < 10000; ++guard) {
    const std::uint32_t pipe = t.data->sb.pipe(t.snd_una, t.snd_max, t.high_rxt, t.mss);
    const std::uint32_t cwnd = t.cc->cwnd();
    if (pipe >= cwnd || cwnd - pipe < t.mss) break;
    // Rule (1): a lost segment.
    if (auto seg = t.data->sb.next_lost_seg(t.snd_una, t.snd_max, t.high_rxt, t.mss)) {
      const std::uint32_t n = transmit(t, seg->left, seg->length(), now);
      if (n == 0) break;
      t.high_rxt = seg->left + (n - 1);
      continue;
    }
    // Rule (2): new data, if the receiver's window allows.
    const SeqNum end_data = t.data_end();
    if (t.snd_nxt == t.snd_max && (t.snd_nxt < end_data || (t.fin_queued && t.snd_nxt == end_data))) {
      const std::uint32_t avail = t.snd_avail();
      const std::uint32_t len = std::min({avail, t.snd_wnd_left(), t.mss});
      if (len > 0 || avail == 0) {
        if (transmit(t, t.snd_nxt, len, now) > 0) continue;
      }
    }
    // Rule (3): any unSACKed segment.
    if (auto seg = t.data->sb.next_unsacked_seg(t.snd_una, t.snd_max, t.high_rxt, t.mss)) {
      const std::uint32_t n = transmit(t, seg->left, seg->length(), now);
      if (n == 0) break;
      t.high_rxt = seg->left + (n - 1);
      continue;
    }
    // Rule (4): the rescue retransmission, for a tail this recovery has
    // not retransmitted yet. A segment ending at or below HighRxt was
    // retransmitted already (rules 1 and 3, or step 4.3's first
    // retransmission): sending it again would spend the one rescue on a
    // duplicate, so it is skipped.
    if (auto seg = t.data->sb.rescue_seg(t.snd_una, t.snd_max, t.mss, t.rescue_rxt);
        seg && seg->right - 1u > t.high_rxt) {
      if (transmit(t, seg->left, seg->length(), now) == 0) break;
      t.rescue_rxt = t.recover - 1;
      continue;
    }
    break;
  }
}

void TcpLayer::maybe_window_update(Tcb& t, Instant now) {
  // After the application reads: tell the peer when the window opened by
  // enough to matter (RFC 9293 §3.8.6.2.2), at once rather than at the next
  // delayed ACK, or a sender stopped by a zero window waits for its probe.
  if (!t.data || t.fin_received || !tcp::accepts_text(t.state)) return;
  // Measured against the free space when the window was last offered, not
  // against the edge offered (which the unscaled SYN window may have held
  // far lower): only what reads freed since then counts.
  const SeqNum old_adv = std::max(t.rcv_adv, t.rcv_free_edge);
  const SeqNum edge = t.rcv_nxt + static_cast<std::uint32_t>(rcv_space(t));
  const std::size_t buf = t.rcv_buf;
  const std::uint32_t threshold = std::min<std::uint32_t>(static_cast<std::uint32_t>(buf / 2), t.rcv_mss);
  if (edge > old_adv && seq_len(old_adv, edge) >= threshold) {
    // Send when the advertised window was small: less than 2 segments left.
    const std::uint32_t left = seq_len_or_zero(t.rcv_nxt, old_adv);
    if (left < 2 * t.rcv_mss || seq_len(old_adv, edge) >= buf / 2) send_ack(t, now);
  }
}

}  // namespace weft
