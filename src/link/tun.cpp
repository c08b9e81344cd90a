#include "link/tun.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

namespace weft {

namespace {

// The largest IP packet (IPv4 total length is 16 bits). Without IFF_VNET_HDR
// the kernel never hands a TUN reader anything larger.
constexpr std::size_t kMaxPacket = 65535;

std::errc errno_errc() { return static_cast<std::errc>(errno); }

// Closes an fd on scope exit; the helpers below open a socket per call, which
// is fine for configuration (not a hot path).
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Fills ifr_name, rejecting names the kernel would silently truncate.
bool fill_name(ifreq& ifr, const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return false;
  std::memset(&ifr, 0, sizeof ifr);
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  return true;
}

// One ioctl on a throwaway AF_INET datagram socket: interface ioctls need a
// socket of the address family they configure, not the TUN fd.
Status inet_ioctl(unsigned long request, ifreq& ifr) {
  FdGuard s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (s.get() < 0) return errno_errc();
  if (::ioctl(s.get(), request, &ifr) < 0) return errno_errc();
  return ok_status();
}

void put_inet(sockaddr& sa, std::uint32_t host_order) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(host_order);
  static_assert(sizeof sin <= sizeof sa);
  std::memcpy(&sa, &sin, sizeof sin);
}

}  // namespace

Result<std::unique_ptr<TunLink>> TunLink::open(const std::string& name, std::size_t mtu) {
  ifreq ifr;
  if (!fill_name(ifr, name) || mtu == 0 || mtu > kMaxPacket) return std::errc::invalid_argument;
  FdGuard fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) return errno_errc();
  // IFF_NO_PI: no 4-byte flags/proto prefix, so reads and writes are bare IP
  // packets. The kernel infers the protocol from the version nibble.
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) return errno_errc();
  // The kernel writes back the actual name (it expands "%d").
  std::string actual(ifr.ifr_name, ::strnlen(ifr.ifr_name, IFNAMSIZ));
  return std::unique_ptr<TunLink>(new TunLink(fd.release(), std::move(actual), mtu));
}

Status TunLink::set_up(const std::string& name) {
  ifreq ifr;
  if (!fill_name(ifr, name)) return std::errc::invalid_argument;
  // Read-modify-write: SIOCSIFFLAGS replaces all flags, and the device has
  // others (POINTOPOINT, NOARP, MULTICAST) that must survive.
  if (auto st = inet_ioctl(SIOCGIFFLAGS, ifr); !st) return st;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  return inet_ioctl(SIOCSIFFLAGS, ifr);
}

Status TunLink::set_mtu(const std::string& name, std::size_t mtu) {
  ifreq ifr;
  if (!fill_name(ifr, name) || mtu > static_cast<std::size_t>(INT_MAX)) return std::errc::invalid_argument;
  ifr.ifr_mtu = static_cast<int>(mtu);
  return inet_ioctl(SIOCSIFMTU, ifr);
}

Status TunLink::set_tx_queue_len(const std::string& name, std::size_t packets) {
  ifreq ifr;
  if (!fill_name(ifr, name) || packets > static_cast<std::size_t>(INT_MAX)) return std::errc::invalid_argument;
  ifr.ifr_qlen = static_cast<int>(packets);
  return inet_ioctl(SIOCSIFTXQLEN, ifr);
}

Status TunLink::add_address(const std::string& name, Ipv4Cidr kernel_side) {
  ifreq ifr;
  if (!fill_name(ifr, name) || kernel_side.prefix_len > 32) return std::errc::invalid_argument;
  // On a point-to-point device SIOCSIFADDR installs the address as a /32;
  // SIOCSIFNETMASK then widens it, and the kernel adds the prefix route via
  // the device (once it is up), the same result as `ip addr add a/len dev`.
  put_inet(ifr.ifr_addr, kernel_side.addr.value());
  if (auto st = inet_ioctl(SIOCSIFADDR, ifr); !st) return st;
  fill_name(ifr, name);
  put_inet(ifr.ifr_netmask, kernel_side.mask());
  return inet_ioctl(SIOCSIFNETMASK, ifr);
}

TunLink::~TunLink() {
  if (fd_ >= 0) ::close(fd_);
}

bool TunLink::send(PacketParts packet, Instant /*now*/) {
  const std::size_t size = packet_size(packet);
  if (size > mtu_) {
    ++counters_.tx_too_big;
    return false;
  }
  if (packet.size() > kMaxParts) {
    ++counters_.tx_errors;
    return false;
  }
  std::array<iovec, kMaxParts> iov;
  for (std::size_t i = 0; i < packet.size(); ++i)
    iov[i] = iovec{const_cast<std::uint8_t*>(packet[i].data()), packet[i].size()};  // writev only reads
  for (;;) {
    ssize_t n = ::writev(fd_, iov.data(), static_cast<int>(packet.size()));
    if (n >= 0) {
      // A TUN write is all-or-nothing: one writev, one packet.
      ++counters_.tx_packets;
      counters_.tx_bytes += size;
      return true;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      ++counters_.tx_dropped_busy;
    } else {
      ++counters_.tx_errors;
    }
    return false;
  }
}

std::size_t TunLink::receive(std::span<std::uint8_t> buf, Instant /*now*/) {
  // A read into a buffer shorter than the packet silently truncates it, so
  // a short caller buffer is served through scratch_, where every packet
  // fits, and oversize packets are dropped whole.
  const bool direct = buf.size() >= kMaxPacket;
  if (!direct && scratch_.size() < kMaxPacket) scratch_.resize(kMaxPacket);
  std::uint8_t* dst = direct ? buf.data() : scratch_.data();
  const std::size_t cap = direct ? buf.size() : scratch_.size();
  // Loop so that dropping one oversize packet does not hide the next one.
  for (;;) {
    ssize_t n = ::read(fd_, dst, cap);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) ++counters_.rx_errors;
      return 0;
    }
    if (n == 0) return 0;
    const auto len = static_cast<std::size_t>(n);
    if (len > buf.size()) {
      ++counters_.rx_too_big;
      continue;
    }
    if (!direct) std::copy_n(scratch_.data(), len, buf.data());
    ++counters_.rx_packets;
    counters_.rx_bytes += len;
    return len;
  }
}

}  // namespace weft
