// The eleven states of a TCP connection (RFC 9293 §3.3.2), with the names
// netstat prints.
#pragma once

#include <cstdint>

namespace weft::tcp {

enum class TcpState : std::uint8_t {
  closed,
  listen,
  syn_sent,
  syn_received,
  established,
  fin_wait_1,
  fin_wait_2,
  close_wait,
  closing,
  last_ack,
  time_wait,
};

constexpr const char* state_name(TcpState s) {
  switch (s) {
    case TcpState::closed:
      return "CLOSE";
    case TcpState::listen:
      return "LISTEN";
    case TcpState::syn_sent:
      return "SYN_SENT";
    case TcpState::syn_received:
      return "SYN_RECV";
    case TcpState::established:
      return "ESTABLISHED";
    case TcpState::fin_wait_1:
      return "FIN_WAIT1";
    case TcpState::fin_wait_2:
      return "FIN_WAIT2";
    case TcpState::close_wait:
      return "CLOSE_WAIT";
    case TcpState::closing:
      return "CLOSING";
    case TcpState::last_ack:
      return "LAST_ACK";
    case TcpState::time_wait:
      return "TIME_WAIT";
  }
  return "?";
}

// The predicates below are one or two comparisons because of the order
// above (as FreeBSD's TCPS_HAVEESTABLISHED is): the handshake states, then
// the synchronized ones, those that still receive text before those that
// have received the peer's FIN. Nothing reads the numbers themselves: names
// (state_name) and Linux's tcpi_state numbering (sockopt.cpp) are mapped
// state by state.

// RFC 9293 §3.3.2: the states after the handshake completed.
constexpr bool is_synchronized(TcpState s) { return s >= TcpState::established; }

// SYN-SENT and SYN-RECEIVED: our SYN is out and the handshake not done; the
// window these states send is never scaled (RFC 7323 §2.2).
constexpr bool is_handshaking(TcpState s) { return s >= TcpState::syn_sent && s <= TcpState::syn_received; }

// The peer's FIN has been processed: CLOSE-WAIT, CLOSING, LAST-ACK,
// TIME-WAIT (FreeBSD's TCPS_HAVERCVDFIN).
constexpr bool has_received_fin(TcpState s) { return s >= TcpState::close_wait; }

// The states whose segment text is processed: ESTABLISHED, FIN-WAIT-1 and
// FIN-WAIT-2 (RFC 9293 §3.10.7.4 seventh; after a FIN "this should not
// occur"). Also those in which a read may open the window.
constexpr bool accepts_text(TcpState s) { return is_synchronized(s) && !has_received_fin(s); }

// The states that may send data, a FIN or retransmissions: synchronized and
// not TIME-WAIT.
constexpr bool sends_data(TcpState s) { return is_synchronized(s) && s != TcpState::time_wait; }

}  // namespace weft::tcp
