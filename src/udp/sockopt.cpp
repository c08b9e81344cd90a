#include "udp/sockopt.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <limits>

namespace weft::udp {

Status set_socket_option(UdpLayer& udp, std::optional<SocketId> s, int name, int value) {
  switch (name) {
    case SO_REUSEADDR:
      if (!s) return std::errc::bad_file_descriptor;
      return udp.set_reuse_addr(*s, value != 0);
    case SO_RCVBUF:
      if (value <= 0) return std::errc::invalid_argument;
      if (!s) return std::errc::bad_file_descriptor;
      return udp.set_recv_buffer(*s, static_cast<std::size_t>(value));
    case SO_SNDBUF:
      return ok_status();  // datagrams are not buffered for sending
    default:
      return std::errc::no_protocol_option;
  }
}

Result<int> get_socket_option(const UdpLayer& udp, SocketId s, int name) {
  if (name != SO_REUSEADDR && name != SO_RCVBUF) return std::errc::no_protocol_option;
  const auto o = udp.options(s);
  if (!o) return std::errc::bad_file_descriptor;
  if (name == SO_REUSEADDR) return o->reuse_addr ? 1 : 0;
  return static_cast<int>(std::min(o->rcvbuf, static_cast<std::size_t>(std::numeric_limits<int>::max())));
}

}  // namespace weft::udp
