// Loss recovery between two weft hosts, whatever the ISS (issue 11): host A
// sends 256 KB to host B over the simulated network, and the network drops
// the first transmission of chosen data segments: three in one window, then
// two in a later one. Fast retransmit (RFC 5681 §3.2) and SACK loss recovery
// (RFC 6675 §5) must repair every hole without a retransmission timeout,
// with both hosts' ISS in the lower half, in the upper half, and where a
// window with losses straddles the wrap of the sequence space.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "host/host.hpp"
#include "link/sim.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

using namespace weft;

namespace {

constexpr std::size_t kBytes = 256 * 1024;
const Ipv4Addr kA(192, 0, 2, 1), kB(192, 0, 2, 2);
constexpr Port kPort{5001};
// Stream offsets whose segment loses its first transmission: three holes
// in one window of slow start, two in a later window.
const std::vector<std::uint32_t> kDropAt = {60000, 64000, 68000, 150000, 153000};

std::uint8_t pattern(std::size_t off) { return static_cast<std::uint8_t>((off * 131 + (off >> 8) * 7) & 0xff); }

// A fault on A's link: drops the first transmission of each data segment
// holding one of the chosen stream offsets, counted from A's ISS + 1.
class DropChosenSegments final : public LinkDecorator {
 public:
  DropChosenSegments(Link& inner, std::uint32_t iss, std::vector<std::uint32_t> offsets)
      : LinkDecorator(inner), iss_(iss), pending_(offsets.begin(), offsets.end()) {}

  using Link::send;
  bool send(PacketParts parts, Instant now) override {
    if (auto ip = wire::Ipv4View::parse(contiguous(parts, scratch_));
        ip && ip->protocol() == static_cast<std::uint8_t>(IpProto::tcp)) {
      if (auto tcp = wire::TcpView::parse(ip->payload(), ip->src(), ip->dst()); tcp && !tcp->payload().empty()) {
        const std::uint32_t off = tcp->seq().value() - (iss_ + 1);
        const auto len = static_cast<std::uint32_t>(tcp->payload().size());
        for (auto it = pending_.begin(); it != pending_.end(); ++it) {
          if (*it - off < len) {  // off <= *it < off + len
            pending_.erase(it);
            ++dropped_;
            return true;  // accepted by the network, then lost
          }
        }
      }
    }
    return inner_.send(parts, now);
  }
  std::size_t receive(std::span<std::uint8_t> buf, Instant now) override { return inner_.receive(buf, now); }

  unsigned dropped() const { return dropped_; }

 private:
  std::uint32_t iss_;
  std::set<std::uint32_t> pending_;
  unsigned dropped_ = 0;
  std::vector<std::uint8_t> scratch_;
};

StackConfig host_config(Ipv4Addr a, std::uint64_t seed, std::uint32_t iss) {
  StackConfig c;
  c.address = Ipv4Cidr{a, 24};
  c.seed = seed;
  c.tcp.msl = 2s;
  c.tcp.iss_for_tests = iss;
  return c;
}

std::string hex(std::uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "%08x", v);
  return b;
}

class TcpRecoverySim : public ::testing::TestWithParam<std::uint32_t> {};

}  // namespace

TEST_P(TcpRecoverySim, FastRetransmitAndSackRecoveryWithoutTimeout) {
  const std::uint32_t iss = GetParam();
  Impairments imp;
  imp.delay = 5ms;  // no random loss, no reordering: only the chosen drops
  SimNetwork net(7, imp);
  DropChosenSegments a_link(net.attach(kA), iss, kDropAt);
  Host ha(host_config(kA, 1, iss), a_link);
  Host hb(host_config(kB, 2, iss), net.attach(kB));
  TcpLayer& ta = ha.stack().tcp();
  TcpLayer& tb = hb.stack().tcp();

  const std::vector<std::uint8_t> data = [] {
    std::vector<std::uint8_t> v(kBytes);
    for (std::size_t i = 0; i < kBytes; ++i) v[i] = pattern(i);
    return v;
  }();
  std::size_t sent = 0, received = 0;
  bool shut = false, eof = false;
  std::string error;
  std::optional<SocketId> b_conn;
  std::vector<std::uint8_t> buf(64 * 1024);

  const SocketId lis = tb.open();
  ASSERT_TRUE(tb.bind(lis, Endpoint{Ipv4Addr::any(), kPort}));
  ASSERT_TRUE(tb.listen(lis, 4));
  hb.set_on_tcp_event([&](SocketId id, Instant now) {
    if (id == lis) {
      if (auto a = tb.accept(lis)) b_conn = a->id;
    }
    if (!b_conn) return;
    for (;;) {
      auto r = tb.recv(*b_conn, buf, now);
      if (!r) {
        if (r.error() != std::errc::resource_unavailable_try_again) error = "B recv: " + errc_message(r.error());
        return;
      }
      if (r->len == 0) {
        eof = true;
        return;
      }
      if (std::memcmp(buf.data(), data.data() + received, r->len) != 0 && error.empty())
        error = "wrong bytes at " + std::to_string(received);
      received += r->len;
    }
  });
  const SocketId a_conn = ta.open();
  auto pump_a = [&](Instant now) {
    while (sent < kBytes) {
      auto s = ta.send(a_conn, std::span<const std::uint8_t>(data).subspan(sent), now);
      if (!s) {
        if (s.error() != std::errc::resource_unavailable_try_again) error = "A send: " + errc_message(s.error());
        break;
      }
      sent += *s;
    }
    if (sent == kBytes && !shut) shut = static_cast<bool>(ta.shutdown(a_conn, Shutdown::write, now));
  };
  ha.set_on_tcp_event([&](SocketId id, Instant now) {
    if (id == a_conn) pump_a(now);
  });
  Instant now{};
  ASSERT_TRUE(ta.connect(a_conn, Endpoint{kB, kPort}, now));

  // Simulated time jumps from one deadline to the next.
  const Instant limit = now + 120s;
  for (int rounds = 0; !eof && error.empty() && rounds < 1'000'000; ++rounds) {
    ha.step(now);
    hb.step(now);
    std::optional<Instant> next = ha.next_deadline();
    if (auto d = hb.next_deadline(); d && (!next || *d < *next)) next = d;
    if (!next || *next > limit) break;
    now = std::max(now, *next);
  }

  EXPECT_EQ(error, "");
  EXPECT_TRUE(eof) << "B got " << received << " of " << kBytes << " bytes";
  EXPECT_EQ(received, kBytes);
  EXPECT_EQ(a_link.dropped(), kDropAt.size());
  const TcpCounters& c = ta.counters();
  EXPECT_EQ(c.rto_expired, 0u) << "a hole waited for the retransmission timer";
  EXPECT_EQ(c.timeouts, 0u);
  EXPECT_GE(c.fast_retransmits, 2u) << "one fast retransmit per window with losses";
  EXPECT_GE(c.sack_recoveries, 2u);
  EXPECT_GE(c.retrans_segs, kDropAt.size()) << "every dropped segment was sent again";
}

INSTANTIATE_TEST_SUITE_P(IssInBothHalvesAndAcrossTheWrap, TcpRecoverySim,
                         // 0xFFFDB033 + 1 + 151500 = 2^32: the first window with
                         // losses lies in the upper half, the second straddles the wrap.
                         ::testing::Values(0x00001000u, 0x80001000u, 0xFFFDB033u),
                         [](const auto& info) { return "iss_" + hex(info.param); });
