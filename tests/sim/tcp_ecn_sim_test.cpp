// ECN end to end (RFC 3168, issue 11 item 8): host A sends 1 MB to host B
// through a bottleneck whose queue overflows. With an ECN-capable router
// (Impairments::ecn_mark: CE once the queue is past half full) and ECN
// negotiated, A slows down for the marks before the queue fills and never
// has to retransmit. The same transfer without ECN loses packets to the
// queue.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "host/host.hpp"
#include "link/sim.hpp"

using namespace weft;

namespace {

constexpr std::size_t kBytes = 1024 * 1024;
const Ipv4Addr kA(192, 0, 2, 1), kB(192, 0, 2, 2);
constexpr Port kPort{5002};

struct Outcome {
  std::size_t received = 0;
  bool intact = true, eof = false;
  TcpCounters a;
  SimCounters net;
};

Outcome transfer(bool ecn) {
  Impairments imp;
  imp.delay = 5ms;
  imp.bandwidth_bps = 50'000'000;
  imp.queue_limit_bytes = 30'000;  // about 20 segments: slow start overflows it
  imp.ecn_mark = true;             // marks only what is ECN-capable
  SimNetwork net(11, imp);
  StackConfig ca, cb;
  ca.address = Ipv4Cidr{kA, 24};
  cb.address = Ipv4Cidr{kB, 24};
  ca.seed = 1;
  cb.seed = 2;
  ca.tcp.ecn = ecn;  // A requests; B, as Linux, accepts
  Host ha(ca, net.attach(kA));
  Host hb(cb, net.attach(kB));
  TcpLayer& ta = ha.stack().tcp();
  TcpLayer& tb = hb.stack().tcp();
  Outcome o;
  std::vector<std::uint8_t> data(kBytes), buf(64 * 1024);
  for (std::size_t i = 0; i < kBytes; ++i) data[i] = static_cast<std::uint8_t>(i * 13 + (i >> 9));
  std::size_t sent = 0;
  bool shut = false;
  std::optional<SocketId> b_conn;
  const SocketId lis = tb.open();
  EXPECT_TRUE(tb.bind(lis, Endpoint{Ipv4Addr::any(), kPort}));
  EXPECT_TRUE(tb.listen(lis, 4));
  hb.set_on_tcp_event([&](SocketId id, Instant now) {
    if (id == lis)
      if (auto a = tb.accept(lis)) b_conn = a->id;
    if (!b_conn) return;
    for (;;) {
      auto r = tb.recv(*b_conn, buf, now);
      if (!r) return;
      if (r->len == 0) {
        o.eof = true;
        return;
      }
      if (std::memcmp(buf.data(), data.data() + o.received, r->len) != 0) o.intact = false;
      o.received += r->len;
    }
  });
  const SocketId a_conn = ta.open();
  ha.set_on_tcp_event([&](SocketId id, Instant now) {
    if (id != a_conn) return;
    while (sent < kBytes) {
      auto s = ta.send(a_conn, std::span<const std::uint8_t>(data).subspan(sent), now);
      if (!s) break;
      sent += *s;
    }
    if (sent == kBytes && !shut) shut = static_cast<bool>(ta.shutdown(a_conn, Shutdown::write, now));
  });
  Instant now{};
  EXPECT_TRUE(ta.connect(a_conn, Endpoint{kB, kPort}, now));
  const Instant limit = now + 120s;
  for (int rounds = 0; !o.eof && rounds < 2'000'000; ++rounds) {
    ha.step(now);
    hb.step(now);
    std::optional<Instant> next = ha.next_deadline();
    if (auto d = hb.next_deadline(); d && (!next || *d < *next)) next = d;
    if (!next || *next > limit) break;
    now = std::max(now, *next);
  }
  o.a = ta.counters();
  o.net = net.counters();
  return o;
}

}  // namespace

TEST(TcpEcnSim, CeMarksReplaceQueueDropsAndTheSenderBacksOff) {
  const Outcome with = transfer(true);
  EXPECT_TRUE(with.eof);
  EXPECT_EQ(with.received, kBytes);
  EXPECT_TRUE(with.intact);
  EXPECT_EQ(with.a.ecn_negotiated, 1u);
  EXPECT_GT(with.net.ce_marked, 0u) << "the queue never overflowed: the test proves nothing";
  EXPECT_GT(with.a.ecn_reductions, 0u);
  EXPECT_EQ(with.net.queue_drop, 0u) << "an ECN-capable data segment was dropped";
  EXPECT_EQ(with.a.retrans_segs, 0u) << "marks, not losses: nothing to send again";

  // Positive control: the same path without ECN drops and retransmits.
  const Outcome without = transfer(false);
  EXPECT_EQ(without.received, kBytes);
  EXPECT_TRUE(without.intact);
  EXPECT_EQ(without.net.ce_marked, 0u);
  EXPECT_GT(without.net.queue_drop, 0u);
  EXPECT_GT(without.a.retrans_segs, 0u);
}
