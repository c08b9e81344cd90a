// The one interface every link implements: TUN, the IP-in-UDP tunnel, the
// simulated network, and the decorators (pcap, trace) that wrap any of them.
//
// A link moves whole IPv4/IPv6 packets with no link-layer header. Time is
// passed in, so a simulated link can run on simulated time and a decorator
// can stamp what it records with the caller's clock (deterministic pcaps).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "base/time.hpp"

namespace weft {

class Link {
 public:
  virtual ~Link() = default;

  // Transmits one packet at `now`. Returns false when the link refused it
  // (too large for the MTU, queue full, I/O error); the link counts why.
  virtual bool send(std::span<const std::uint8_t> packet, Instant now) = 0;

  // Copies the next packet ready at `now` into `buf` and returns its length,
  // or 0 when none is ready. A packet longer than `buf` is dropped and
  // counted, never truncated. `buf` should hold at least 65535 bytes.
  virtual std::size_t receive(std::span<std::uint8_t> buf, Instant now) = 0;

  // The earliest time at which receive() will have a packet that it does not
  // have now (a simulated link's next delivery), or nullopt.
  virtual std::optional<Instant> next_deadline() const { return std::nullopt; }

  // A descriptor that is readable when receive() may return data, for the
  // event loop's epoll; -1 for links without one (simulated).
  virtual int poll_fd() const { return -1; }

  // Largest packet the link carries, in bytes (IP header included).
  virtual std::size_t mtu() const = 0;

  virtual std::string name() const = 0;
};

// A link that wraps another to observe it (pcap, trace): everything but
// send() and receive() is forwarded. The inner link is either borrowed (it
// must outlive the decorator) or owned.
class LinkDecorator : public Link {
 public:
  LinkDecorator(const LinkDecorator&) = delete;
  LinkDecorator& operator=(const LinkDecorator&) = delete;

  std::optional<Instant> next_deadline() const override { return inner_.next_deadline(); }
  int poll_fd() const override { return inner_.poll_fd(); }
  std::size_t mtu() const override { return inner_.mtu(); }
  std::string name() const override { return inner_.name(); }

 protected:
  explicit LinkDecorator(Link& inner) : inner_(inner) {}
  explicit LinkDecorator(std::unique_ptr<Link> owned) : owned_(std::move(owned)), inner_(*owned_) {}

 private:
  std::unique_ptr<Link> owned_;  // declared before inner_, which may refer to it

 protected:
  Link& inner_;
};

}  // namespace weft
