// Connection lifetime: a TCB that ends inside a call is retired at once and
// freed only when the outermost TcpLayer entry point returns (deferred
// reclamation), so a Tcb& held across the call stays valid. Run under
// ASan (build/asan) these tests would report a heap-use-after-free if a
// TCB were freed while code still held it.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <vector>

#include "tcp_test_util.hpp"

namespace weft {

// The one friend of TcpLayer that tests use (declared in tcp.hpp).
struct TcpTestAccess {
  // An entry point held open by the test: what a caller deep inside the
  // layer sees while the call it is in has not returned.
  static std::unique_ptr<TcpLayer::Entry> enter(TcpLayer& l) { return std::make_unique<TcpLayer::Entry>(l); }
  static void on_reclaim(TcpLayer& l, std::function<void(SocketId)> f) { l.on_reclaim_ = std::move(f); }
  static const tcp::Tcb* tcb(const TcpLayer& l, SocketId s) { return l.get(s); }
  static int depth(const TcpLayer& l) { return l.depth_; }
};

}  // namespace weft

using namespace weft;
using namespace weft::tcptest;
using tcp::TcpState;

namespace {
const Instant t0 = Instant{} + 1000s;

// Records each TCB as it is freed, with the entry depth at that moment.
struct Reclaims {
  std::vector<SocketId> ids;
  std::vector<int> depths;
  void watch(TcpLayer& tcp) {
    TcpTestAccess::on_reclaim(tcp, [this, &tcp](SocketId id) {
      ids.push_back(id);
      depths.push_back(TcpTestAccess::depth(tcp));
    });
  }
};
}  // namespace

TEST(TcpLifetime, OrphanResetInsideInputStaysValidUntilTheCallReturns) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.close(e.id, t0));  // FIN-WAIT-1, an orphan
  (void)drain(s);
  const tcp::Tcb* t = TcpTestAccess::tcb(tcp, e.id);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->state, TcpState::fin_wait_1);
  Reclaims r;
  r.watch(tcp);
  {
    // A caller holding t while the RST arrives: connection_done() ends the
    // orphan inside input(), and t must stay readable until the caller's
    // own entry point returns.
    const auto outer = TcpTestAccess::enter(tcp);
    s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 1, flag::rst)), t0);
    EXPECT_TRUE(r.ids.empty()) << "freed while a caller was still inside the layer";
    EXPECT_EQ(t->state, TcpState::closed);  // a use-after-free under ASan if it had been freed
    EXPECT_TRUE(t->retired);
    EXPECT_FALSE(TcpTestAccess::tcb(tcp, e.id)) << "retired: no lookup finds it";
    EXPECT_FALSE(tcp.info(e.id));
    EXPECT_EQ(tcp.socket_count(), 1u) << "the listener; the orphan is gone from the count at once";
  }
  ASSERT_EQ(r.ids, std::vector<SocketId>{e.id});
  EXPECT_EQ(r.depths, std::vector<int>{0}) << "freed as the outermost entry point returned";
}

TEST(TcpLifetime, RstToAnOrphanIsFreedWhenInputReturns) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.close(e.id, t0));
  (void)drain(s);
  Reclaims r;
  r.watch(tcp);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 1, flag::rst)), t0);
  EXPECT_EQ(r.ids, std::vector<SocketId>{e.id});
  EXPECT_EQ(r.depths, std::vector<int>{0});
  EXPECT_TRUE(drain(s).empty());
}

TEST(TcpLifetime, OrphanTimingOutInsideTheTimerIsFreedAfterPoll) {
  // on_timer() goes on with the TCB after the retransmission timeout that
  // ends it; it must still be there.
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.set_user_timeout(e.id, 2s));
  ASSERT_TRUE(tcp.close(e.id, t0));  // the FIN is never acknowledged
  (void)drain(s);
  Reclaims r;
  r.watch(tcp);
  Instant now = t0;
  for (int i = 0; i < 100 && r.ids.empty(); ++i) {
    now += 500ms;
    s.poll(now);
  }
  ASSERT_EQ(r.ids, std::vector<SocketId>{e.id});
  EXPECT_EQ(r.depths, std::vector<int>{0});
  EXPECT_EQ(counter(s, "tcp.timeouts"), 1u);
  EXPECT_EQ(tcp.socket_count(), 1u);
}

TEST(TcpLifetime, ListenerChildEndedByKeepaliveIsFreedAfterPoll) {
  // A child in the accept queue inherits keepalive; unanswered probes end
  // it inside on_timer(), which goes on with the TCB afterwards.
  Stack s(config());
  auto& tcp = s.tcp();
  const SocketId l = tcp.open();
  ASSERT_TRUE(tcp.bind(l, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.set_keepalive(l, true, 1s, 1s, 1, t0));
  ASSERT_TRUE(tcp.listen(l, 4));
  auto syn = hdr(kPeerIsn, 0, flag::syn);
  syn.options.mss = 1460;
  s.receive(packet(syn), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  s.receive(packet(hdr(kPeerIsn + 1, out[0].h.seq.value() + 1, flag::ack)), t0);
  ASSERT_EQ(tcp.pending_accepts(l), 1u);
  Reclaims r;
  r.watch(tcp);
  Instant now = t0;
  for (int i = 0; i < 20 && r.ids.empty(); ++i) {
    now += 500ms;
    s.poll(now);
  }
  ASSERT_EQ(r.ids.size(), 1u);
  EXPECT_NE(r.ids[0], l);
  EXPECT_EQ(r.depths, std::vector<int>{0});
  EXPECT_EQ(tcp.pending_accepts(l), 0u) << "the child left the accept queue when it ended";
  EXPECT_EQ(tcp.accept(l).error(), std::errc::resource_unavailable_try_again);
}

TEST(TcpLifetime, ResetListenerChildIsFreedWhenInputReturns) {
  Stack s(config());
  auto& tcp = s.tcp();
  const SocketId l = tcp.open();
  ASSERT_TRUE(tcp.bind(l, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.listen(l, 4));
  auto syn = hdr(kPeerIsn, 0, flag::syn);
  syn.options.mss = 1460;
  s.receive(packet(syn), t0);
  ASSERT_EQ(drain(s).size(), 1u);
  ASSERT_EQ(tcp.socket_count(), 2u);
  Reclaims r;
  r.watch(tcp);
  s.receive(packet(hdr(kPeerIsn + 1, 0, flag::rst)), t0);  // SYN-RECEIVED: the child goes quietly
  EXPECT_EQ(r.ids.size(), 1u);
  EXPECT_EQ(r.depths, std::vector<int>{0});
  EXPECT_EQ(tcp.socket_count(), 1u);
}

TEST(TcpLifetime, ClosingAListenerFreesItAndItsChildrenWhenCloseReturns) {
  Stack s(config());
  auto& tcp = s.tcp();
  const SocketId l = tcp.open();
  ASSERT_TRUE(tcp.bind(l, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.listen(l, 4));
  for (std::uint16_t i = 0; i < 2; ++i) {
    auto syn = hdr(kPeerIsn, 0, flag::syn, 65535, Port{static_cast<std::uint16_t>(40000 + i)});
    syn.options.mss = 1460;
    s.receive(packet(syn), t0);
  }
  ASSERT_EQ(drain(s).size(), 2u);
  Reclaims r;
  r.watch(tcp);
  ASSERT_TRUE(tcp.close(l, t0));
  ASSERT_EQ(r.ids.size(), 3u);
  EXPECT_EQ(r.ids[0], l) << "freed in the order retired: the listener, then its children";
  EXPECT_EQ(r.depths, (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(tcp.socket_count(), 0u);
  EXPECT_EQ(drain(s).size(), 2u) << "each unaccepted child was reset";
}

TEST(TcpLifetime, TimeWaitOrphanReplacedByANewerSynInTheSameCall) {
  // The orphan in TIME-WAIT ends and the listener takes the SYN within one
  // input(): its 4-tuple and port are free at once, its memory afterwards.
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.close(e.id, t0));
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 1, flag::ack)), t0);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 1, flag::fin | flag::ack)), t0);
  (void)drain(s);
  ASSERT_EQ(tcp.info(e.id)->state, TcpState::time_wait);
  Reclaims r;
  r.watch(tcp);
  auto syn = hdr(e.peer_nxt + 100000, 0, flag::syn);
  syn.options.mss = 1460;
  s.receive(packet(syn), t0 + 1ms);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].has(flag::syn | flag::ack));
  EXPECT_EQ(r.ids, std::vector<SocketId>{e.id});
  EXPECT_EQ(tcp.socket_count(), 2u) << "the listener and the new child";
  s.receive(packet(hdr(e.peer_nxt + 100001, out[0].h.seq.value() + 1, flag::ack)), t0 + 2ms);
  auto a = tcp.accept(e.listener);
  ASSERT_TRUE(a);
  EXPECT_EQ(tcp.info(a->id)->state, TcpState::established);
}
