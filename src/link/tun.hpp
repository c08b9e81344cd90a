// TunLink: a Linux TUN device (IFF_TUN | IFF_NO_PI) as a Link.
//
// The kernel sees weft as a peer behind a point-to-point interface: packets
// the kernel routes to the device are read by receive(), packets written by
// send() enter the kernel as if they had arrived on that interface. No
// link-layer header, no packet-info prefix: each read/write is one IP packet,
// which is exactly the Link contract.
//
// The fd is non-blocking so the event loop can poll_fd() it with epoll and
// drain it; send() never blocks the loop, it drops and counts instead.
//
// The static helpers configure the kernel side with ioctls on an AF_INET
// datagram socket (what ifconfig does), so tests and the host need no
// `ip` binary and no shell.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "link/link.hpp"
#include "wire/types.hpp"

namespace weft {

struct TunCounters {
  std::uint64_t tx_packets = 0;
  std::uint64_t tx_bytes = 0;
  std::uint64_t tx_dropped_busy = 0;  // write() said EAGAIN: kernel queue full
  std::uint64_t tx_too_big = 0;       // larger than our MTU; refused before write()
  std::uint64_t tx_errors = 0;        // any other write() error (EINVAL: not IPv4/IPv6)
  std::uint64_t rx_packets = 0;
  std::uint64_t rx_bytes = 0;
  std::uint64_t rx_too_big = 0;  // longer than the caller's buffer; dropped, not truncated
  std::uint64_t rx_errors = 0;   // read() errors other than EAGAIN/EINTR

  template <class F>
  void visit(F&& f) const {
    f("tx_packets", tx_packets);
    f("tx_bytes", tx_bytes);
    f("tx_dropped_busy", tx_dropped_busy);
    f("tx_too_big", tx_too_big);
    f("tx_errors", tx_errors);
    f("rx_packets", rx_packets);
    f("rx_bytes", rx_bytes);
    f("rx_too_big", rx_too_big);
    f("rx_errors", rx_errors);
  }
};

class TunLink final : public Link {
 public:
  // Opens /dev/net/tun and attaches to interface `name`, creating it if it
  // does not exist (TUNSETIFF creates a non-persistent device that vanishes
  // when this fd closes). `name` may contain "%d" to let the kernel pick a
  // number; name() reports the name the kernel chose. `mtu` is what send()
  // enforces; use set_mtu() to make the kernel side agree.
  static Result<std::unique_ptr<TunLink>> open(const std::string& name, std::size_t mtu);

  // Kernel-side configuration (needs CAP_NET_ADMIN in the device's netns).
  static Status set_up(const std::string& name);
  static Status set_mtu(const std::string& name, std::size_t mtu);
  // The kernel's queue of packets waiting for us to read them (its TX
  // queue; 500 by default for TUN). A burst longer than it is dropped by the
  // kernel before weft ever sees it, so the host raises it.
  static Status set_tx_queue_len(const std::string& name, std::size_t packets);
  // Assigns `kernel_side` (address and prefix) to the interface. On a TUN
  // device this installs a route for the prefix via the device, so the
  // kernel reaches weft's addresses in that prefix through it.
  static Status add_address(const std::string& name, Ipv4Cidr kernel_side);

  ~TunLink() override;
  TunLink(const TunLink&) = delete;
  TunLink& operator=(const TunLink&) = delete;

  // One writev(): the parts leave as one packet without being joined.
  using Link::send;
  bool send(PacketParts packet, Instant now) override;
  std::size_t receive(std::span<std::uint8_t> buf, Instant now) override;
  int poll_fd() const override { return fd_; }
  std::size_t mtu() const override { return mtu_; }
  std::string name() const override { return name_; }

  const TunCounters& counters() const { return counters_; }

 private:
  TunLink(int fd, std::string name, std::size_t mtu) : fd_(fd), name_(std::move(name)), mtu_(mtu) {}

  int fd_;
  std::string name_;
  std::size_t mtu_;
  TunCounters counters_;
  // Used only when a caller passes a buffer shorter than the largest possible
  // packet: reading into it lets us tell "too long" from "truncated". Grown
  // once, then reused.
  std::vector<std::uint8_t> scratch_;
};

}  // namespace weft
