#include "link/trace.hpp"

#include <algorithm>
#include <cstdarg>
#include <ostream>

#include "wire/bytes.hpp"

namespace weft {

namespace {

// Appends printf-style into a fixed buffer; never overflows, never
// allocates (the trace runs for every packet).
class LineBuf {
 public:
  explicit LineBuf(std::span<char> out) : out_(out) {
    if (!out_.empty()) out_[0] = '\0';
  }
  __attribute__((format(printf, 2, 3))) void add(const char* fmt, ...) {
    if (out_.empty() || len_ + 1 >= out_.size()) return;
    va_list ap;
    va_start(ap, fmt);
    const int n = std::vsnprintf(out_.data() + len_, out_.size() - len_, fmt, ap);
    va_end(ap);
    if (n > 0) len_ = std::min(len_ + static_cast<std::size_t>(n), out_.size() - 1);
  }
  std::size_t size() const { return len_; }

 private:
  std::span<char> out_;
  std::size_t len_ = 0;
};

using wire::load_be16;
using wire::load_be32;

void add_addr(LineBuf& out, std::span<const std::uint8_t> p, std::size_t at) {
  out.add("%u.%u.%u.%u", p[at], p[at + 1], p[at + 2], p[at + 3]);
}

// Transport summary; `l4` is what follows the IPv4 header.
void decode_transport(LineBuf& out, std::uint8_t proto, std::span<const std::uint8_t> l4) {
  switch (proto) {
    case 1:  // ICMP: type and code are the first two bytes (RFC 792)
      if (l4.size() < 2) return out.add(" icmp truncated");
      return out.add(" icmp type %u code %u", l4[0], l4[1]);
    case 17: {  // UDP (RFC 768)
      if (l4.size() < 8) return out.add(" udp truncated");
      const unsigned len = load_be16(&l4[4]);
      return out.add(" udp %u > %u len %u", load_be16(&l4[0]), load_be16(&l4[2]), len >= 8 ? len - 8 : 0u);
    }
    case 6: {  // TCP (RFC 9293 §3.1)
      if (l4.size() < 20) return out.add(" tcp truncated");
      // Flags in tcpdump's order and letters, so traces read the same.
      static constexpr struct {
        std::uint8_t bit;
        char c;
      } kFlags[] = {{0x01, 'F'}, {0x02, 'S'}, {0x04, 'R'}, {0x08, 'P'},
                    {0x10, '.'}, {0x20, 'U'}, {0x40, 'E'}, {0x80, 'W'}};
      char flags[9];
      std::size_t n = 0;
      for (auto f : kFlags)
        if (l4[13] & f.bit) flags[n++] = f.c;
      flags[n] = '\0';
      return out.add(" tcp %u > %u [%s] seq %u ack %u win %u", load_be16(&l4[0]), load_be16(&l4[2]), flags,
                     load_be32(&l4[4]), load_be32(&l4[8]), load_be16(&l4[14]));
    }
    default:
      return out.add(" proto %u", proto);
  }
}

void decode(LineBuf& out, std::span<const std::uint8_t> p) {
  if (p.empty()) return out.add(" empty");
  const unsigned version = p[0] >> 4;
  if (version == 6) return out.add(" ipv6");
  if (version != 4) return out.add(" not-ip version %u", version);
  if (p.size() < 20) return out.add(" ipv4 truncated");
  const std::size_t ihl = (p[0] & 0x0fu) * 4u;
  if (ihl < 20 || ihl > p.size()) return out.add(" ipv4 bad-ihl %zu", ihl);
  out.add(" ");
  add_addr(out, p, 12);
  out.add(" > ");
  add_addr(out, p, 16);
  // Transport bytes end at the IPv4 total length, not at the buffer's end
  // (a link may pad); take whichever is shorter.
  const std::size_t total = std::min<std::size_t>(std::max<std::size_t>(load_be16(&p[2]), ihl), p.size());
  const std::uint8_t proto = p[9];
  const std::uint16_t frag = load_be16(&p[6]);
  const unsigned offset = (frag & 0x1fffu) * 8u;
  if (offset != 0) {
    // A later fragment carries no transport header to decode.
    return out.add(" proto %u frag off %u%s", proto, offset, (frag & 0x2000u) ? " mf" : "");
  }
  decode_transport(out, proto, p.subspan(ihl, total - ihl));
  if (frag & 0x2000u) out.add(" frag mf");
}

}  // namespace

std::size_t format_trace_line(std::span<char> out, Instant now, TraceDirection dir,
                              std::span<const std::uint8_t> packet) {
  LineBuf line(out);
  line.add("%lld %s %zu", static_cast<long long>(to_micros(now)), dir == TraceDirection::tx ? "tx" : "rx",
           packet.size());
  decode(line, packet);
  return line.size();
}

TraceLink::~TraceLink() {
  if (os_ != nullptr) os_->flush();
  if (file_ != nullptr) std::fflush(file_);
}

void TraceLink::write_line(TraceDirection dir, std::span<const std::uint8_t> packet, Instant now) {
  char buf[256];
  std::size_t n = format_trace_line(std::span(buf, sizeof buf - 1), now, dir, packet);
  buf[n++] = '\n';
  if (os_ != nullptr) os_->write(buf, static_cast<std::streamsize>(n));
  if (file_ != nullptr) std::fwrite(buf, 1, n, file_);
  ++counters_.lines_written;
}

bool TraceLink::send(PacketParts packet, Instant now) {
  write_line(TraceDirection::tx, contiguous(packet, scratch_), now);
  return inner_.send(packet, now);
}

std::size_t TraceLink::receive(std::span<std::uint8_t> buf, Instant now) {
  const std::size_t n = inner_.receive(buf, now);
  if (n > 0) write_line(TraceDirection::rx, buf.first(n), now);
  return n;
}

}  // namespace weft
