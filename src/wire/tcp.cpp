#include "wire/tcp.hpp"

#include <algorithm>
#include <cassert>
#include <ostream>

#include "wire/checksum.hpp"

namespace weft::wire {

// ---- flags -----------------------------------------------------------------

std::string TcpFlags::to_string() const {
  static constexpr const char* kNames[8] = {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"};
  if (v_ == 0) return "none";
  std::string s;
  for (unsigned bit = 0; bit < 8; ++bit) {
    if (!(v_ & (1u << bit))) continue;
    if (!s.empty()) s += '|';
    s += kNames[bit];
  }
  return s;
}

std::ostream& operator<<(std::ostream& os, TcpFlags f) { return os << f.to_string(); }

// ---- options ---------------------------------------------------------------

Parsed<TcpOptions> TcpOptions::parse(std::span<const std::uint8_t> option_bytes) {
  TcpOptions o;
  const std::uint8_t* const b = option_bytes.data();
  const std::size_t n = option_bytes.size();
  std::size_t i = 0;
  while (i < n) {
    const std::uint8_t kind = b[i];
    if (kind == tcp_option::eol) break;  // the rest is padding
    if (kind == tcp_option::nop) {
      ++i;
      continue;
    }
    // Every other kind is kind, length, value; the length counts all three.
    // A length below 2 would loop forever or walk backwards, one past the
    // header would read the payload as options: both are malformed
    // (RFC 9293 §3.1, Options: an implementation must "be prepared to
    // handle an illegal option length (e.g., zero)").
    if (n - i < 2) return ParseError::bad_option;
    const std::size_t len = b[i + 1];
    if (len < 2 || len > n - i) return ParseError::bad_option;
    const std::uint8_t* v = b + i + 2;  // len - 2 value bytes, all inside the header
    switch (kind) {
      case tcp_option::mss:
        if (len != 4) return ParseError::bad_option;
        o.mss = load_be16(v);
        break;
      case tcp_option::window_scale:
        if (len != 3) return ParseError::bad_option;
        o.window_scale = v[0];
        break;
      case tcp_option::sack_permitted:
        if (len != 2) return ParseError::bad_option;
        o.sack_permitted = true;
        break;
      case tcp_option::timestamps:
        if (len != 10) return ParseError::bad_option;
        o.timestamps = TcpTimestamps{TsVal{load_be32(v)}, TsVal{load_be32(v + 4)}};
        break;
      case tcp_option::sack: {
        // RFC 2018 §3: length 2 + 8n. n <= 4 since 2 + 8*5 > 40.
        const std::size_t blocks = (len - 2) / 8;
        if ((len - 2) % 8 != 0 || blocks < 1 || blocks > o.sack.size()) return ParseError::bad_option;
        for (std::size_t k = 0; k < blocks; ++k)
          o.sack[k] = SackBlock{SeqNum{load_be32(v + 8 * k)}, SeqNum{load_be32(v + 8 * k + 4)}};
        for (std::size_t k = blocks; k < o.sack.size(); ++k) o.sack[k] = SackBlock{};
        o.sack_count = static_cast<std::uint8_t>(blocks);
        break;
      }
      default:
        // RFC 9293 §3.1, Options: an option not implemented is ignored
        // without error, skipped by its length field.
        break;
    }
    i += len;
  }
  return o;
}

namespace {

// Bytes of everything but SACK, each item padded to 4 (see emit()).
std::size_t fixed_emit_len(const TcpOptions& o) {
  std::size_t len = 0;
  if (o.mss) len += 4;
  if (o.timestamps)
    len += TcpOptions::timestamps_len;  // [NOP NOP | SACK-permitted] TS
  else if (o.sack_permitted)
    len += 4;                    // NOP NOP SACK-permitted
  if (o.window_scale) len += 4;  // NOP WS
  return len;
}

}  // namespace

std::size_t TcpOptions::sack_blocks_to_emit() const {
  const std::size_t room = (max_len - fixed_emit_len(*this) - sack_len(0)) / 8;  // fixed <= 20, so no underflow
  return std::min<std::size_t>({sack_count, sack.size(), room});
}

std::size_t TcpOptions::emit_len() const {
  const std::size_t blocks = sack_blocks_to_emit();
  return fixed_emit_len(*this) + (blocks > 0 ? sack_len(blocks) : 0);
}

void TcpOptions::emit(std::span<std::uint8_t> buf) const {
  assert(buf.size() >= emit_len());
  std::uint8_t* p = buf.data();
  if (mss) {
    p[0] = tcp_option::mss;
    p[1] = 4;
    store_be16(p + 2, *mss);
    p += 4;
  }
  // SACK-permitted fills the two bytes that would otherwise be NOPs before
  // the timestamps, as Linux sends it on SYNs.
  if (timestamps) {
    if (sack_permitted) {
      p[0] = tcp_option::sack_permitted;
      p[1] = 2;
    } else {
      p[0] = p[1] = tcp_option::nop;
    }
    p[2] = tcp_option::timestamps;
    p[3] = 10;
    store_be32(p + 4, timestamps->val.value());
    store_be32(p + 8, timestamps->ecr.value());
    p += timestamps_len;
  } else if (sack_permitted) {
    p[0] = p[1] = tcp_option::nop;
    p[2] = tcp_option::sack_permitted;
    p[3] = 2;
    p += 4;
  }
  if (window_scale) {
    p[0] = tcp_option::nop;
    p[1] = tcp_option::window_scale;
    p[2] = 3;
    p[3] = *window_scale;
    p += 4;
  }
  if (const std::size_t blocks = sack_blocks_to_emit(); blocks > 0) {
    p[0] = p[1] = tcp_option::nop;
    p[2] = tcp_option::sack;
    p[3] = static_cast<std::uint8_t>(sack_len(blocks) - 2);  // the length counts kind and length, not the NOPs
    p += 4;
    for (std::size_t k = 0; k < blocks; ++k, p += 8) {
      store_be32(p, sack[k].left.value());
      store_be32(p + 4, sack[k].right.value());
    }
  }
}

bool TcpOptions::operator==(const TcpOptions& o) const {
  if (mss != o.mss || window_scale != o.window_scale || sack_permitted != o.sack_permitted ||
      timestamps != o.timestamps || sack_count != o.sack_count)
    return false;
  const std::size_t n = std::min<std::size_t>(sack_count, sack.size());
  return std::equal(sack.begin(), sack.begin() + static_cast<std::ptrdiff_t>(n), o.sack.begin());
}

// ---- segment ---------------------------------------------------------------

Parsed<TcpView> TcpView::parse(std::span<const std::uint8_t> segment, Ipv4Addr src, Ipv4Addr dst,
                               bool verify_checksum) {
  if (segment.size() < min_header_len) return ParseError::truncated;
  // Data offset: "the number of 32-bit words in the TCP header" (RFC 9293
  // §3.1); the fixed header alone is 5.
  const std::size_t header_len = static_cast<std::size_t>(segment[12] >> 4) * 4;
  if (header_len < min_header_len || header_len > segment.size()) return ParseError::bad_header_len;
  auto options = TcpOptions::parse(segment.subspan(min_header_len, header_len - min_header_len));
  if (!options) return options.error();
  if (verify_checksum) {
    // RFC 9293 §3.1 "Checksum": over the pseudo header (whose TCP length is
    // header plus data, "not counting the 12 octets of the pseudo header"),
    // the header and the data. Unlike UDP, 0 is not "no checksum".
    if (segment.size() > 0xffff) return ParseError::bad_checksum;
    const auto tcp_len = static_cast<std::uint16_t>(segment.size());
    if (checksum_fold(checksum_add(segment, pseudo_header_sum(src, dst, IpProto::tcp, tcp_len))) != 0)
      return ParseError::bad_checksum;
  }
  return TcpView{segment, *options};
}

TcpRepr TcpRepr::from(const TcpView& v) {
  return {v.src_port(), v.dst_port(), v.seq(), v.ack(), v.flags(), v.window(), v.urgent(), v.options()};
}

void TcpRepr::emit(std::span<std::uint8_t> segment, Ipv4Addr src, Ipv4Addr dst, std::size_t payload_len,
                   bool compute_checksum) const {
  const std::size_t hlen = header_len();
  assert(segment.size() >= hlen + payload_len);
  assert(hlen + payload_len <= 0xffff);
  std::uint8_t* p = segment.data();
  store_be16(p + 0, src_port.value());
  store_be16(p + 2, dst_port.value());
  store_be32(p + 4, seq.value());
  store_be32(p + 8, ack.value());
  p[12] = static_cast<std::uint8_t>((hlen / 4) << 4);  // reserved bits zero (RFC 9293 §3.1)
  p[13] = flags.value();
  store_be16(p + 14, window);
  store_be16(p + 16, 0);
  store_be16(p + 18, urgent);
  options.emit(segment.subspan(TcpView::min_header_len, hlen - TcpView::min_header_len));
  if (!compute_checksum) return;
  const auto tcp_len = static_cast<std::uint16_t>(hlen + payload_len);
  store_be16(p + 16,
             checksum_fold(checksum_add(segment.first(tcp_len), pseudo_header_sum(src, dst, IpProto::tcp, tcp_len))));
}

}  // namespace weft::wire
