// Segment text and FIN on arrival (RFC 9293 §3.10.7.4, seventh and
// eighth steps): in-window text into the receive ring or held out of order,
// D-SACK reports of duplicates (RFC 2883 §4), the receiver's ACK policy
// (quick-ACK, delayed ACK: RFC 1122 §4.2.3.2, RFC 5681 §4.2), and the state
// the FIN moves to.
#include <algorithm>

#include "tcp/tcp.hpp"

namespace weft {

using tcp::TcpState;

void TcpLayer::process_text(Tcb& t, SeqNum seq, std::span<const std::uint8_t> payload, bool dsack_noted, Instant now) {
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
  std::uint32_t off = seq_len(t.rcv_nxt, seq);
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

}  // namespace weft
