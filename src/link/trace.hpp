// TraceLink: a decorator that writes one line per packet crossing a Link,
// like smoltcp's Tracer: the quickest way to see what a host is doing.
//
//   1000250 tx 60 192.0.2.1 > 192.0.2.2 tcp 40000 > 80 [S] seq 1000 ack 0 win 65535
//   1000500 rx 32 192.0.2.2 > 192.0.2.1 udp 53 > 40001 len 4
//   1000750 rx 84 192.0.2.2 > 192.0.2.1 icmp type 0 code 0
//
// Fields: time in µs (the `now` passed in), direction, packet length, then a
// decode of the IPv4 header and the transport ports (or ICMP type/code). The
// decode reads raw bytes (with wire/bytes.hpp) and its own bounds checks
// rather than the wire parsers, so a malformed packet is described ("ipv4
// truncated") instead of hidden.
#pragma once

#include <cstdint>
#include <cstdio>
#include <iosfwd>
#include <memory>
#include <span>
#include <string>

#include "link/link.hpp"

namespace weft {

enum class TraceDirection : std::uint8_t { tx, rx };

// Formats the line for one packet into `out` (no trailing newline; NUL
// terminated; cut short if `out` is too small) and returns its length.
// 256 bytes always suffice.
std::size_t format_trace_line(std::span<char> out, Instant now, TraceDirection dir,
                              std::span<const std::uint8_t> packet);

struct TraceCounters {
  std::uint64_t lines_written = 0;

  template <class F>
  void visit(F&& f) const {
    f("lines_written", lines_written);
  }
};

class TraceLink final : public LinkDecorator {
 public:
  // `inner` and the stream must outlive the TraceLink (unless owned).
  TraceLink(Link& inner, std::ostream& out) : LinkDecorator(inner), os_(&out) {}
  TraceLink(Link& inner, std::FILE* out) : LinkDecorator(inner), file_(out) {}
  TraceLink(std::unique_ptr<Link> inner, std::ostream& out) : LinkDecorator(std::move(inner)), os_(&out) {}
  TraceLink(std::unique_ptr<Link> inner, std::FILE* out) : LinkDecorator(std::move(inner)), file_(out) {}
  // Flushes the stream so that a trace is complete when the link goes away.
  ~TraceLink() override;

  // Traced when offered, before the inner link decides (a refused packet is
  // still something the stack tried to send).
  using Link::send;
  bool send(PacketParts packet, Instant now) override;
  std::size_t receive(std::span<std::uint8_t> buf, Instant now) override;
  const TraceCounters& counters() const { return counters_; }

 private:
  void write_line(TraceDirection dir, std::span<const std::uint8_t> packet, Instant now);

  std::ostream* os_ = nullptr;
  std::FILE* file_ = nullptr;
  TraceCounters counters_;
  std::vector<std::uint8_t> scratch_;  // a packet sent in parts, joined to be decoded
};

}  // namespace weft
