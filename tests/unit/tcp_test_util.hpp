// Helpers for TCP unit tests: a Stack with a peer that is the test itself,
// crafting segments with TcpRepr and reading the Stack's output with TcpView
// (the smoltcp / gVisor style: segments in, segments expected out).
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "stack/stack.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

namespace weft::tcptest {

namespace flag = wire::tcp_flag;

inline const Ipv4Addr kHost(192, 0, 2, 2);
inline const Ipv4Addr kPeer(192, 0, 2, 1);
inline constexpr Port kSrvPort{80};
inline constexpr Port kPeerPort{40000};
inline constexpr std::uint32_t kPeerIsn = 1000;

struct Options {
  bool sack = false, timestamps = false, wscale = false;
  std::optional<std::uint32_t> iss = std::nullopt;  // the host's ISS (TcpConfig::iss_for_tests); unset: RFC 6528's hash
};

inline StackConfig config(Options o = {}) {
  StackConfig c;
  c.address = Ipv4Cidr{kHost, 24};
  c.seed = 42;
  c.tcp.sack = o.sack;
  c.tcp.timestamps = o.timestamps;
  c.tcp.window_scaling = o.wscale;
  c.tcp.rcvbuf = 65535;
  c.tcp.sndbuf = 65536;
  c.tcp.msl = 1s;
  c.tcp.iss_for_tests = o.iss;
  return c;
}

// A segment the stack sent.
struct Seg {
  wire::TcpRepr h;
  std::vector<std::uint8_t> data;
  std::uint8_t ecn = 0;  // the IP header's ECN field (wire::ecn)
  bool has(wire::TcpFlags f) const { return h.flags.has(f); }
};

// A sequence number as 8 hex digits, for test names and messages.
inline std::string hex(std::uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "%08x", v);
  return b;
}
// The gtest name of a test parameterised on a sequence number: seq_XXXXXXXX.
inline std::string seq_param_name(const ::testing::TestParamInfo<std::uint32_t>& i) { return "seq_" + hex(i.param); }

// A data segment the host sent, as [seq, seq + len).
struct Sent {
  std::uint32_t seq = 0, len = 0;
  bool operator==(const Sent&) const = default;
};
inline void PrintTo(const Sent& s, std::ostream* os) { *os << "{seq " << hex(s.seq) << ", len " << s.len << "}"; }

// Designated initializers that name only some fields are the point of
// SegMatch; g++ 12's -Wextra warns about the fields left out.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

// A declarative matcher for one segment (gVisor's checker.TCP, smoltcp's
// send!): name only what the rule says, in one literal, e.g.
//   EXPECT_SEG(out[0], {.flags = flag::ack, .ack = e.peer_nxt + 100, .sack = {{{3001, 4001}}}});
// `flags` must match exactly; `sack` lists the blocks in order (empty: none).
struct SegMatch {
  std::optional<wire::TcpFlags> flags;
  std::optional<std::uint32_t> seq, ack;
  std::optional<std::uint16_t> window;
  std::optional<std::size_t> len;
  std::optional<std::vector<std::pair<std::uint32_t, std::uint32_t>>> sack;
  std::optional<std::uint32_t> tsval, tsecr;
  std::optional<std::uint8_t> ecn;  // the IP ECN field
};

inline std::string describe(const Seg& g) {
  std::ostringstream o;
  o << "[";
  for (auto [bit, name] :
       {std::pair{flag::syn, 'S'}, {flag::fin, 'F'}, {flag::rst, 'R'}, {flag::psh, 'P'}, {flag::ack, '.'}})
    if (g.h.flags & bit) o << name;
  if (g.h.flags & flag::ece) o << 'E';
  if (g.h.flags & flag::cwr) o << 'W';
  o << "] seq " << g.h.seq.value() << " ack " << g.h.ack.value() << " win " << g.h.window << " len " << g.data.size();
  for (std::size_t i = 0; i < g.h.options.sack_count; ++i)
    o << " sack " << g.h.options.sack[i].left.value() << "-" << g.h.options.sack[i].right.value();
  if (g.h.options.timestamps)
    o << " ts " << g.h.options.timestamps->val.value() << "/" << g.h.options.timestamps->ecr.value();
  if (g.ecn) o << " ecn " << int{g.ecn};
  return o.str();
}

inline ::testing::AssertionResult seg_matches(const Seg& g, const SegMatch& m) {
  std::ostringstream why;
  bool first = true;
  auto check = [&](bool ok, const char* what, auto want) {
    if (ok) return;
    why << (first ? "" : ", ") << what << " " << want << " wanted";
    first = false;
  };
  if (m.flags) check(g.h.flags == *m.flags, "flags", *m.flags);
  if (m.seq) check(g.h.seq == SeqNum{*m.seq}, "seq", *m.seq);
  if (m.ack) check(g.h.ack == SeqNum{*m.ack}, "ack", *m.ack);
  if (m.window) check(g.h.window == *m.window, "window", *m.window);
  if (m.len) check(g.data.size() == *m.len, "len", *m.len);
  if (m.sack) {
    bool same = m.sack->size() == g.h.options.sack_count;
    for (std::size_t i = 0; same && i < m.sack->size(); ++i)
      same = g.h.options.sack[i].left == SeqNum{(*m.sack)[i].first} &&
             g.h.options.sack[i].right == SeqNum{(*m.sack)[i].second};
    std::ostringstream want;
    for (std::size_t i = 0; i < m.sack->size(); ++i)
      want << (i ? " " : "") << (*m.sack)[i].first << "-" << (*m.sack)[i].second;
    check(same, "sack", m.sack->empty() ? std::string("none") : want.str());
  }
  const auto& ts = g.h.options.timestamps;
  if (m.tsval) check(ts && ts->val.value() == *m.tsval, "tsval", *m.tsval);
  if (m.tsecr) check(ts && ts->ecr.value() == *m.tsecr, "tsecr", *m.tsecr);
  if (m.ecn) check(g.ecn == *m.ecn, "ecn", int{*m.ecn});
  if (first) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << describe(g) << ": " << why.str();
}

#define EXPECT_SEG(seg, ...) EXPECT_TRUE(::weft::tcptest::seg_matches((seg), ::weft::tcptest::SegMatch __VA_ARGS__))
#define ASSERT_SEG(seg, ...) ASSERT_TRUE(::weft::tcptest::seg_matches((seg), ::weft::tcptest::SegMatch __VA_ARGS__))

inline std::vector<Seg> drain(Stack& s) {
  std::vector<Seg> out;
  s.drain([&](std::span<const std::uint8_t> p) {
    auto ip = wire::Ipv4View::parse(p);
    EXPECT_TRUE(ip);
    if (!ip) return;
    EXPECT_TRUE(ip->dont_fragment());
    auto v = wire::TcpView::parse(ip->payload(), ip->src(), ip->dst());
    EXPECT_TRUE(v) << "the stack sent a malformed segment";
    if (!v) return;
    out.push_back(Seg{wire::TcpRepr::from(*v), {v->payload().begin(), v->payload().end()}, ip->ecn()});
  });
  return out;
}

// The segments that carried data, in the order the host sent them (pure
// ACKs left out).
inline std::vector<Sent> data_sent(Stack& s) {
  std::vector<Sent> v;
  for (const Seg& g : drain(s))
    if (!g.data.empty()) v.push_back(Sent{g.h.seq.value(), static_cast<std::uint32_t>(g.data.size())});
  return v;
}

inline std::vector<std::uint8_t> packet(const wire::TcpRepr& h, std::span<const std::uint8_t> data = {},
                                        Ipv4Addr src = kPeer, Ipv4Addr dst = kHost, std::uint8_t ecn = 0) {
  const std::size_t hl = h.header_len();
  std::vector<std::uint8_t> p(20 + hl + data.size());
  if (!data.empty()) std::memcpy(p.data() + 20 + hl, data.data(), data.size());
  h.emit(std::span<std::uint8_t>(p).subspan(20), src, dst, data.size());
  wire::Ipv4Repr ip;
  ip.src = src;
  ip.dst = dst;
  ip.protocol = static_cast<std::uint8_t>(IpProto::tcp);
  ip.dscp_ecn = ecn;
  ip.payload_len = static_cast<std::uint16_t>(hl + data.size());
  ip.emit(std::span<std::uint8_t>(p).first(20));
  return p;
}

// ICMP destination unreachable with `code` from the peer, quoting the first
// 28 bytes (IP header and 8 of TCP) of the IP packet `quoted` the host sent.
inline std::vector<std::uint8_t> icmp_unreachable(std::uint8_t code, std::span<const std::uint8_t> quoted) {
  std::vector<std::uint8_t> p(20 + 8 + 28);
  std::memcpy(p.data() + 20 + 8, quoted.data(), 28);
  wire::IcmpRepr::dest_unreachable(code, 28).emit(std::span<std::uint8_t>(p).subspan(20));
  wire::Ipv4Repr ip;
  ip.src = kPeer;
  ip.dst = kHost;
  ip.protocol = static_cast<std::uint8_t>(IpProto::icmp);
  ip.payload_len = 8 + 28;
  ip.emit(std::span<std::uint8_t>(p).first(20));
  return p;
}

inline wire::TcpRepr hdr(std::uint32_t seq, std::uint32_t ack, wire::TcpFlags flags, std::uint16_t window = 65535,
                         Port from = kPeerPort, Port to = kSrvPort) {
  wire::TcpRepr h;
  h.src_port = from;
  h.dst_port = to;
  h.seq = SeqNum{seq};
  h.ack = SeqNum{ack};
  h.flags = flags;
  h.window = window;
  return h;
}

inline std::vector<std::uint8_t> bytes(std::size_t n, std::uint8_t seed = 1) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 7);
  return v;
}

inline std::uint64_t counter(const Stack& s, const std::string& name) {
  for (auto& [k, v] : s.all_counters())
    if (k == name) return v;
  ADD_FAILURE() << "no counter " << name;
  return 0;
}

// A connection accepted by a listener on kSrvPort: the peer is at
// peer_isn+1 (kPeerIsn unless the test chose another) and the host's next
// sequence number is iss+1.
struct Established {
  SocketId listener = 0, id = 0;
  std::uint32_t iss = 0;  // the host's ISS
  std::uint32_t peer_nxt = kPeerIsn + 1;
  std::uint32_t host_nxt() const { return iss + 1; }
};

inline Established established(Stack& s, Instant now, wire::TcpOptions syn_opts = {},
                               std::uint32_t peer_isn = kPeerIsn) {
  Established e;
  e.peer_nxt = peer_isn + 1;
  auto& tcp = s.tcp();
  e.listener = tcp.open();
  EXPECT_TRUE(tcp.bind(e.listener, {Ipv4Addr::any(), kSrvPort}));
  EXPECT_TRUE(tcp.listen(e.listener, 4));
  auto syn = hdr(peer_isn, 0, flag::syn);
  if (!syn_opts.mss) syn_opts.mss = 1460;
  syn.options = syn_opts;
  s.receive(packet(syn), now);
  auto out = drain(s);
  EXPECT_EQ(out.size(), 1u);
  if (out.empty()) return e;
  EXPECT_SEG(out[0], {.flags = flag::syn | flag::ack, .ack = peer_isn + 1, .len = 0});
  e.iss = out[0].h.seq.value();
  auto ack = hdr(peer_isn + 1, e.iss + 1, flag::ack);
  if (syn_opts.timestamps)
    ack.options.timestamps = wire::TcpTimestamps{
        syn_opts.timestamps->val + 1, out[0].h.options.timestamps ? out[0].h.options.timestamps->val : TsVal{0}};
  s.receive(packet(ack), now);
  auto a = tcp.accept(e.listener);
  EXPECT_TRUE(a);
  if (a) e.id = a->id;
  EXPECT_TRUE(drain(s).empty());
  return e;
}

// Linux-style quick-ACK (tcp_quickack_test.cpp) ACKs the first data
// segments of a connection at once. For a test about the delayed-ACK rules
// that come after: 16 one-byte segments (the most quick-ACK takes), read
// and acknowledged, so the next segment is the test's own. Moves
// e.peer_nxt past them.
inline void spend_quick_acks(Stack& s, Established& e, Instant now) {
  for (int i = 0; i < 16; ++i) {
    s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack), bytes(1)), now);
    ++e.peer_nxt;
  }
  std::vector<std::uint8_t> buf(16);
  EXPECT_TRUE(s.tcp().recv(e.id, buf, now));
  EXPECT_EQ(drain(s).size(), 16u) << "each ACKed at once";
}

}  // namespace weft::tcptest
