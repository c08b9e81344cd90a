// Whatever TCP segments arrive, the host neither crashes, emits a malformed
// packet, answers a RST with a RST (RFC 9293 §3.10.7: "a reset is never
// sent in response to a reset"), nor hands the application a byte the peer
// did not send at that offset: well-formed segments with random flags,
// sequence and acknowledgement numbers around a live connection's windows,
// SYN floods at a listener, and mutated or truncated segments for it all.
#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "base/rng.hpp"
#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;

namespace {

// The peer's stream: the byte at stream offset k (k = 0 is the byte after
// the SYN). Random segments carry these bytes at their offsets, so every
// byte the host delivers can be checked against what was "sent" there.
std::uint8_t stream_byte(std::uint64_t k) { return static_cast<std::uint8_t>((k * 2654435761u) >> 13); }

struct Conn {
  Established e;
  Port peer_port;
  std::uint64_t read = 0;  // bytes the application has read (and checked)
  bool alive = true;
};

Conn open_conn(Stack& s, Instant now, Port peer_port, SocketId& listener) {
  Conn c{{}, peer_port};
  auto& tcp = s.tcp();
  auto syn = hdr(kPeerIsn, 0, flag::syn, 65535, peer_port);
  syn.options.mss = 1460;
  syn.options.sack_permitted = true;
  syn.options.window_scale = 7;
  s.receive(packet(syn), now);
  auto out = drain(s);
  EXPECT_EQ(out.size(), 1u);
  if (out.empty() || !out[0].has(flag::syn | flag::ack)) {
    ADD_FAILURE() << "no SYN-ACK for port " << peer_port.value() << ": "
                  << (out.empty() ? "nothing" : describe(out[0]));
    c.alive = false;
    return c;
  }
  c.e.listener = listener;
  c.e.iss = out[0].h.seq.value();
  s.receive(packet(hdr(kPeerIsn + 1, c.e.iss + 1, flag::ack, 65535, peer_port)), now);
  auto a = tcp.accept(listener);
  EXPECT_TRUE(a) << "port " << peer_port.value();
  if (a) c.e.id = a->id;
  c.alive = static_cast<bool>(a);
  drain(s);
  return c;
}

}  // namespace

TEST(StackRobustness, TcpSegmentsAndAListenerAreCountedNeverFatal) {
  Stack s(config({.sack = true, .timestamps = true, .wscale = true}));
  auto& tcp = s.tcp();
  SocketId listener = tcp.open();
  ASSERT_TRUE(tcp.bind(listener, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.listen(listener, 8));
  // A second listener takes the flood, so that the SYN queue it fills (no
  // SYN cookies yet: embryonic connections live through their SYN-ACK
  // retries) does not keep the live connection from being replaced.
  const Port kFloodPort{81};
  SocketId flooded = tcp.open();
  ASSERT_TRUE(tcp.bind(flooded, {Ipv4Addr::any(), kFloodPort}));
  ASSERT_TRUE(tcp.listen(flooded, 8));
  Rng rng(7);
  Instant now{};
  std::uint32_t next_port = 2000;
  Conn c = open_conn(s, now, Port{static_cast<std::uint16_t>(next_port++)}, listener);
  ASSERT_TRUE(c.alive);

  const int n = std::getenv("WEFT_SIM_SCALE") ? 20000 : 100000;
  std::vector<std::uint8_t> buf(65536);
  std::uint64_t emitted = 0, rst_in = 0, conns = 1, bytes_checked = 0;
  for (int i = 0; i < n; ++i) {
    // A segment for the live connection, well formed: offsets near what the
    // host expects and near what it sent, so every arrival step is reached.
    const std::uint32_t rcv_nxt =
        kPeerIsn + 1 + static_cast<std::uint32_t>(c.read + tcp.info(c.e.id).value_or(TcpInfo{}).recv_queue);
    const std::int64_t dseq = rng.chance(0.5) ? static_cast<std::int64_t>(rng.below(3000)) - 1500
                                              : static_cast<std::int64_t>(rng.below(140000)) - 70000;
    const std::uint32_t seq = rcv_nxt + static_cast<std::uint32_t>(dseq);
    const std::uint32_t ack = c.e.iss + 1 + static_cast<std::uint32_t>(rng.below(3000)) - 1000;
    wire::TcpFlags flags = flag::ack;
    if (rng.chance(0.05)) flags = wire::TcpFlags{static_cast<std::uint8_t>(rng.next())};
    if (flags.has(flag::rst) && !rng.chance(0.02))  // a live connection, mostly
      flags = wire::TcpFlags{static_cast<std::uint8_t>(flags.value() & ~flag::rst.value())};
    auto h = hdr(seq, ack, flags, static_cast<std::uint16_t>(rng.below(65536)), c.peer_port);
    if (rng.chance(0.3))
      h.options.timestamps = wire::TcpTimestamps{TsVal{static_cast<std::uint32_t>(rng.next())},
                                                 TsVal{static_cast<std::uint32_t>(rng.next())}};
    if (rng.chance(0.2)) {
      h.options.sack_count = static_cast<std::uint8_t>(1 + rng.below(3));
      for (int k = 0; k < h.options.sack_count; ++k) {
        const std::uint32_t l = c.e.iss + static_cast<std::uint32_t>(rng.below(4000));
        h.options.sack[k] = {SeqNum{l}, SeqNum{l + static_cast<std::uint32_t>(rng.below(3000))}};
      }
    }
    std::vector<std::uint8_t> data(rng.chance(0.6) ? rng.below(1461) : 0);
    const std::uint64_t off = static_cast<std::uint64_t>(static_cast<std::int64_t>(c.read) +
                                                         dseq);  // may wrap below 0: those bytes are never delivered
    for (std::size_t k = 0; k < data.size(); ++k) data[k] = stream_byte(off + k);
    if (flags.has(flag::rst)) ++rst_in;
    // What the host sends now answers this one segment.
    auto check_out = [&](bool answering_rst) {
      s.drain([&](std::span<const std::uint8_t> out) {
        ++emitted;
        auto ip = wire::Ipv4View::parse(out);
        ASSERT_TRUE(ip) << "host emitted a malformed packet";
        auto v = wire::TcpView::parse(ip->payload(), ip->src(), ip->dst());
        ASSERT_TRUE(v) << "host emitted a malformed TCP segment";
        if (answering_rst) {
          EXPECT_FALSE(v->has(flag::rst)) << "a RST answered with a RST, iteration " << i;
        }
      });
    };
    s.receive(packet(h, data), now);
    check_out(flags.has(flag::rst));

    // Something for the listener: a SYN from a new port, a mutated or
    // truncated segment (checksum not fixed: counted, never fatal).
    if (rng.chance(0.2)) {
      auto p = packet(hdr(static_cast<std::uint32_t>(rng.next()), static_cast<std::uint32_t>(rng.next()),
                          rng.chance(0.5) ? flag::syn : wire::TcpFlags{static_cast<std::uint8_t>(rng.next())}, 1024,
                          Port{static_cast<std::uint16_t>(1024 + rng.below(60000))},
                          rng.chance(0.8) ? kFloodPort : Port{static_cast<std::uint16_t>(rng.below(200))}),
                      bytes(rng.below(64)));
      if (rng.chance(0.5)) {
        for (int k = 1 + static_cast<int>(rng.below(3)); k > 0; --k)
          p[20 + rng.below(p.size() - 20)] ^= static_cast<std::uint8_t>(1u << rng.below(8));
      } else if (rng.chance(0.3)) {
        p.resize(20 + rng.below(p.size() - 20));
        // The IP header still claims the longer payload: IP drops it as
        // truncated, which is the point of this case too.
      }
      const bool rst =
          p.size() > 20 + 13 && wire::TcpFlags{p[20 + 13]}.has(flag::rst);  // as mutated: a flip may pass the checksum
      s.receive(p, now);
      check_out(rst);
    }
    now += std::chrono::microseconds(rng.below(2000));
    s.poll(now);
    check_out(false);

    // The application: reads (checking every byte), sometimes writes.
    if (c.alive) {
      auto r = tcp.recv(c.e.id, buf, now);
      if (r && r->len > 0) {
        for (std::size_t k = 0; k < r->len; ++k)
          ASSERT_EQ(buf[k], stream_byte(c.read + k)) << "byte " << c.read + k << " is not what the peer sent there";
        c.read += r->len;
        bytes_checked += r->len;
      } else if (r || r.error() != std::errc::resource_unavailable_try_again) {
        c.alive = false;  // reset, or the end of the peer's stream (a random FIN)
      }
      if (c.alive && rng.chance(0.05))
        (void)tcp.send(c.e.id, bytes(rng.below(3000)), now);  // any outcome is fine: the send buffer may be full
    }
    if (!c.alive || !tcp.info(c.e.id) || tcp.info(c.e.id)->state != tcp::TcpState::established) {
      if (tcp.info(c.e.id)) (void)tcp.abort(c.e.id, now);  // ends it whatever state it is in; any error is fine
      drain(s);
      drain(s);
      c = open_conn(s, now, Port{static_cast<std::uint16_t>(next_port++)}, listener);
      ++conns;
      ASSERT_TRUE(c.alive);
      ASSERT_LT(next_port, 65536u)
          << "connections replaced on most segments: the test no longer reaches a live connection";
    }
    EXPECT_LE(tcp.pending_accepts(flooded), 8u);
    if (rng.chance(0.01))
      while (auto a = tcp.accept(flooded)) (void)tcp.abort(a->id, now);  // any error is fine: not the test's connection
  }
  // The loop reached what it is about: bytes delivered and checked, RSTs
  // received, connections replaced, and the host answering.
  EXPECT_GT(bytes_checked, 100000u);
  // About n / 2000 RSTs are drawn (5% random flags, half with RST, 2% kept):
  // the bound scales with the reduced run under the sanitizers.
  EXPECT_GT(rst_in, static_cast<std::uint64_t>(n / 4000));
  EXPECT_GT(conns, 2u);
  EXPECT_GT(emitted, static_cast<std::uint64_t>(n / 2));
  EXPECT_GT(counter(s, "tcp.in_errs"), 0u);
  EXPECT_GT(counter(s, "tcp.challenge_acks") + counter(s, "tcp.challenge_limited"), 0u);
  EXPECT_GT(counter(s, "tcp.passive_opens"), conns);
}
