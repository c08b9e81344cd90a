#include "netstat/sock_diag.hpp"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace weft {

namespace {

// Closes the netlink socket on every path out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::errc errc_of(int e) { return static_cast<std::errc>(e); }

constexpr std::size_t kHeader = NLMSG_ALIGN(sizeof(nlmsghdr));

std::string address_text(int family, const std::uint32_t (&words)[4]) {
  std::array<char, INET6_ADDRSTRLEN> buf{};
  ::inet_ntop(family, words, buf.data(), buf.size());
  return buf.data();
}

// The messages of one datagram are walked with memcpy into local headers:
// the kernel aligns them to 4 bytes, and copying keeps the reads defined
// whatever the buffer's alignment.
Result<std::vector<SockDiagTcp>> dump(int family) {
  Fd s;
  s.fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (s.fd < 0) return errc_of(errno);

  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } msg{};
  msg.nlh.nlmsg_len = sizeof(msg);
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.nlh.nlmsg_seq = 1;
  msg.req.sdiag_family = static_cast<std::uint8_t>(family);
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = ~0u;                      // every state, TIME_WAIT and SYN_RECV included
  msg.req.idiag_ext = 1u << (INET_DIAG_INFO - 1);  // struct tcp_info
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(s.fd, &msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0)
    return errc_of(errno);

  std::vector<SockDiagTcp> out;
  // Large enough for the kernel's dump chunks (it fills up to a page or
  // two per datagram); a truncated datagram is reported as EPROTO.
  std::vector<std::uint8_t> buf(64 * 1024);
  for (;;) {
    ssize_t n = ::recv(s.fd, buf.data(), buf.size(), MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errc_of(errno);
    }
    if (static_cast<std::size_t>(n) > buf.size()) return std::errc::protocol_error;
    std::size_t off = 0;
    const auto len = static_cast<std::size_t>(n);
    while (off + sizeof(nlmsghdr) <= len) {
      nlmsghdr h;
      std::memcpy(&h, buf.data() + off, sizeof(h));
      if (h.nlmsg_len < kHeader || off + h.nlmsg_len > len) return std::errc::protocol_error;
      const std::uint8_t* body = buf.data() + off + kHeader;
      const std::size_t body_len = h.nlmsg_len - kHeader;
      if (h.nlmsg_type == NLMSG_DONE) return out;
      if (h.nlmsg_type == NLMSG_ERROR) {
        nlmsgerr e;
        if (body_len < sizeof(e)) return std::errc::protocol_error;
        std::memcpy(&e, body, sizeof(e));
        return e.error < 0 ? errc_of(-e.error) : std::errc::protocol_error;
      }
      if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY && body_len >= sizeof(inet_diag_msg)) {
        inet_diag_msg m;
        std::memcpy(&m, body, sizeof(m));
        SockDiagTcp t;
        t.ipv6 = m.idiag_family == AF_INET6;
        t.inode = m.idiag_inode;
        t.state = m.idiag_state;
        t.local_address = address_text(m.idiag_family, m.id.idiag_src);
        t.remote_address = address_text(m.idiag_family, m.id.idiag_dst);
        t.local_port = ntohs(m.id.idiag_sport);
        t.remote_port = ntohs(m.id.idiag_dport);
        // Attributes follow the message, each 4-byte aligned.
        std::size_t a = NLMSG_ALIGN(sizeof(inet_diag_msg));
        while (a + sizeof(rtattr) <= body_len) {
          rtattr ra;
          std::memcpy(&ra, body + a, sizeof(ra));
          if (ra.rta_len < sizeof(rtattr) || a + ra.rta_len > body_len) break;
          if (ra.rta_type == INET_DIAG_INFO) t.info.assign(body + a + RTA_LENGTH(0), body + a + ra.rta_len);
          a += RTA_ALIGN(ra.rta_len);
        }
        out.push_back(std::move(t));
      }
      off += NLMSG_ALIGN(h.nlmsg_len);
    }
  }
}

}  // namespace

Result<std::vector<SockDiagTcp>> sock_diag_tcp() {
  auto v4 = dump(AF_INET);
  if (!v4) return v4.error();
  auto v6 = dump(AF_INET6);
  // A kernel built without IPv6 has no AF_INET6 handler: IPv4 alone is
  // the whole answer then, as /proc/net/tcp6 is simply absent.
  if (!v6) {
    if (v6.error() == std::errc::no_such_file_or_directory || v6.error() == std::errc::address_family_not_supported)
      return v4;
    return v6.error();
  }
  std::vector<SockDiagTcp> all = std::move(v4.value());
  for (auto& t : v6.value()) all.push_back(std::move(t));
  return all;
}

}  // namespace weft
