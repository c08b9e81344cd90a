// Every parser against 100,000 random and mutated buffers. Under ASan
// (WEFT_SANITIZE=ON) this proves the parse-once contract: no parse reads out
// of bounds, and no accessor of a successful parse does either. Each buffer
// lives in its own exactly-sized heap allocation so that a one-byte over-read
// is caught. Mutations start from valid packets and sometimes repair the
// checksums afterwards, so that the deep checks (options, lengths) are
// reached rather than everything failing at the checksum.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "base/rng.hpp"
#include "wire/checksum.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"
#include "wire/udp.hpp"

using namespace weft;
using namespace weft::wire;

namespace {

const Ipv4Addr kSrc(192, 0, 2, 1), kDst(192, 0, 2, 2);

std::uint8_t byte(Rng& rng) { return static_cast<std::uint8_t>(rng.next()); }

// The span lies inside buf, and every byte of it can be read.
::testing::AssertionResult inside(std::span<const std::uint8_t> s, const std::vector<std::uint8_t>& buf) {
  const auto b = reinterpret_cast<std::uintptr_t>(buf.data());
  const auto p = reinterpret_cast<std::uintptr_t>(s.data());
  if (!s.empty() && (p < b || p + s.size() > b + buf.size()))
    return ::testing::AssertionFailure() << "span of " << s.size() << " at offset " << (p - b) << " outside "
                                         << buf.size() << " bytes";
  volatile std::uint8_t sink = 0;
  for (auto x : s) sink = static_cast<std::uint8_t>(sink + x);
  return ::testing::AssertionSuccess();
}

std::vector<std::uint8_t> valid_tcp(Rng& rng) {
  TcpRepr r{.src_port = Port(1234),
            .dst_port = Port(80),
            .seq = SeqNum(static_cast<std::uint32_t>(rng.next())),
            .flags = wire::TcpFlags{byte(rng)}};
  if (rng.chance(0.5)) r.options.mss = 1460;
  if (rng.chance(0.5)) r.options.window_scale = 7;
  r.options.sack_permitted = rng.chance(0.5);
  if (rng.chance(0.5)) r.options.timestamps = wire::TcpTimestamps{TsVal{1}, TsVal{2}};
  r.options.sack_count = static_cast<std::uint8_t>(rng.below(5));
  const std::size_t payload = rng.below(40);
  std::vector<std::uint8_t> b(r.header_len() + payload, 0x61);
  r.emit(b, kSrc, kDst, payload);
  return b;
}

std::vector<std::uint8_t> valid_udp(Rng& rng) {
  const auto payload = static_cast<std::uint16_t>(rng.below(40));
  std::vector<std::uint8_t> b(8 + payload, 0x62);
  UdpRepr{Port(5353), Port(53), payload}.emit(b, kSrc, kDst);
  return b;
}

std::vector<std::uint8_t> valid_icmp(Rng& rng) {
  const std::size_t payload = rng.below(40);
  std::vector<std::uint8_t> b(8 + payload, 0x63);
  IcmpRepr::echo_request(1, 2, payload).emit(b);
  return b;
}

std::vector<std::uint8_t> wrap_ipv4(Rng& rng, const std::vector<std::uint8_t>& inner, IpProto proto) {
  std::vector<std::uint8_t> b(20 + inner.size());
  Ipv4Repr{.src = kSrc,
           .dst = kDst,
           .protocol = static_cast<std::uint8_t>(proto),
           .payload_len = static_cast<std::uint16_t>(inner.size()),
           .ident = static_cast<std::uint16_t>(rng.next())}
      .emit(b);
  std::copy(inner.begin(), inner.end(), b.begin() + 20);
  return b;
}

void mutate(Rng& rng, std::vector<std::uint8_t>& b) {
  const std::size_t edits = 1 + rng.below(4);
  for (std::size_t e = 0; e < edits; ++e) {
    switch (rng.below(5)) {
      case 0:  // flip a bit
        if (!b.empty()) b[rng.below(b.size())] ^= static_cast<std::uint8_t>(1u << rng.below(8));
        break;
      case 1:  // overwrite a byte, favouring the header
        if (!b.empty()) b[rng.below(std::min<std::size_t>(b.size(), 60))] = byte(rng);
        break;
      case 2:  // truncate
        b.resize(rng.below(b.size() + 1));
        break;
      case 3:  // extend
        for (std::size_t k = rng.below(16); k > 0; --k) b.push_back(byte(rng));
        break;
      case 4:  // set a length-ish byte to an edge value
        if (!b.empty())
          b[rng.below(std::min<std::size_t>(b.size(), 40))] =
              static_cast<std::uint8_t>(std::array<int, 6>{0, 1, 2, 0xff, 0x45, 0x4f}[rng.below(6)]);
        break;
    }
  }
}

// Rewrites whatever checksums the bytes still have room for, as a sender
// with a malformed header but a working checksum routine would.
void repair(std::vector<std::uint8_t>& b, int kind) {
  if (kind == 0 && b.size() >= 20) {  // TCP
    b[16] = b[17] = 0;
    if (b.size() <= 0xffff)
      store_be16(&b[16], checksum_fold(checksum_add(
                             b, pseudo_header_sum(kSrc, kDst, IpProto::tcp, static_cast<std::uint16_t>(b.size())))));
  } else if (kind == 1 && b.size() >= 8) {  // UDP
    const std::size_t len = std::min<std::size_t>(load_be16(&b[4]), b.size());
    b[6] = b[7] = 0;
    store_be16(&b[6], checksum_fold(checksum_add(std::span(b).first(len),
                                                 pseudo_header_sum(kSrc, kDst, IpProto::udp, load_be16(&b[4])))));
  } else if (kind == 2 && b.size() >= 8) {  // ICMP
    b[2] = b[3] = 0;
    store_be16(&b[2], internet_checksum(b));
  } else if (kind == 3 && b.size() >= 20) {  // IPv4
    const std::size_t ihl = std::min<std::size_t>(std::size_t{b[0] & 0x0fu} * 4, b.size());
    if (ihl >= 12) {
      b[10] = b[11] = 0;
      store_be16(&b[10], internet_checksum(std::span(b).first(ihl)));
    }
  }
}

struct Stats {
  int ipv4 = 0, icmp = 0, udp = 0, udp_nocsum = 0, tcp = 0, tcp_nocsum = 0, options = 0;
};

void check_tcp(const Parsed<TcpView>& p, const std::vector<std::uint8_t>& buf, std::span<const std::uint8_t> seg) {
  const TcpView& v = *p;
  ASSERT_GE(v.header_len(), 20u);
  ASSERT_LE(v.header_len(), seg.size());
  ASSERT_TRUE(inside(v.header(), buf));
  ASSERT_TRUE(inside(v.payload(), buf));
  ASSERT_EQ(v.header().size() + v.payload().size(), seg.size());
  ASSERT_LE(v.options().sack_count, 4);
  (void)v.src_port(), (void)v.dst_port(), (void)v.seq(), (void)v.ack(), (void)v.flags(), (void)v.window(),
      (void)v.checksum(), (void)v.urgent(), (void)v.has(tcp_flag::ack);
}

void check_udp(const Parsed<UdpView>& p, const std::vector<std::uint8_t>& buf, std::span<const std::uint8_t> seg) {
  const UdpView& v = *p;
  ASSERT_GE(v.length(), 8u);
  ASSERT_LE(v.length(), seg.size());
  ASSERT_EQ(v.payload().size() + 8u, v.length());
  ASSERT_TRUE(inside(v.payload(), buf));
  (void)v.src_port(), (void)v.dst_port(), (void)v.checksum();
}

void check_icmp(const Parsed<IcmpView>& p, const std::vector<std::uint8_t>& buf) {
  const IcmpView& v = *p;
  ASSERT_TRUE(inside(v.payload(), buf));
  ASSERT_TRUE(inside(v.bytes(), buf));
  (void)v.type(), (void)v.code(), (void)v.checksum(), (void)v.echo_ident(), (void)v.echo_seq(), (void)v.next_hop_mtu(),
      (void)v.rest_of_header();
}

// Feeds one buffer to every parser, as the stack would and in isolation.
void feed(const std::vector<std::uint8_t>& buf, Stats& st) {
  const std::span<const std::uint8_t> all(buf);
  (void)ip_version(all);
  if (auto p = Ipv4View::parse(all)) {
    ++st.ipv4;
    const Ipv4View& v = *p;
    ASSERT_GE(v.header_len(), 20u);
    ASSERT_LE(v.total_len(), buf.size());
    ASSERT_TRUE(inside(v.header(), buf));
    ASSERT_TRUE(inside(v.options(), buf));
    ASSERT_TRUE(inside(v.payload(), buf));
    ASSERT_TRUE(inside(v.bytes(), buf));
    ASSERT_EQ(v.bytes().size(), v.total_len());
    (void)v.dscp_ecn(), (void)v.ident(), (void)v.frag_offset(), (void)v.is_fragment(), (void)v.ttl(), (void)v.src(),
        (void)v.dst();
    // The payload as the stack would hand it on.
    if (auto t = TcpView::parse(v.payload(), v.src(), v.dst())) check_tcp(t, buf, v.payload());
    if (auto u = UdpView::parse(v.payload(), v.src(), v.dst())) check_udp(u, buf, v.payload());
    if (auto i = IcmpView::parse(v.payload())) check_icmp(i, buf);
  }
  if (auto p = IcmpView::parse(all)) {
    ++st.icmp;
    check_icmp(p, buf);
  }
  for (bool verify : {true, false}) {
    if (auto p = UdpView::parse(all, kSrc, kDst, verify)) {
      ++(verify ? st.udp : st.udp_nocsum);
      check_udp(p, buf, all);
    }
    if (auto p = TcpView::parse(all, kSrc, kDst, verify)) {
      ++(verify ? st.tcp : st.tcp_nocsum);
      check_tcp(p, buf, all);
    }
  }
  if (auto p = TcpOptions::parse(all.first(std::min<std::size_t>(all.size(), 40)))) {
    ++st.options;
    ASSERT_LE(p->sack_count, 4);
  }
}

}  // namespace

TEST(WireRobustness, HundredThousandRandomAndMutatedBuffersStayInBounds) {
  Rng rng(0x5eed);
  Stats st;
  for (int i = 0; i < 100'000; ++i) {
    std::vector<std::uint8_t> b;
    int kind = -1;
    if (rng.chance(0.2)) {
      b.resize(rng.below(80));  // pure noise
      for (auto& x : b) x = byte(rng);
    } else {
      kind = static_cast<int>(rng.below(3));
      b = kind == 0 ? valid_tcp(rng) : kind == 1 ? valid_udp(rng) : valid_icmp(rng);
      if (rng.chance(0.4)) {
        static constexpr IpProto protos[] = {IpProto::tcp, IpProto::udp, IpProto::icmp};
        mutate(rng, b);
        if (rng.chance(0.5)) repair(b, kind);
        b = wrap_ipv4(rng, b, protos[kind]);
        kind = 3;
      }
      mutate(rng, b);
      if (rng.chance(0.5)) repair(b, kind);
    }
    // Exactly sized copy: ASan sees any read past the last byte.
    std::vector<std::uint8_t> exact(b.begin(), b.end());
    exact.shrink_to_fit();
    feed(exact, st);
    if (::testing::Test::HasFatalFailure()) {
      ADD_FAILURE() << "buffer " << i << " of " << exact.size() << " bytes";
      return;
    }
  }
  // The mutations must reach past the first checks, or the test proves little.
  EXPECT_GT(st.ipv4, 2000);
  EXPECT_GT(st.icmp, 2000);
  EXPECT_GT(st.udp, 2000);
  EXPECT_GT(st.udp_nocsum, st.udp);
  EXPECT_GT(st.tcp, 2000);
  EXPECT_GT(st.tcp_nocsum, st.tcp);
  EXPECT_GT(st.options, 2000);
  std::printf("parsed ok: ipv4 %d icmp %d udp %d/%d tcp %d/%d options %d\n", st.ipv4, st.icmp, st.udp, st.udp_nocsum,
              st.tcp, st.tcp_nocsum, st.options);
}
