// The host core as a specification: packets in, packets out, no link.
#include "stack/stack.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"
#include "wire/udp.hpp"

using namespace weft;

namespace {

const Ipv4Addr kHost(192, 0, 2, 2);
const Ipv4Addr kPeer(192, 0, 2, 1);
const Ipv4Addr kFar(203, 0, 113, 5);

StackConfig config(std::size_t mtu = 1500) {
  StackConfig c;
  c.address = Ipv4Cidr{kHost, 24};
  c.gateway = kPeer;
  c.mtu = mtu;
  c.seed = 42;
  return c;
}

std::vector<std::uint8_t> ip_packet(Ipv4Addr src, Ipv4Addr dst, IpProto proto, std::span<const std::uint8_t> transport,
                                    std::uint16_t ident = 1) {
  std::vector<std::uint8_t> p(20 + transport.size());
  std::memcpy(p.data() + 20, transport.data(), transport.size());
  wire::Ipv4Repr h;
  h.src = src;
  h.dst = dst;
  h.protocol = static_cast<std::uint8_t>(proto);
  h.payload_len = static_cast<std::uint16_t>(transport.size());
  h.ident = ident;
  h.emit(std::span<std::uint8_t>(p).first(20));
  return p;
}

std::vector<std::uint8_t> udp_packet(Endpoint from, Endpoint to, std::string_view payload) {
  std::vector<std::uint8_t> seg(8 + payload.size());
  std::memcpy(seg.data() + 8, payload.data(), payload.size());
  wire::UdpRepr{from.port, to.port, static_cast<std::uint16_t>(payload.size())}.emit(seg, from.addr, to.addr);
  return ip_packet(from.addr, to.addr, IpProto::udp, seg);
}

std::vector<std::uint8_t> echo_request(Ipv4Addr from, Ipv4Addr to, std::size_t payload_len) {
  std::vector<std::uint8_t> msg(8 + payload_len);
  for (std::size_t i = 0; i < payload_len; ++i) msg[8 + i] = static_cast<std::uint8_t>(i * 7);
  wire::IcmpRepr::echo_request(0x1234, 9, payload_len).emit(msg);
  return ip_packet(from, to, IpProto::icmp, msg);
}

std::vector<std::vector<std::uint8_t>> drain(Stack& s) {
  std::vector<std::vector<std::uint8_t>> out;
  s.drain([&](std::span<const std::uint8_t> p) { out.emplace_back(p.begin(), p.end()); });
  return out;
}

std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

Instant t0{};

}  // namespace

TEST(StackIcmp, AnswersEchoRequestWithSamePayload) {
  Stack s(config());
  auto req = echo_request(kPeer, kHost, 56);
  s.receive(req, t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  auto ip = wire::Ipv4View::parse(out[0]);
  ASSERT_TRUE(ip);
  EXPECT_EQ(ip->src(), kHost);
  EXPECT_EQ(ip->dst(), kPeer);
  auto icmp = wire::IcmpView::parse(ip->payload());
  ASSERT_TRUE(icmp);
  EXPECT_EQ(icmp->type(), wire::icmp_type::echo_reply);
  EXPECT_EQ(icmp->echo_ident(), 0x1234);
  EXPECT_EQ(icmp->echo_seq(), 9);
  auto want = wire::IcmpView::parse(wire::Ipv4View::parse(req)->payload())->payload();
  ASSERT_EQ(icmp->payload().size(), want.size());
  EXPECT_TRUE(std::equal(want.begin(), want.end(), icmp->payload().begin()));
  EXPECT_EQ(s.icmp_counters().out_echo_replies, 1u);
}

TEST(StackIcmp, LargeEchoIsFragmentedToTheMtu) {
  Stack s(config(1500));
  // A 4000-byte echo arrives whole here (as if reassembled by the caller's
  // link); the reply must leave in fragments no larger than the MTU.
  auto req = echo_request(kPeer, kHost, 4000);
  s.receive(req, t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 3u);
  std::size_t total = 0;
  for (auto& f : out) {
    EXPECT_LE(f.size(), 1500u);
    auto ip = wire::Ipv4View::parse(f);
    ASSERT_TRUE(ip);
    EXPECT_EQ(ip->frag_offset(), total);
    EXPECT_EQ(ip->more_fragments(), &f != &out.back());
    total += ip->payload().size();
  }
  EXPECT_EQ(total, 8u + 4000u);
  EXPECT_EQ(s.ip_counters().out_fragments, 3u);
}

TEST(StackIcmp, FragmentedEchoIsReassembledAndAnswered) {
  Stack host(config());
  // Build a 2000-byte echo request fragmented by a stack with a small MTU:
  // send from a peer stack whose address is kPeer.
  StackConfig pc = config(576);
  pc.address = Ipv4Cidr{kPeer, 24};
  Stack peer(pc);
  std::vector<std::uint8_t> payload(2000);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>(i * 31 + 5);
  ASSERT_TRUE(peer.send_echo_request(kHost, 7, 1, payload, t0));
  auto frags = drain(peer);
  ASSERT_GT(frags.size(), 3u);
  for (auto& f : frags) host.receive(f, t0);
  EXPECT_EQ(host.ip_counters().reassembled, 1u);
  auto out = drain(host);
  ASSERT_EQ(out.size(), 2u);  // 2008 bytes of ICMP over a 1500-byte MTU
  int replies = 0;
  peer.set_on_echo_reply([&](const EchoReply& r) {
    EXPECT_EQ(r.from, kHost);
    // Reassembled on both ways and echoed unchanged (RFC 792).
    EXPECT_EQ(std::vector<std::uint8_t>(r.payload.begin(), r.payload.end()), payload);
    ++replies;
  });
  for (auto& f : out) peer.receive(f, t0);
  EXPECT_EQ(replies, 1);
}

TEST(StackIcmp, NoReplyToBroadcastEcho) {
  Stack s(config());
  s.receive(echo_request(kPeer, Ipv4Addr(192, 0, 2, 255), 8), t0);
  s.receive(echo_request(kPeer, Ipv4Addr::broadcast(), 8), t0);
  EXPECT_TRUE(drain(s).empty());
  EXPECT_EQ(s.icmp_counters().in_echo_requests, 2u);
  // Positive control: the same request to the host's own address is
  // answered, so the silence above is the broadcast rule (RFC 1122
  // §3.2.2.6 allows it to be discarded), not a stack that answers nothing.
  s.receive(echo_request(kPeer, kHost, 8), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  auto icmp = wire::IcmpView::parse(wire::Ipv4View::parse(out[0])->payload());
  ASSERT_TRUE(icmp);
  EXPECT_EQ(icmp->type(), wire::icmp_type::echo_reply);
}

TEST(StackUdp, ClosedPortGetsPortUnreachableQuotingTheDatagram) {
  Stack s(config());
  auto pkt = udp_packet({kPeer, Port(5000)}, {kHost, Port(9999)}, "hello");
  s.receive(pkt, t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  auto ip = wire::Ipv4View::parse(out[0]);
  ASSERT_TRUE(ip);
  EXPECT_EQ(ip->dst(), kPeer);
  auto icmp = wire::IcmpView::parse(ip->payload());
  ASSERT_TRUE(icmp);
  EXPECT_EQ(icmp->type(), wire::icmp_type::dest_unreachable);
  EXPECT_EQ(icmp->code(), wire::icmp_code::port_unreachable);
  // The quote is the whole original datagram (it is short).
  ASSERT_EQ(icmp->payload().size(), pkt.size());
  EXPECT_TRUE(std::equal(pkt.begin(), pkt.end(), icmp->payload().begin()));
  EXPECT_EQ(s.udp().counters().no_ports, 1u);
}

TEST(StackUdp, PortUnreachableIsRateLimited) {
  StackConfig c = config();
  c.icmp_error_burst = 5;
  c.icmp_errors_per_sec = 10;
  Stack s(c);
  for (int i = 0; i < 20; ++i) s.receive(udp_packet({kPeer, Port(5000)}, {kHost, Port(9999)}, "x"), t0);
  EXPECT_EQ(drain(s).size(), 5u);
  EXPECT_EQ(s.icmp_counters().rate_limited, 15u);
  // 100 ms later one more token has arrived.
  s.receive(udp_packet({kPeer, Port(5000)}, {kHost, Port(9999)}, "x"), t0 + 100ms);
  EXPECT_EQ(drain(s).size(), 1u);
}

TEST(StackUdp, NoIcmpAboutBroadcastOrIcmpErrors) {
  Stack s(config());
  s.receive(udp_packet({kPeer, Port(5000)}, {Ipv4Addr(192, 0, 2, 255), Port(9999)}, "x"), t0);
  s.receive(udp_packet({kPeer, Port(5000)}, {Ipv4Addr::broadcast(), Port(9999)}, "x"), t0);
  EXPECT_TRUE(drain(s).empty());
  // Positive control: the same datagram to the host's own address gets
  // its port unreachable (RFC 1122 §4.1.3.1), so the silence above is the
  // no-ICMP-about-broadcast rule (RFC 1122 §3.2.2), not a mute stack.
  s.receive(udp_packet({kPeer, Port(5000)}, {kHost, Port(9999)}, "x"), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  auto icmp = wire::IcmpView::parse(wire::Ipv4View::parse(out[0])->payload());
  ASSERT_TRUE(icmp);
  EXPECT_EQ(icmp->code(), wire::icmp_code::port_unreachable);
}

TEST(StackUdp, DemuxPrefersConnectedThenSpecificThenWildcard) {
  Stack s(config());
  auto& udp = s.udp();
  SocketId wild = udp.open(), specific = udp.open(), conn = udp.open();
  ASSERT_TRUE(udp.set_reuse_addr(wild, true));
  ASSERT_TRUE(udp.set_reuse_addr(specific, true));
  ASSERT_TRUE(udp.set_reuse_addr(conn, true));
  ASSERT_TRUE(udp.bind(wild, {Ipv4Addr::any(), Port(7000)}));
  ASSERT_TRUE(udp.bind(conn, {kHost, Port(7000)}));
  ASSERT_TRUE(udp.connect(conn, {kPeer, Port(1111)}));
  ASSERT_TRUE(udp.bind(specific, {kHost, Port(7000)}));

  s.receive(udp_packet({kPeer, Port(1111)}, {kHost, Port(7000)}, "to-conn"), t0);
  s.receive(udp_packet({kPeer, Port(2222)}, {kHost, Port(7000)}, "to-specific"), t0);
  s.receive(udp_packet({kPeer, Port(2222)}, {Ipv4Addr(192, 0, 2, 255), Port(7000)}, "to-wild"), t0);
  std::uint8_t buf[64];
  auto r = udp.recv_from(conn, buf);
  ASSERT_TRUE(r);
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(buf), r->len), "to-conn");
  EXPECT_EQ(r->from, (Endpoint{kPeer, Port(1111)}));
  r = udp.recv_from(specific, buf);
  ASSERT_TRUE(r);
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(buf), r->len), "to-specific");
  r = udp.recv_from(wild, buf);
  ASSERT_TRUE(r);
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(buf), r->len), "to-wild");
  EXPECT_EQ(udp.recv_from(conn, buf).error(), std::errc::resource_unavailable_try_again);
}

TEST(StackUdp, BindRules) {
  Stack s(config());
  auto& udp = s.udp();
  SocketId a = udp.open(), b = udp.open(), c = udp.open();
  EXPECT_EQ(udp.bind(a, {kFar, Port(53)}).error(), std::errc::address_not_available);
  ASSERT_TRUE(udp.bind(a, {Ipv4Addr::any(), Port(53)}));
  EXPECT_EQ(udp.bind(a, {Ipv4Addr::any(), Port(54)}).error(), std::errc::invalid_argument);
  EXPECT_EQ(udp.bind(b, {kHost, Port(53)}).error(), std::errc::address_in_use);
  ASSERT_TRUE(udp.bind(b, {Ipv4Addr(127, 0, 0, 1), Port(0)}));
  auto lp = udp.local_endpoint(b);
  ASSERT_TRUE(lp);
  EXPECT_GE(lp->port.value(), 49152);
  ASSERT_TRUE(udp.close(a));
  EXPECT_TRUE(udp.bind(c, {kHost, Port(53)}));
  EXPECT_EQ(udp.bind(99, {kHost, Port(1)}).error(), std::errc::bad_file_descriptor);
}

TEST(StackUdp, ConnectedSocketReportsRefusalOnce) {
  Stack s(config());
  auto& udp = s.udp();
  SocketId u = udp.open();
  ASSERT_TRUE(udp.connect(u, {kPeer, Port(4444)}));
  ASSERT_TRUE(udp.send_to(u, bytes("ping"), std::nullopt, t0));
  auto sent = drain(s);
  ASSERT_EQ(sent.size(), 1u);
  // The peer answers port unreachable quoting our datagram.
  std::vector<std::uint8_t> msg(8 + sent[0].size());
  std::memcpy(msg.data() + 8, sent[0].data(), sent[0].size());
  wire::IcmpRepr::dest_unreachable(wire::icmp_code::port_unreachable, sent[0].size()).emit(msg);
  s.receive(ip_packet(kPeer, kHost, IpProto::icmp, msg), t0);
  EXPECT_TRUE(udp.readable(u));
  std::uint8_t buf[16];
  EXPECT_EQ(udp.recv_from(u, buf).error(), std::errc::connection_refused);
  EXPECT_EQ(udp.recv_from(u, buf).error(), std::errc::resource_unavailable_try_again);
}

TEST(StackUdp, ReceiveQueueIsBoundedAndCountsDrops) {
  Stack s(config());
  auto& udp = s.udp();
  SocketId u = udp.open();
  ASSERT_TRUE(udp.set_recv_buffer(u, 4096));  // doubled to 8192, as Linux does
  ASSERT_TRUE(udp.bind(u, {Ipv4Addr::any(), Port(9000)}));
  std::string payload(1000, 'z');
  for (int i = 0; i < 20; ++i) s.receive(udp_packet({kPeer, Port(1)}, {kHost, Port(9000)}, payload), t0);
  const std::size_t fit = 8192 / (1000 + UdpLayer::kDatagramOverhead);
  EXPECT_EQ(udp.counters().in_datagrams, fit);
  EXPECT_EQ(udp.counters().rcvbuf_errors, 20 - fit);
  std::vector<std::uint8_t> buf(2000);
  std::size_t got = 0;
  while (udp.recv_from(u, buf)) ++got;
  EXPECT_EQ(got, fit);
}

TEST(StackUdp, TruncatesLongDatagramsAndTellsTheFullLength) {
  Stack s(config());
  auto& udp = s.udp();
  SocketId u = udp.open();
  ASSERT_TRUE(udp.bind(u, {Ipv4Addr::any(), Port(9000)}));
  s.receive(udp_packet({kPeer, Port(1)}, {kHost, Port(9000)}, "0123456789"), t0);
  std::uint8_t buf[4];
  auto r = udp.recv_from(u, buf);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->len, 4u);
  EXPECT_EQ(r->full_len, 10u);
}

TEST(StackUdp, LargeDatagramIsFragmentedUnlessDontFragment) {
  Stack s(config(1500));
  auto& udp = s.udp();
  SocketId u = udp.open();
  std::vector<std::uint8_t> big(3000, 1);
  ASSERT_TRUE(udp.send_to(u, big, Endpoint{kPeer, Port(9)}, t0));
  EXPECT_EQ(drain(s).size(), 3u);
  ASSERT_TRUE(udp.set_dont_fragment(u, true));
  EXPECT_EQ(udp.send_to(u, big, Endpoint{kPeer, Port(9)}, t0).error(), std::errc::message_size);
  std::vector<std::uint8_t> huge(65508, 1);
  EXPECT_EQ(udp.send_to(u, huge, Endpoint{kPeer, Port(9)}, t0).error(), std::errc::message_size);
}

TEST(StackUdp, NoRouteOutsidePrefixWithoutGateway) {
  StackConfig c = config();
  c.gateway.reset();
  Stack s(c);
  SocketId u = s.udp().open();
  EXPECT_EQ(s.udp().send_to(u, bytes("x"), Endpoint{kFar, Port(9)}, t0).error(), std::errc::network_unreachable);
  EXPECT_TRUE(s.udp().send_to(u, bytes("x"), Endpoint{kPeer, Port(9)}, t0));
}

TEST(StackLoopback, OwnAddressAnd127NeverReachTheLink) {
  Stack s(config());
  auto& udp = s.udp();
  SocketId server = udp.open(), client = udp.open();
  ASSERT_TRUE(udp.bind(server, {Ipv4Addr::any(), Port(8000)}));
  ASSERT_TRUE(udp.send_to(client, bytes("via-own"), Endpoint{kHost, Port(8000)}, t0));
  ASSERT_TRUE(udp.send_to(client, bytes("via-lo"), Endpoint{Ipv4Addr(127, 0, 0, 1), Port(8000)}, t0));
  EXPECT_FALSE(s.has_output());
  ASSERT_TRUE(s.next_deadline());
  s.poll(t0);
  EXPECT_FALSE(s.has_output());
  std::uint8_t buf[32];
  auto r1 = udp.recv_from(server, buf);
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->from.addr, kHost);
  auto r2 = udp.recv_from(server, buf);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->from.addr, Ipv4Addr(127, 0, 0, 1));
  EXPECT_EQ(r2->to, Ipv4Addr(127, 0, 0, 1));
  EXPECT_EQ(s.ip_counters().loopback, 2u);
}

TEST(StackInput, MalformedAndForeignPacketsAreCountedByReason) {
  Stack s(config());
  std::vector<std::uint8_t> v6(40, 0);
  v6[0] = 0x60;
  s.receive(v6, t0);
  s.receive(std::vector<std::uint8_t>{0x45, 0, 0}, t0);
  auto good = udp_packet({kPeer, Port(1)}, {kHost, Port(2)}, "x");
  auto bad_sum = good;
  bad_sum[10] ^= 1;
  s.receive(bad_sum, t0);
  auto bad_ihl = good;
  bad_ihl[0] = 0x44;
  s.receive(bad_ihl, t0);
  auto long_total = good;
  long_total[3] += 10;
  s.receive(long_total, t0);
  s.receive(udp_packet({kPeer, Port(1)}, {kFar, Port(2)}, "x"), t0);
  s.receive(udp_packet({Ipv4Addr(127, 0, 0, 1), Port(1)}, {kHost, Port(2)}, "x"), t0);
  auto& c = s.ip_counters();
  EXPECT_EQ(c.in_receives, 7u);
  EXPECT_EQ(c.in_unsupported, 1u);
  EXPECT_EQ(c.in_truncated, 1u);
  EXPECT_EQ(c.in_bad_checksum + c.in_bad_total_len, 2u);  // the checksum check may come first
  EXPECT_EQ(c.in_bad_header_len, 1u);
  EXPECT_EQ(c.in_not_for_us, 1u);
  EXPECT_EQ(c.in_martian, 1u);
  EXPECT_EQ(c.in_delivered, 0u);
  EXPECT_TRUE(drain(s).empty());
}

TEST(StackInput, UnknownProtocolGetsProtocolUnreachable) {
  Stack s(config());
  std::uint8_t junk[8] = {};
  auto pkt = ip_packet(kPeer, kHost, static_cast<IpProto>(132), junk);
  s.receive(pkt, t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  auto icmp = wire::IcmpView::parse(wire::Ipv4View::parse(out[0])->payload());
  ASSERT_TRUE(icmp);
  EXPECT_EQ(icmp->code(), wire::icmp_code::protocol_unreachable);
}
