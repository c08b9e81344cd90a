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
    case TcpState::closed: return "CLOSE";
    case TcpState::listen: return "LISTEN";
    case TcpState::syn_sent: return "SYN_SENT";
    case TcpState::syn_received: return "SYN_RECV";
    case TcpState::established: return "ESTABLISHED";
    case TcpState::fin_wait_1: return "FIN_WAIT1";
    case TcpState::fin_wait_2: return "FIN_WAIT2";
    case TcpState::close_wait: return "CLOSE_WAIT";
    case TcpState::closing: return "CLOSING";
    case TcpState::last_ack: return "LAST_ACK";
    case TcpState::time_wait: return "TIME_WAIT";
  }
  return "?";
}

// RFC 9293 §3.3.2: the states after the handshake completed.
constexpr bool is_synchronized(TcpState s) {
  switch (s) {
    case TcpState::closed:
    case TcpState::listen:
    case TcpState::syn_sent:
    case TcpState::syn_received:
      return false;
    case TcpState::established:
    case TcpState::fin_wait_1:
    case TcpState::fin_wait_2:
    case TcpState::close_wait:
    case TcpState::closing:
    case TcpState::last_ack:
    case TcpState::time_wait:
      return true;
  }
  return false;
}

}  // namespace weft::tcp
