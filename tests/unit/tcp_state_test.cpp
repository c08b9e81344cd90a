// TCP as a specification: a Stack with a connection in a given state, fed
// crafted segments; the segments it answers with are checked. Closing and
// TIME-WAIT reuse are in tcp_close_test.cpp.
#include <gtest/gtest.h>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;
using tcp::TcpState;

namespace {
const Instant t0 = Instant{} + 1000s;
}

// ------------------------------------------------ no connection: RST rules

TEST(TcpReset, SynToClosedPortGetsRstAck) {
  Stack s(config());
  s.receive(packet(hdr(5000, 0, flag::syn)), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  // RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
  EXPECT_SEG(out[0], {.flags = flag::rst | flag::ack, .seq = 0, .ack = 5001, .len = 0});
  EXPECT_EQ(counter(s, "tcp.out_rsts"), 1u);
  EXPECT_EQ(counter(s, "tcp.no_socket"), 1u);
  EXPECT_EQ(s.icmp_counters().out_dest_unreachable, 0u) << "TCP answers with RST, not ICMP";
}

TEST(TcpReset, AckToClosedPortGetsRstAtItsAck) {
  Stack s(config());
  auto d = bytes(10);
  s.receive(packet(hdr(5000, 777, flag::ack), d), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::rst, .seq = 777, .len = 0});  // <SEQ=SEG.ACK><CTL=RST>
}

TEST(TcpReset, NeverAnswersRstWithRst) {
  Stack s(config());
  s.receive(packet(hdr(5000, 0, flag::rst)), t0);
  s.receive(packet(hdr(5000, 9, flag::rst | flag::ack)), t0);
  EXPECT_TRUE(drain(s).empty());
  // Positive control: the same segment without RST, to the same closed
  // port, is answered (RFC 9293 §3.10.7.1), so the silence above is the
  // RST rule and not a stack that answers nothing.
  s.receive(packet(hdr(5000, 9, flag::ack)), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::rst, .seq = 9});
}

TEST(TcpReset, BadChecksumIsCountedAndDropped) {
  Stack s(config());
  auto p = packet(hdr(5000, 0, flag::syn));
  p[20 + 16] ^= 0xff;
  s.receive(p, t0);
  EXPECT_TRUE(drain(s).empty());
  EXPECT_EQ(counter(s, "tcp.bad_checksum"), 1u);
  // Positive control: the same SYN with its checksum intact is answered
  // with RST,ACK (RFC 9293 §3.10.7.1): it was the checksum that silenced it.
  s.receive(packet(hdr(5000, 0, flag::syn)), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::rst | flag::ack, .seq = 0, .ack = 5001});
}

// ------------------------------------------------------------ handshakes

TEST(TcpOpen, PassiveOpenSynAckCarriesMssFromMtu) {
  Stack s(config());
  auto& tcp = s.tcp();
  SocketId l = tcp.open();
  ASSERT_TRUE(tcp.bind(l, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.listen(l, 4));
  EXPECT_EQ(tcp.accept(l).error(), std::errc::resource_unavailable_try_again);
  auto syn = hdr(kPeerIsn, 0, flag::syn);
  syn.options.mss = 1400;
  s.receive(packet(syn), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::syn | flag::ack, .ack = kPeerIsn + 1, .len = 0});
  EXPECT_EQ(out[0].h.options.mss, 1460);  // MTU 1500 - 40
  EXPECT_FALSE(out[0].h.options.sack_permitted) << "not offered by the peer";
  s.receive(packet(hdr(kPeerIsn + 1, out[0].h.seq.value() + 1, flag::ack)), t0);
  auto a = tcp.accept(l);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->peer, (Endpoint{kPeer, kPeerPort}));
  auto i = tcp.info(a->id);
  EXPECT_EQ(i->state, TcpState::established);
  EXPECT_EQ(i->mss, 1400u);
  EXPECT_TRUE(tcp.events(a->id) & tcp_event::writable);
  EXPECT_EQ(counter(s, "tcp.passive_opens"), 1u);
}

// RFC 7323 §4.3: a retransmitted SYN is at or below Last.ACK.sent and its
// TSval is newer, so TS.Recent takes it and the repeated SYN-ACK echoes it
// (found against the kernel: the stale TSecr made Linux's first RTT sample
// include its 1 s SYN timeout).
TEST(TcpOpen, RepeatedSynAckEchoesTheRetransmittedSynsTimestamp) {
  Stack s(config({.timestamps = true}));
  auto& tcp = s.tcp();
  SocketId l = tcp.open();
  ASSERT_TRUE(tcp.bind(l, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.listen(l, 4));
  auto syn = hdr(kPeerIsn, 0, flag::syn);
  syn.options.timestamps = wire::TcpTimestamps{TsVal{1000}, TsVal{0}};
  s.receive(packet(syn), t0);
  auto first = drain(s);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(first[0].h.options.timestamps);
  EXPECT_EQ(first[0].h.options.timestamps->ecr.value(), 1000u);
  syn.options.timestamps = wire::TcpTimestamps{TsVal{2000}, TsVal{0}};
  s.receive(packet(syn), t0 + 1s);
  auto again = drain(s);
  ASSERT_EQ(again.size(), 1u);
  ASSERT_SEG(again[0],
             {.flags = flag::syn | flag::ack, .seq = first[0].h.seq.value(), .ack = kPeerIsn + 1, .tsecr = 2000});
}

TEST(TcpOpen, ActiveOpenCompletesAndIsWritable) {
  Stack s(config());
  auto& tcp = s.tcp();
  SocketId c = tcp.open();
  ASSERT_TRUE(tcp.connect(c, {kPeer, Port(9)}, t0));
  EXPECT_EQ(tcp.info(c)->state, TcpState::syn_sent);
  EXPECT_FALSE(tcp.events(c) & tcp_event::writable);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::syn, .len = 0});
  EXPECT_TRUE(out[0].h.options.mss);
  const Port local = out[0].h.src_port;
  EXPECT_TRUE(local.is_dynamic());
  auto sa = hdr(7000, out[0].h.seq.value() + 1, flag::syn | flag::ack, 65535, Port(9), local);
  sa.options.mss = 1460;
  s.receive(packet(sa), t0 + 10ms);
  auto ack = drain(s);
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_SEG(ack[0], {.flags = flag::ack, .seq = out[0].h.seq.value() + 1, .ack = 7001, .len = 0});
  EXPECT_EQ(tcp.info(c)->state, TcpState::established);
  EXPECT_TRUE(tcp.events(c) & tcp_event::writable);
  EXPECT_EQ(tcp.info(c)->srtt, 10ms);
}

TEST(TcpOpen, RstToSynIsConnectionRefused) {
  Stack s(config());
  auto& tcp = s.tcp();
  SocketId c = tcp.open();
  ASSERT_TRUE(tcp.connect(c, {kPeer, Port(9)}, t0));
  auto syn = drain(s).at(0);
  s.receive(packet(hdr(0, syn.h.seq.value() + 1, flag::rst | flag::ack, 0, Port(9), syn.h.src_port)), t0);
  EXPECT_TRUE(tcp.events(c) & tcp_event::error);
  EXPECT_EQ(tcp.take_error(c), std::errc::connection_refused);
  EXPECT_EQ(tcp.info(c)->state, TcpState::closed);
  EXPECT_EQ(counter(s, "tcp.attempt_fails"), 1u);
}

TEST(TcpOpen, RstWithWrongAckInSynSentIsIgnored) {
  Stack s(config());
  auto& tcp = s.tcp();
  SocketId c = tcp.open();
  ASSERT_TRUE(tcp.connect(c, {kPeer, Port(9)}, t0));
  auto syn = drain(s).at(0);
  s.receive(packet(hdr(0, syn.h.seq.value() + 77, flag::rst | flag::ack, 0, Port(9), syn.h.src_port)), t0);
  EXPECT_EQ(tcp.info(c)->state, TcpState::syn_sent);
}

TEST(TcpOpen, SynRetriesBackOffThenTimeOut) {
  StackConfig cfg = config();
  cfg.tcp.syn_retries = 3;
  Stack s(cfg);
  auto& tcp = s.tcp();
  SocketId c = tcp.open();
  ASSERT_TRUE(tcp.connect(c, {kPeer, Port(9)}, t0));
  EXPECT_EQ(drain(s).size(), 1u);
  // RFC 6298 §2.1: 1 s initial RTO, doubled per retry (§5.5).
  Instant t = t0;
  for (Duration d : {1s, 2s, 4s}) {
    t += d;
    ASSERT_EQ(s.next_deadline(), t);
    s.poll(t);
    auto out = drain(s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_SEG(out[0], {.flags = flag::syn});
  }
  t += 8s;
  s.poll(t);
  EXPECT_TRUE(drain(s).empty());
  EXPECT_EQ(tcp.take_error(c), std::errc::timed_out);
}

TEST(TcpOpen, IcmpPortUnreachableRefusesSynSent) {
  Stack s(config());
  auto& tcp = s.tcp();
  SocketId c = tcp.open();
  ASSERT_TRUE(tcp.connect(c, {kPeer, Port(9)}, t0));
  std::vector<std::uint8_t> sent;
  s.drain([&](std::span<const std::uint8_t> p) { sent.assign(p.begin(), p.end()); });
  s.receive(icmp_unreachable(3, sent), t0);  // port unreachable quoting the SYN
  EXPECT_EQ(tcp.take_error(c), std::errc::connection_refused);
}

TEST(TcpOpen, SimultaneousOpen) {
  Stack s(config());
  auto& tcp = s.tcp();
  SocketId c = tcp.open();
  ASSERT_TRUE(tcp.connect(c, {kPeer, Port(9)}, t0));
  auto syn = drain(s).at(0);
  // The peer's own SYN crosses ours.
  auto their = hdr(7000, 0, flag::syn, 65535, Port(9), syn.h.src_port);
  their.options.mss = 1460;
  s.receive(packet(their), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  // RFC 9293 §3.10.7.3: the SYN-ACK repeats our ISS and acknowledges theirs.
  EXPECT_SEG(out[0], {.flags = flag::syn | flag::ack, .seq = syn.h.seq.value(), .ack = 7001});
  EXPECT_EQ(tcp.info(c)->state, TcpState::syn_received);
  s.receive(packet(hdr(7001, syn.h.seq.value() + 1, flag::syn | flag::ack, 65535, Port(9), syn.h.src_port)), t0);
  (void)drain(s);
  s.receive(packet(hdr(7001, syn.h.seq.value() + 1, flag::ack, 65535, Port(9), syn.h.src_port)), t0);
  EXPECT_EQ(tcp.info(c)->state, TcpState::established);
}

TEST(TcpOpen, ListenerBacklogDropsExtraSyns) {
  Stack s(config());
  auto& tcp = s.tcp();
  SocketId l = tcp.open();
  ASSERT_TRUE(tcp.bind(l, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.listen(l, 2));
  for (int i = 0; i < 3; ++i) s.receive(packet(hdr(100, 0, flag::syn, 65535, Port(40000 + i))), t0);
  EXPECT_EQ(drain(s).size(), 2u);
  EXPECT_EQ(counter(s, "tcp.listen_overflows"), 1u);
}

// -------------------------------------------------------- data and ACKs

TEST(TcpData, InOrderDataIsAckedAfterTheDelayedAckTimer) {
  Stack s(config());
  auto e = established(s, t0);
  spend_quick_acks(s, e, t0);
  auto d = bytes(100);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack | flag::psh), d), t0);
  EXPECT_TRUE(drain(s).empty()) << "one small segment: the ACK is delayed";
  EXPECT_TRUE(s.tcp().events(e.id) & tcp_event::readable);
  ASSERT_EQ(s.next_deadline(), t0 + 40ms);
  s.poll(t0 + 40ms);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt(), .ack = e.peer_nxt + 100, .len = 0});
  std::vector<std::uint8_t> buf(200);
  auto r = s.tcp().recv(e.id, buf, t0, true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->len, 100u);
  r = s.tcp().recv(e.id, buf, t0);
  EXPECT_EQ(r->len, 100u);
  EXPECT_TRUE(std::equal(d.begin(), d.end(), buf.begin()));
  EXPECT_EQ(s.tcp().recv(e.id, buf, t0).error(), std::errc::resource_unavailable_try_again);
}

TEST(TcpData, EverySecondFullSegmentIsAckedAtOnce) {
  Stack s(config());
  auto e = established(s, t0);
  spend_quick_acks(s, e, t0);
  auto d = bytes(1460);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack), d), t0);
  EXPECT_TRUE(drain(s).empty());
  s.receive(packet(hdr(e.peer_nxt + 1460, e.host_nxt(), flag::ack), d), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .ack = e.peer_nxt + 2920, .len = 0});
}

TEST(TcpData, OutOfOrderIsAckedAtOnceWithSackThenHoleFilled) {
  Stack s(config({.sack = true}));
  wire::TcpOptions o;
  o.sack_permitted = true;
  auto e = established(s, t0, o);
  auto d = bytes(100);
  s.receive(packet(hdr(e.peer_nxt + 100, e.host_nxt(), flag::ack), d), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0],
             {.flags = flag::ack, .ack = e.peer_nxt, .len = 0, .sack = {{{e.peer_nxt + 100, e.peer_nxt + 200}}}});
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack), d), t0);
  out = drain(s);
  ASSERT_EQ(out.size(), 1u) << "a filled hole is acked at once";
  EXPECT_SEG(out[0], {.flags = flag::ack, .ack = e.peer_nxt + 200, .len = 0, .sack = {{}}});
  EXPECT_EQ(s.tcp().info(e.id)->recv_queue, 200u);
}

TEST(TcpData, SendIsSegmentedToMssAndRetransmittedWithBackoff) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  auto d = bytes(3000);
  ASSERT_EQ(*tcp.send(e.id, d, t0), 3000u);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 2u) << "Nagle holds the 80-byte tail while data is unacknowledged";
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt(), .ack = e.peer_nxt, .len = 1460});
  EXPECT_SEG(out[1], {.flags = flag::ack, .seq = e.host_nxt() + 1460, .len = 1460});
  // No ACK: the first segment is resent at the RTO (1 s, no sample yet... the
  // handshake gave one of 0, so the minimum 200 ms applies), then doubled.
  auto first = s.next_deadline();
  ASSERT_TRUE(first);
  s.poll(*first);
  out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt(), .len = 1460});
  auto second = s.next_deadline();
  ASSERT_TRUE(second);
  EXPECT_EQ(*second - *first, 2 * (*first - t0));
  EXPECT_EQ(counter(s, "tcp.retrans_segs"), 1u);
  EXPECT_EQ(tcp.info(e.id)->send_queue, 3000u);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 2920, flag::ack)), *first + 1ms);
  out = drain(s);
  ASSERT_EQ(out.size(), 1u) << "everything acknowledged: Nagle lets the tail go";
  // PSH on the segment that empties the send buffer (RFC 9293 §3.9.1).
  EXPECT_SEG(out[0], {.flags = flag::psh | flag::ack, .seq = e.host_nxt() + 2920, .len = 80});
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 3000, flag::ack)), *first + 2ms);
  EXPECT_EQ(tcp.info(e.id)->send_queue, 0u);
  EXPECT_FALSE(s.next_deadline()) << "nothing outstanding: no timer";
}

TEST(TcpData, FastRetransmitOnThreeDuplicateAcks) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.send(e.id, bytes(1460 * 5), t0));
  ASSERT_EQ(drain(s).size(), 5u);
  for (int i = 0; i < 2; ++i) s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack)), t0 + 1ms);
  EXPECT_TRUE(drain(s).empty()) << "two duplicate ACKs are not yet a loss";
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack)), t0 + 1ms);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt(), .len = 1460});
  EXPECT_EQ(counter(s, "tcp.fast_retransmits"), 1u);
  EXPECT_EQ(counter(s, "tcp.newreno_recoveries"), 1u);
}

TEST(TcpData, SendBufferFullIsEagain) {
  Stack s(config());
  auto e = established(s, t0);
  auto big = bytes(100000);
  auto n = s.tcp().send(e.id, big, t0);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 65536u);
  EXPECT_FALSE(s.tcp().events(e.id) & tcp_event::writable);
  EXPECT_EQ(s.tcp().send(e.id, big, t0).error(), std::errc::resource_unavailable_try_again);
}

TEST(TcpWindow, ZeroWindowIsProbedByThePersistTimer) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack, 0)), t0);
  ASSERT_TRUE(tcp.send(e.id, bytes(500), t0));
  EXPECT_TRUE(drain(s).empty()) << "zero window: nothing may be sent";
  auto d = s.next_deadline();
  ASSERT_TRUE(d);
  s.poll(*d);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  // Probe: an old sequence number elicits an ACK.
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt() - 1, .ack = e.peer_nxt, .len = 0});
  EXPECT_EQ(counter(s, "tcp.persist_probes"), 1u);
  auto d2 = s.next_deadline();
  ASSERT_TRUE(d2);
  EXPECT_GT(*d2 - *d, *d - t0) << "backoff";
  // The window opens: the data goes at once.
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack, 1000)), *d + 1ms);
  out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::psh | flag::ack, .seq = e.host_nxt(), .len = 500});
}

TEST(TcpWindow, ReceiverAdvertisesFreeSpaceAndNeverAcceptsBeyondIt) {
  Stack s(config());
  auto e = established(s, t0);
  // 65535-byte buffer: after 60000 unread bytes, the window is 5535.
  for (std::uint32_t off = 0; off < 60000; off += 1000)
    s.receive(packet(hdr(e.peer_nxt + off, e.host_nxt(), flag::ack), bytes(1000)), t0);
  s.poll(t0 + 40ms);  // the last ACK may be a delayed one
  auto out = drain(s);
  ASSERT_FALSE(out.empty());
  EXPECT_SEG(out.back(), {.flags = flag::ack, .ack = e.peer_nxt + 60000, .window = 5535});
  EXPECT_EQ(s.tcp().info(e.id)->recv_queue, 60000u);
}

// ------------------------------------------------- RFC 5961 and resets

TEST(TcpRfc5961, RstInWindowButNotExactGetsChallengeAck) {
  Stack s(config());
  auto e = established(s, t0);
  s.receive(packet(hdr(e.peer_nxt + 10, 0, flag::rst)), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  // RFC 5961 §3.2: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt(), .ack = e.peer_nxt, .len = 0});
  EXPECT_EQ(s.tcp().info(e.id)->state, TcpState::established);
  EXPECT_EQ(counter(s, "tcp.challenge_acks"), 1u);
}

TEST(TcpRfc5961, RstOutOfWindowIsDroppedSilently) {
  Stack s(config());
  auto e = established(s, t0);
  s.receive(packet(hdr(e.peer_nxt + 1000000, 0, flag::rst)), t0);
  EXPECT_TRUE(drain(s).empty());
  EXPECT_EQ(s.tcp().info(e.id)->state, TcpState::established);
  // Positive control: the nearest RST that must be answered, one in the
  // window but not at RCV.NXT, gets its challenge ACK (RFC 5961 §3.2); so
  // the silence above is the window check, not a connection that no longer
  // answers anything.
  s.receive(packet(hdr(e.peer_nxt + 10, 0, flag::rst)), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt(), .ack = e.peer_nxt, .len = 0});
}

TEST(TcpRfc5961, ExactRstResetsAndRecvReportsIt) {
  Stack s(config());
  auto e = established(s, t0);
  s.receive(packet(hdr(e.peer_nxt, 0, flag::rst)), t0);
  EXPECT_TRUE(drain(s).empty()) << "a RST is never answered";
  // Positive control: the peer's next segment on the tuple is now answered
  // with <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.2, the listener's rule
  // for an ACK), so the silence above was the RST rule and the connection
  // is really gone, not merely mute.
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack)), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::rst, .seq = e.host_nxt(), .len = 0});
  std::vector<std::uint8_t> buf(10);
  EXPECT_EQ(s.tcp().recv(e.id, buf, t0).error(), std::errc::connection_reset);
  EXPECT_EQ(s.tcp().recv(e.id, buf, t0).error(), std::errc::connection_reset) << "not an end of stream";
  EXPECT_EQ(s.tcp().send(e.id, buf, t0).error(), std::errc::broken_pipe);
  EXPECT_EQ(counter(s, "tcp.estab_resets"), 1u);
}

TEST(TcpRfc5961, SynInEstablishedGetsChallengeAck) {
  Stack s(config());
  auto e = established(s, t0);
  s.receive(packet(hdr(e.peer_nxt + 5, 0, flag::syn)), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  // RFC 5961 §4.2: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt(), .ack = e.peer_nxt, .len = 0});
  EXPECT_EQ(s.tcp().info(e.id)->state, TcpState::established);
}

TEST(TcpRfc5961, AckOfUnsentDataGetsAckAndIsDropped) {
  Stack s(config());
  auto e = established(s, t0);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 5000, flag::ack), bytes(10)), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  // The data was dropped with the segment: the ACK is at RCV.NXT (RFC 9293 §3.10.7.4).
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt(), .ack = e.peer_nxt, .len = 0});
  EXPECT_EQ(s.tcp().info(e.id)->recv_queue, 0u);
}

TEST(TcpRfc5961, ChallengeAcksAreRateLimited) {
  Stack s(config());
  auto e = established(s, t0);
  for (int i = 0; i < 50; ++i) s.receive(packet(hdr(e.peer_nxt + 10, 0, flag::rst)), t0);
  EXPECT_EQ(drain(s).size(), 10u);
  EXPECT_EQ(counter(s, "tcp.challenge_limited"), 40u);
}

// ---------------------------------------------------------------- misc

TEST(TcpApi, ErrorsUsersExpect) {
  Stack s(config());
  auto& tcp = s.tcp();
  std::vector<std::uint8_t> buf(4);
  EXPECT_EQ(tcp.send(999, buf, t0).error(), std::errc::bad_file_descriptor);
  SocketId a = tcp.open();
  EXPECT_EQ(tcp.send(a, buf, t0).error(), std::errc::not_connected);
  EXPECT_EQ(tcp.recv(a, buf, t0).error(), std::errc::not_connected);
  EXPECT_EQ(tcp.bind(a, {Ipv4Addr(10, 9, 9, 9), Port(1)}).error(), std::errc::address_not_available);
  ASSERT_TRUE(tcp.bind(a, {Ipv4Addr::any(), Port(81)}));
  EXPECT_EQ(tcp.bind(a, {Ipv4Addr::any(), Port(82)}).error(), std::errc::invalid_argument);
  SocketId b = tcp.open();
  EXPECT_EQ(tcp.bind(b, {Ipv4Addr::any(), Port(81)}).error(), std::errc::address_in_use);
  EXPECT_EQ(tcp.connect(b, {kPeer, Port(0)}, t0).error(), std::errc::invalid_argument);
  EXPECT_EQ(tcp.accept(b).error(), std::errc::invalid_argument);
  ASSERT_TRUE(tcp.close(a, t0));
  EXPECT_EQ(tcp.close(a, t0).error(), std::errc::bad_file_descriptor);
}

TEST(TcpApi, IsnDependsOnTupleAndAdvancesWithTime) {
  Stack s(config());
  auto& tcp = s.tcp();
  SocketId a = tcp.open(), b = tcp.open();
  ASSERT_TRUE(tcp.connect(a, {kPeer, Port(9)}, t0));
  ASSERT_TRUE(tcp.connect(b, {kPeer, Port(10)}, t0));
  auto out = drain(s);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_NE(out[0].h.seq, out[1].h.seq);
  // Same tuple later: RFC 6528's 4 us clock moves it forward.
  Stack s2(config());
  SocketId c = s2.tcp().open();
  ASSERT_TRUE(s2.tcp().connect(c, {kPeer, Port(9)}, t0 + 4ms));
  auto out2 = drain(s2);
  ASSERT_EQ(out2.size(), 1u);
  EXPECT_EQ(out2[0].h.seq - out[0].h.seq, 1000) << "4 ms = 1000 ticks of 4 us";
}

TEST(TcpApi, InfoAndForEachSocket) {
  Stack s(config());
  auto e = established(s, t0);
  int n = 0;
  s.tcp().for_each_socket([&](const TcpInfo& i) {
    ++n;
    if (i.id == e.id) {
      EXPECT_EQ(i.state, TcpState::established);
      EXPECT_EQ(i.local, (Endpoint{kHost, kSrvPort}));
      EXPECT_EQ(i.remote, (Endpoint{kPeer, kPeerPort}));
      EXPECT_EQ(i.mss, 1460u);
      EXPECT_GT(i.cwnd, 0u);
    } else {
      EXPECT_EQ(i.state, TcpState::listen);
    }
  });
  EXPECT_EQ(n, 2);
  EXPECT_STREQ(tcp::state_name(TcpState::fin_wait_1), "FIN_WAIT1");
}

TEST(TcpOptions, TimestampsAndWindowScaleNegotiated) {
  Stack s(config({.sack = true, .timestamps = true, .wscale = true}));
  wire::TcpOptions o;
  o.sack_permitted = true;
  o.timestamps = wire::TcpTimestamps{TsVal{5000u}, TsVal{0u}};
  o.window_scale = 7;
  auto e = established(s, t0, o);
  auto i = s.tcp().info(e.id);
  EXPECT_TRUE(i->timestamps);
  EXPECT_TRUE(i->sack);
  EXPECT_EQ(i->snd_wscale, 7);
  EXPECT_EQ(i->mss, 1460u - 12) << "timestamps take 12 bytes of every segment";
  // PAWS: an older timestamp is rejected with an ACK.
  auto old = hdr(e.peer_nxt, e.host_nxt(), flag::ack);
  old.options.timestamps = wire::TcpTimestamps{TsVal{4000u}, TsVal{0u}};
  s.receive(packet(old, bytes(10)), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt(), .ack = e.peer_nxt, .len = 0});
  EXPECT_EQ(counter(s, "tcp.paws_rejected"), 1u);
}

TEST(TcpTimers, KeepaliveProbesThenTimesOut) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.set_keepalive(e.id, true, 10s, 1s, 2, t0));
  s.poll(t0 + 10s);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  // A keepalive is an old sequence number (RFC 9293 §3.8.4).
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt() - 1, .ack = e.peer_nxt, .len = 0});
  s.poll(t0 + 11s);
  EXPECT_EQ(drain(s).size(), 1u);
  s.poll(t0 + 12s);
  EXPECT_TRUE(drain(s).empty());
  EXPECT_EQ(tcp.take_error(e.id), std::errc::timed_out);
  EXPECT_EQ(counter(s, "tcp.keepalive_probes"), 2u);
}

TEST(TcpTimers, KeepaliveAnsweredKeepsTheConnection) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.set_keepalive(e.id, true, 10s, 1s, 2, t0));
  s.poll(t0 + 10s);
  EXPECT_EQ(drain(s).size(), 1u);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack)), t0 + 10s + 5ms);
  s.poll(t0 + 13s);
  EXPECT_TRUE(drain(s).empty());
  EXPECT_FALSE(tcp.take_error(e.id));
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::established);
  // Positive control: a full idle time after the answer the next keepalive
  // goes out, so the silence at 13 s was the answer resetting the probes,
  // not a timer that stopped for good.
  s.poll(t0 + 20s + 5ms);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = e.host_nxt() - 1, .len = 0});
}

TEST(TcpTimers, UserTimeoutAbortsWithEtimedout) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.set_user_timeout(e.id, 3s));
  ASSERT_TRUE(tcp.send(e.id, bytes(100), t0));
  (void)drain(s);
  Instant t = t0;
  while (auto d = s.next_deadline()) {
    if (*d > t0 + 60s) break;
    t = *d;
    s.poll(t);
    (void)drain(s);
  }
  EXPECT_GE(t - t0, 3s);
  EXPECT_LT(t - t0, 10s);
  EXPECT_EQ(tcp.take_error(e.id), std::errc::timed_out);
  EXPECT_EQ(tcp.info(e.id)->state, TcpState::closed);
}

TEST(TcpTimers, RetriesLimitAbortsWithoutUserTimeout) {
  StackConfig cfg = config();
  cfg.tcp.retries2 = 3;
  Stack s(cfg);
  auto e = established(s, t0);
  ASSERT_TRUE(s.tcp().send(e.id, bytes(100), t0));
  (void)drain(s);
  int retransmissions = 0;
  while (auto d = s.next_deadline()) {
    s.poll(*d);
    retransmissions += static_cast<int>(drain(s).size());
  }
  EXPECT_EQ(retransmissions, 3);
  EXPECT_EQ(s.tcp().take_error(e.id), std::errc::timed_out);
}

TEST(TcpWindow, ReceiverSillyWindowAvoidanceThenWindowUpdate) {
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  std::uint32_t off = 0;
  while (off < 65535) {
    const std::uint32_t n = std::min<std::uint32_t>(1460, 65535 - off);
    s.receive(packet(hdr(e.peer_nxt + off, e.host_nxt(), flag::ack), bytes(n)), t0);
    off += n;
  }
  (void)drain(s);
  // Data beyond a zero window is not taken, but an ACK comes back.
  s.receive(packet(hdr(e.peer_nxt + off, e.host_nxt(), flag::ack), bytes(10)), t0);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  // Buffer full: zero window.
  EXPECT_SEG(out[0], {.flags = flag::ack, .ack = e.peer_nxt + 65535, .window = 0, .len = 0});
  std::vector<std::uint8_t> buf(2000);
  ASSERT_EQ(tcp.recv(e.id, std::span(buf).first(100), t0)->len, 100u);
  EXPECT_TRUE(drain(s).empty()) << "100 bytes is a silly window (RFC 9293 §3.8.6.2.2)";
  ASSERT_EQ(tcp.recv(e.id, buf, t0)->len, 2000u);
  out = drain(s);
  ASSERT_EQ(out.size(), 1u) << "the window reopened by more than an MSS: update at once";
  EXPECT_SEG(out[0], {.flags = flag::ack, .ack = e.peer_nxt + 65535, .window = 2100, .len = 0});
}
