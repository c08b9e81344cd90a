// Listeners (RFC 9293 §3.10.7.2, LISTEN): each owns its SYN queue (children
// in SYN-RECEIVED) and its accept queue (children established, waiting for
// accept()), both bounded by the backlog.
#include <algorithm>

#include "tcp/tcp.hpp"

namespace weft {

using tcp::TcpState;
namespace flag = wire::tcp_flag;

void TcpLayer::input_listen(Tcb& l, Ipv4Addr src, Ipv4Addr dst, const wire::TcpView& seg, Instant now) {
  // first, check for a RST: "An incoming RST segment could not be valid ... ignore it"
  if (seg.has(flag::rst)) return;
  // second, check for an ACK: "form a reset segment <SEQ=SEG.ACK><CTL=RST>"
  if (seg.has(flag::ack)) {
    ++counters_.no_socket;
    send_reset_reply(src, dst, seg, now);
    return;
  }
  // third, check for a SYN
  if (!seg.has(flag::syn)) return;  // "drop the segment and return"
  if (l.syn_queue.size() >= l.backlog || l.accept_queue.size() >= l.backlog) {
    // A full queue drops the SYN silently; the peer retries (Linux does
    // the same without syncookies).
    ++counters_.listen_overflows;
    return;
  }
  const SocketId lid = l.id;
  Tcb& c = create();  // may grow sockets_, but Tcbs never move: l stays valid
  c.opt = l.opt;
  c.tuple = FourTuple{{dst, seg.dst_port()}, {src, seg.src_port()}};
  c.bound = c.tuple.local;
  conns_.insert(c.tuple, socket_slot(c.id));
  c.in_index = true;
  c.parent = lid;
  l.syn_queue.push_back(c.id);
  init_connection(c, now);
  c.state = TcpState::syn_received;
  // "Set RCV.NXT to SEG.SEQ+1, IRS is set to SEG.SEQ ... ISS should be selected"
  c.irs = seg.seq();
  c.rcv_nxt = c.irs + 1;
  c.rcv_adv = c.rcv_nxt;
  c.rcv_free_edge = c.rcv_nxt;
  apply_syn_options(c, seg.options());
  // RFC 3168 §6.1.1: an ECN-setup SYN (ECE and CWR) is answered with an
  // ECN-setup SYN-ACK; weft always accepts, as Linux does by default.
  c.ecn_ok = seg.has(flag::ece) && seg.has(flag::cwr);
  if (c.ecn_ok) ++counters_.ecn_negotiated;
  init_send_seq(c, make_isn(c.tuple, now));
  c.snd_wnd = seg.window();  // unscaled in a SYN
  c.max_snd_wnd = c.snd_wnd;
  c.snd_wl1 = seg.seq();
  c.snd_wl2 = c.iss;
  ++counters_.passive_opens;
  // "<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>" (acknowledging the SYN only);
  // "any other control or text should be queued for processing later
  // after the ESTABLISHED state has been reached". Linux and FreeBSD
  // without TCP Fast Open discard the text instead and let the peer
  // retransmit it; weft keeps it as the RFC says. (A FIN on the SYN is not
  // kept: the peer retransmits it.)
  hold_syn_text(c, seg);
  send_syn(c, now);
  arm_rtx(c, now);
  rearm(c);
}

void TcpLayer::child_established(Tcb& c, Instant) {
  if (!c.parent) {
    notify(c);  // simultaneous open or an active open completing via SYN-RECEIVED
    return;
  }
  Tcb* l = get(*c.parent);
  if (!l) return;
  auto& sq = l->syn_queue;
  sq.erase(std::remove(sq.begin(), sq.end(), c.id), sq.end());
  l->accept_queue.push_back(c.id);
  notify(*l);
}

void TcpLayer::detach_child(Tcb& c) {
  Tcb* l = get(*c.parent);
  c.parent.reset();
  if (!l) return;
  auto& sq = l->syn_queue;
  sq.erase(std::remove(sq.begin(), sq.end(), c.id), sq.end());
  auto& aq = l->accept_queue;
  aq.erase(std::remove(aq.begin(), aq.end(), c.id), aq.end());
}

}  // namespace weft
