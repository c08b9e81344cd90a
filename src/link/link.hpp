// The one interface every link implements: TUN, the IP-in-UDP tunnel, the
// simulated network, and the decorators (pcap, trace) that wrap any of them.
//
// A link moves whole IPv4/IPv6 packets with no link-layer header. Time is
// passed in, so a simulated link can run on simulated time and a decorator
// can stamp what it records with the caller's clock (deterministic pcaps).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/time.hpp"

namespace weft {

// One packet as the parts it is sent from, in order (an iovec): a header
// built in one buffer and a payload left where it lies, say, leave as one
// packet without first being copied together. Empty parts are allowed.
using PacketParts = std::span<const std::span<const std::uint8_t>>;

// The packet's length: the sum of its parts.
inline std::size_t packet_size(PacketParts parts) {
  std::size_t n = 0;
  for (auto p : parts) n += p.size();
  return n;
}

// The packet as one span: the only non-empty part itself, else its parts
// copied into `scratch` (grown once, reused: no allocation per packet), for
// a link that must see the bytes contiguous (the simulator's queue, the
// pcap writer, the trace decoder).
inline std::span<const std::uint8_t> contiguous(PacketParts parts, std::vector<std::uint8_t>& scratch) {
  const std::span<const std::uint8_t>* only = nullptr;
  std::size_t nonempty = 0;
  for (const auto& p : parts)
    if (!p.empty()) {
      only = &p;
      ++nonempty;
    }
  if (nonempty == 0) return {};
  if (nonempty == 1) return *only;
  scratch.resize(packet_size(parts));
  std::size_t off = 0;
  for (auto p : parts) {
    if (p.empty()) continue;
    std::memcpy(scratch.data() + off, p.data(), p.size());
    off += p.size();
  }
  return scratch;
}

// Copies the packet's first out.size() bytes (fewer if it is shorter) into
// out; returns how many. For a link that only looks at a header.
inline std::size_t copy_prefix(PacketParts parts, std::span<std::uint8_t> out) {
  std::size_t n = 0;
  for (auto p : parts) {
    const std::size_t k = std::min(p.size(), out.size() - n);
    if (k == 0) continue;
    std::memcpy(out.data() + n, p.data(), k);
    n += k;
  }
  return n;
}

class Link {
 public:
  // The most parts a packet may be sent in (IOV_MAX is far larger; a
  // header and a payload wrapped in a ring need three).
  static constexpr std::size_t kMaxParts = 8;

  virtual ~Link() = default;

  // Transmits one packet, given as its parts (at most kMaxParts), at `now`.
  // Returns false when the link refused it (too large for the MTU, too
  // many parts, queue full, I/O error); the link counts why.
  virtual bool send(PacketParts packet, Instant now) = 0;
  // The packet in one span. A class that overrides send(PacketParts)
  // brings this back in with `using Link::send;`.
  bool send(std::span<const std::uint8_t> packet, Instant now) {
    const std::span<const std::uint8_t> one[1] = {packet};
    return send(PacketParts(one), now);
  }

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
