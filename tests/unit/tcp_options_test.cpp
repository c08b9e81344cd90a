// Socket options as TcpLayer features (issue 11.10): TCP_CORK and MSG_MORE,
// TCP_NOTSENT_LOWAT, TCP_INQ, TCP_MAXSEG and a shrinking SO_SNDBUF, each
// fed segments and checked by the segments that come out; then the
// (level, name, value) mapping of tcp/sockopt.hpp with Linux's answers.
#include <linux/tcp.h>
#include <netinet/in.h>

#include <gtest/gtest.h>

#include "tcp/sockopt.hpp"
#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;

namespace {

const Instant t0 = Instant{} + 1000s;

// What the stack sent: data segments' payload sizes (bare ACKs left out).
std::vector<std::size_t> data_sizes(Stack& s) {
  std::vector<std::size_t> n;
  for (const auto& seg : drain(s))
    if (!seg.data.empty()) n.push_back(seg.data.size());
  return n;
}

// The peer acknowledges everything up to `ack` (the host's sequence number).
void peer_ack(Stack& s, const Established& e, std::uint32_t ack, Instant now, std::uint16_t window = 65535) {
  s.receive(packet(hdr(e.peer_nxt, ack, flag::ack, window)), now);
}

// The peer acknowledges whatever arrives until the send queue is empty,
// then shuts its window so that what is queued next stays queued.
void ack_all_then_shut(Stack& s, const Established& e, Instant now) {
  auto& tcp = s.tcp();
  for (int i = 0; i < 100 && tcp.info(e.id)->send_queue > 0; ++i) {
    drain(s);
    const auto in = *tcp.info(e.id);
    peer_ack(s, e, e.host_nxt() + static_cast<std::uint32_t>(in.bytes_acked + in.in_flight), now);
  }
  drain(s);
  peer_ack(s, e, e.host_nxt() + static_cast<std::uint32_t>(tcp.info(e.id)->bytes_acked), now, 0);
}

}  // namespace

// ------------------------------------------------------------- TCP_CORK

TEST(TcpCork, HoldsPartialSegmentsAndSendsFullOnes) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.set_cork(e.id, true, t0));
  EXPECT_EQ(*tcp.send(e.id, bytes(100), t0), 100u);
  EXPECT_TRUE(data_sizes(s).empty()) << "a partial segment waits while corked";
  EXPECT_EQ(*tcp.send(e.id, bytes(1400), t0), 1400u);
  EXPECT_EQ(data_sizes(s), std::vector<std::size_t>{1460}) << "a full MSS goes at once";
  peer_ack(s, e, e.host_nxt() + 1460, t0);
  EXPECT_TRUE(data_sizes(s).empty()) << "the 40 bytes left stay corked";
  ASSERT_TRUE(tcp.set_cork(e.id, false, t0));
  EXPECT_EQ(data_sizes(s), std::vector<std::size_t>{40}) << "uncorking sends what was held";
  EXPECT_FALSE(tcp.options(e.id)->cork);
}

TEST(TcpCork, TwoHundredMillisecondCeiling) {
  // tcp(7): "a 200 millisecond ceiling on the time for which output is corked".
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.set_cork(e.id, true, t0));
  ASSERT_TRUE(tcp.send(e.id, bytes(100), t0));
  EXPECT_EQ(tcp.next_deadline(), t0 + TcpLayer::kCorkTimeout);
  s.poll(t0 + 199ms);
  EXPECT_TRUE(data_sizes(s).empty());
  s.poll(t0 + 200ms);
  EXPECT_EQ(data_sizes(s), std::vector<std::size_t>{100});
}

TEST(TcpCork, NodelayFlushesAndFinPushes) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.set_cork(e.id, true, t0));
  ASSERT_TRUE(tcp.send(e.id, bytes(10), t0));
  EXPECT_TRUE(data_sizes(s).empty());
  // tcp(7) TCP_NODELAY: "forces an explicit flush of pending output, even
  // if TCP_CORK is currently set".
  ASSERT_TRUE(tcp.set_nodelay(e.id, true, t0));
  EXPECT_EQ(data_sizes(s), std::vector<std::size_t>{10});
  EXPECT_TRUE(tcp.options(e.id)->cork) << "the cork stays on";
  peer_ack(s, e, e.host_nxt() + 10, t0);
  drain(s);
  // A FIN is never held: the partial segment goes with it.
  ASSERT_TRUE(tcp.send(e.id, bytes(20), t0));
  EXPECT_TRUE(data_sizes(s).empty());
  ASSERT_TRUE(tcp.shutdown(e.id, Shutdown::write, t0));
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::fin | flag::psh | flag::ack, .seq = e.host_nxt() + 10, .len = 20});
}

TEST(TcpCork, MsgMoreHoldsOneCallUntilTheNext) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  EXPECT_EQ(*tcp.send(e.id, bytes(50), t0, /*more=*/true), 50u);
  EXPECT_TRUE(data_sizes(s).empty()) << "MSG_MORE: more follows, so wait";
  EXPECT_EQ(*tcp.send(e.id, bytes(30), t0), 30u);
  EXPECT_EQ(data_sizes(s), std::vector<std::size_t>{80}) << "the last part sends both";
  peer_ack(s, e, e.host_nxt() + 80, t0);
  drain(s);
  // Held alone, it goes after the same ceiling as the cork.
  ASSERT_TRUE(tcp.send(e.id, bytes(5), t0 + 1s, true));
  s.poll(t0 + 1s + 199ms);
  EXPECT_TRUE(data_sizes(s).empty());
  s.poll(t0 + 1s + 200ms);
  EXPECT_EQ(data_sizes(s), std::vector<std::size_t>{5});
  EXPECT_FALSE(tcp.options(e.id)->cork) << "MSG_MORE leaves no cork behind";
}

// ---------------------------------------------------- TCP_NOTSENT_LOWAT

TEST(TcpNotsentLowat, WritableOnlyBelowTheMark) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  // A zero window keeps everything unsent.
  peer_ack(s, e, e.host_nxt(), t0, 0);
  ASSERT_TRUE(tcp.set_notsent_lowat(e.id, 1000));
  EXPECT_EQ(tcp.options(e.id)->notsent_lowat, 1000u);
  EXPECT_EQ(tcp.send_room(e.id), 1000u);
  EXPECT_EQ(*tcp.send(e.id, bytes(3000), t0), 1000u) << "takes only up to the mark";
  EXPECT_FALSE(tcp.events(e.id) & tcp_event::writable);
  EXPECT_EQ(tcp.send(e.id, bytes(10), t0).error(), std::errc::resource_unavailable_try_again);
  EXPECT_EQ(tcp.info(e.id)->unsent, 1000u);
  // The window opens and the bytes leave: writable again.
  peer_ack(s, e, e.host_nxt(), t0, 65535);
  EXPECT_EQ(data_sizes(s), std::vector<std::size_t>{1000});
  EXPECT_TRUE(tcp.events(e.id) & tcp_event::writable);
  EXPECT_EQ(tcp.info(e.id)->unsent, 0u);
  // 0 removes the mark: the send buffer alone limits.
  peer_ack(s, e, e.host_nxt() + 1000, t0, 0);
  ASSERT_TRUE(tcp.set_notsent_lowat(e.id, 0));
  EXPECT_EQ(tcp.send_room(e.id), 65536u);
}

// ----------------------------------------------------------- TCP_INQ

TEST(TcpInq, ReadableBytesAndTheFlag) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  EXPECT_FALSE(tcp.options(e.id)->inq);
  ASSERT_TRUE(tcp.set_inq(e.id, true));
  EXPECT_TRUE(tcp.options(e.id)->inq);
  EXPECT_EQ(tcp.readable(e.id), 0u);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack | flag::psh), bytes(300)), t0);
  EXPECT_EQ(tcp.readable(e.id), 300u);
  std::vector<std::uint8_t> buf(100);
  ASSERT_TRUE(tcp.recv(e.id, buf, t0));
  EXPECT_EQ(tcp.readable(e.id), 200u);
  EXPECT_EQ(tcp.readable(e.listener), 0u) << "a listener has no bytes to read";
}

// ---------------------------------------------------------- TCP_MAXSEG

TEST(TcpMaxseg, CapsTheAnnouncedAndTheSentMss) {
  Stack s(config());
  auto& tcp = s.tcp();
  const SocketId l = tcp.open();
  EXPECT_EQ(tcp.set_maxseg(l, 87).error(), std::errc::invalid_argument);     // below TCP_MIN_MSS
  EXPECT_EQ(tcp.set_maxseg(l, 32768).error(), std::errc::invalid_argument);  // above MAX_TCP_WINDOW
  ASSERT_TRUE(tcp.set_maxseg(l, 1000));
  ASSERT_TRUE(tcp.bind(l, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.listen(l, 4));
  auto syn = hdr(kPeerIsn, 0, flag::syn);
  syn.options.mss = 1460;
  s.receive(packet(syn), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].h.options.mss.has_value());
  EXPECT_EQ(*out[0].h.options.mss, 1000) << "the SYN-ACK announces the cap";
  const std::uint32_t iss = out[0].h.seq.value();
  s.receive(packet(hdr(kPeerIsn + 1, iss + 1, flag::ack)), t0);
  auto a = tcp.accept(l);
  ASSERT_TRUE(a);
  EXPECT_EQ(tcp.info(a->id)->mss, 1000u);
  ASSERT_TRUE(tcp.set_nodelay(a->id, true, t0));
  ASSERT_TRUE(tcp.send(a->id, bytes(2500), t0));
  EXPECT_EQ(data_sizes(s), (std::vector<std::size_t>{1000, 1000, 500}));
  ASSERT_TRUE(tcp.set_maxseg(a->id, 0));  // 0 clears it (Linux allows it in any state)
}

// ---------------------------------------------------------- SO_SNDBUF

TEST(TcpSndbuf, ShrinkingTakesEffectAtOnce) {
  Stack s(config());  // sndbuf 65536
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  // Nothing leaves while the window is shut: all 10,000 bytes stay queued.
  peer_ack(s, e, e.host_nxt(), t0, 0);
  drain(s);
  EXPECT_EQ(*tcp.send(e.id, bytes(10000), t0), 10000u);
  ASSERT_TRUE(tcp.set_sndbuf(e.id, 4096));
  EXPECT_EQ(tcp.options(e.id)->sndbuf, 4096u);
  EXPECT_EQ(tcp.send_room(e.id), 0u) << "more is queued than the new size";
  EXPECT_FALSE(tcp.events(e.id) & tcp_event::writable);
  EXPECT_EQ(tcp.send(e.id, bytes(1), t0).error(), std::errc::resource_unavailable_try_again);
  // The queue drains as the peer acknowledges; then the new size holds.
  ack_all_then_shut(s, e, t0);
  EXPECT_EQ(tcp.send_room(e.id), 4096u);
  EXPECT_EQ(*tcp.send(e.id, bytes(10000), t0), 4096u);
  // And it can grow again.
  ASSERT_TRUE(tcp.set_sndbuf(e.id, 8192));
  EXPECT_EQ(tcp.send_room(e.id), 4096u);
  // Below the layer's minimum it is used as the minimum.
  ASSERT_TRUE(tcp.set_sndbuf(e.id, 100));
  EXPECT_EQ(tcp.send_room(e.id), 0u);
  ack_all_then_shut(s, e, t0);
  EXPECT_EQ(tcp.send_room(e.id), TcpLayer::kMinBuffer);
}

// ------------------------------------------------- tcp/sockopt.hpp mapping

namespace {

Status set_int(TcpLayer& tcp, SocketId s, int level, int name, int v) {
  return tcp::set_option(tcp, s, level, name, {reinterpret_cast<const std::uint8_t*>(&v), sizeof v}, t0);
}

Result<int> get_int(TcpLayer& tcp, SocketId s, int level, int name) {
  int v = -1;
  auto n = tcp::get_option(tcp, s, level, name, {reinterpret_cast<std::uint8_t*>(&v), sizeof v});
  if (!n) return n.error();
  EXPECT_EQ(*n, sizeof v);
  return v;
}

}  // namespace

TEST(TcpSockopt, BuffersReadBackDoubledAsLinuxStoresThem) {
  Stack s(config());
  auto& tcp = s.tcp();
  const SocketId id = tcp.open();
  EXPECT_EQ(*get_int(tcp, id, SOL_SOCKET, SO_SNDBUF), 65536) << "the default, as is";
  ASSERT_TRUE(set_int(tcp, id, SOL_SOCKET, SO_SNDBUF, 10000));
  EXPECT_EQ(*get_int(tcp, id, SOL_SOCKET, SO_SNDBUF), 20000);
  EXPECT_EQ(tcp.options(id)->sndbuf, 10000u) << "the bytes weft holds: what was asked";
  ASSERT_TRUE(set_int(tcp, id, SOL_SOCKET, SO_SNDBUF, 0));
  EXPECT_EQ(*get_int(tcp, id, SOL_SOCKET, SO_SNDBUF), tcp::kSockMinSndbuf);
  ASSERT_TRUE(set_int(tcp, id, SOL_SOCKET, SO_RCVBUF, 1 << 30));
  EXPECT_EQ(*get_int(tcp, id, SOL_SOCKET, SO_RCVBUF), 2 * tcp::kRmemMax);
  ASSERT_TRUE(set_int(tcp, id, SOL_SOCKET, SO_RCVBUF, 1));
  EXPECT_EQ(*get_int(tcp, id, SOL_SOCKET, SO_RCVBUF), tcp::kSockMinRcvbuf);
}

TEST(TcpSockopt, LinuxRangesAndErrors) {
  Stack s(config());
  auto& tcp = s.tcp();
  const SocketId id = tcp.open();
  const auto einval = [&](int level, int name, int v) {
    auto st = set_int(tcp, id, level, name, v);
    return !st && st.error() == std::errc::invalid_argument;
  };
  EXPECT_TRUE(einval(IPPROTO_TCP, TCP_KEEPIDLE, 0));
  EXPECT_TRUE(einval(IPPROTO_TCP, TCP_KEEPIDLE, 32768));
  EXPECT_TRUE(einval(IPPROTO_TCP, TCP_KEEPINTVL, 0));
  EXPECT_TRUE(einval(IPPROTO_TCP, TCP_KEEPCNT, 128));
  EXPECT_TRUE(einval(IPPROTO_TCP, TCP_SYNCNT, 0));
  EXPECT_TRUE(einval(IPPROTO_TCP, TCP_USER_TIMEOUT, -1));
  EXPECT_TRUE(einval(IPPROTO_TCP, TCP_MAXSEG, 87));
  EXPECT_TRUE(einval(IPPROTO_TCP, TCP_INQ, 2));
  // An option shorter than an int.
  const std::uint8_t one = 1;
  EXPECT_EQ(tcp::set_option(tcp, id, IPPROTO_TCP, TCP_NODELAY, {&one, 1}, t0).error(), std::errc::invalid_argument);
  // Unknown levels and names.
  EXPECT_EQ(set_int(tcp, id, IPPROTO_IP, 1, 1).error(), std::errc::no_protocol_option);
  EXPECT_EQ(set_int(tcp, id, SOL_SOCKET, SO_BROADCAST, 1).error(), std::errc::no_protocol_option);
  EXPECT_EQ(get_int(tcp, id, IPPROTO_TCP, 9999).error(), std::errc::no_protocol_option);
  EXPECT_EQ(get_int(tcp, 4242, SOL_SOCKET, SO_TYPE).error(), std::errc::bad_file_descriptor);
  // Values round-trip through TcpLayer.
  ASSERT_TRUE(set_int(tcp, id, IPPROTO_TCP, TCP_CORK, 1));
  EXPECT_EQ(*get_int(tcp, id, IPPROTO_TCP, TCP_CORK), 1);
  ASSERT_TRUE(set_int(tcp, id, IPPROTO_TCP, TCP_NOTSENT_LOWAT, 5000));
  EXPECT_EQ(*get_int(tcp, id, IPPROTO_TCP, TCP_NOTSENT_LOWAT), 5000);
  ASSERT_TRUE(set_int(tcp, id, IPPROTO_TCP, TCP_KEEPCNT, 3));
  ASSERT_TRUE(set_int(tcp, id, IPPROTO_TCP, TCP_KEEPIDLE, 30));
  EXPECT_EQ(*get_int(tcp, id, IPPROTO_TCP, TCP_KEEPCNT), 3) << "setting one keepalive value keeps the others";
  EXPECT_EQ(*get_int(tcp, id, SOL_SOCKET, SO_KEEPALIVE), 0) << "and none of them turns keepalive on";
  ASSERT_TRUE(set_int(tcp, id, IPPROTO_TCP, TCP_MAXSEG, 1200));
  EXPECT_EQ(*get_int(tcp, id, IPPROTO_TCP, TCP_MAXSEG), 1200);
  // getsockopt truncates to the caller's length.
  std::uint8_t b = 0xff;
  EXPECT_EQ(*tcp::get_option(tcp, id, SOL_SOCKET, SO_TYPE, {&b, 1}), 1u);
  EXPECT_EQ(b, SOCK_STREAM);
}

TEST(TcpSockopt, TcpInfoFromTheConnection) {
  Stack s(config({.sack = true, .timestamps = true, .wscale = true}));
  wire::TcpOptions o;
  o.sack_permitted = true;
  o.window_scale = 7;
  o.timestamps = wire::TcpTimestamps{TsVal{100u}, TsVal{0u}};
  auto e = established(s, t0, o);
  auto& tcp = s.tcp();
  tcp_info ti{};
  auto n = tcp::get_option(tcp, e.id, IPPROTO_TCP, TCP_INFO, {reinterpret_cast<std::uint8_t*>(&ti), sizeof ti});
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, sizeof ti);
  EXPECT_EQ(ti.tcpi_state, 1);  // TCP_ESTABLISHED (include/net/tcp_states.h)
  EXPECT_EQ(ti.tcpi_options, TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE);
  EXPECT_EQ(ti.tcpi_snd_wscale, 7);
  EXPECT_EQ(ti.tcpi_snd_mss, 1460u - 12u) << "less the timestamp option";
  EXPECT_EQ(ti.tcpi_rcv_mss, 1460u);
  EXPECT_EQ(ti.tcpi_unacked, 0u);
  ASSERT_TRUE(tcp.set_nodelay(e.id, true, t0));
  ASSERT_TRUE(tcp.send(e.id, bytes(3000), t0));
  drain(s);
  ASSERT_TRUE(tcp::get_option(tcp, e.id, IPPROTO_TCP, TCP_INFO, {reinterpret_cast<std::uint8_t*>(&ti), sizeof ti}));
  EXPECT_EQ(ti.tcpi_unacked, 3u);
  EXPECT_EQ(ti.tcpi_bytes_sent, 3000u);
  // A timeout: tcpi_retransmits counts it, tcpi_total_retrans the segment.
  s.poll(t0 + 1s);
  drain(s);
  ASSERT_TRUE(tcp::get_option(tcp, e.id, IPPROTO_TCP, TCP_INFO, {reinterpret_cast<std::uint8_t*>(&ti), sizeof ti}));
  EXPECT_EQ(ti.tcpi_retransmits, 1);
  EXPECT_EQ(ti.tcpi_total_retrans, 1u);
  EXPECT_EQ(ti.tcpi_backoff, 1);
  EXPECT_EQ(ti.tcpi_ca_state, TCP_CA_Loss);
}
