// Connection setup on arrival: the SYN-SENT step (RFC 9293 §3.10.7.3),
// the options a SYN negotiates (MSS RFC 9293 §3.7.1, window scale and
// timestamps RFC 7323, SACK-permitted RFC 2018), and text that came on a
// SYN (§3.10.7.2-3). The synchronized states are in input.cpp.
#include <algorithm>

#include "tcp/tcp.hpp"

namespace weft {

using tcp::TcpState;
namespace flag = wire::tcp_flag;

void TcpLayer::apply_syn_options(Tcb& t, const wire::TcpOptions& o) {
  // RFC 9293 §3.7.1: send MSS is the peer's MSS option (536 without one),
  // never more than our own path allows.
  t.mss_base =
      std::min<std::uint32_t>(o.mss ? std::max<std::uint32_t>(*o.mss, tcp::kMinPeerMss) : tcp::kDefaultMss, t.rcv_mss);
  // RFC 7323 §2.2: both sides must send window scale for either to use it.
  t.wscale_ok = cfg_.window_scaling && o.window_scale.has_value();
  if (t.wscale_ok) {
    t.snd_wscale = std::min(*o.window_scale, tcp::kMaxWindowShift);
  } else {
    t.snd_wscale = 0;
    t.rcv_wscale = 0;
  }
  t.sack_ok = cfg_.sack && o.sack_permitted;
  t.ts_ok = cfg_.timestamps && o.timestamps.has_value();
  if (t.ts_ok) t.ts_recent = o.timestamps->val;
  t.mss = t.mss_base - (t.ts_ok ? static_cast<std::uint32_t>(wire::TcpOptions::timestamps_len) : 0);
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
  if (seg.has(flag::fin) && n == p.size()) t.data->ooo.hold_fin(seg.seq() + 1 + static_cast<std::uint32_t>(n));
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

}  // namespace weft
