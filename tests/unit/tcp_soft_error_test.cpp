// Soft errors (docs/errors.md): an ICMP error that does not abort a
// connection, or a send that the IP layer refused, is kept and reported
// instead of ETIMEDOUT if the connection then times out, as Linux reports
// sk_err_soft from tcp_write_err(); an ACK of new data forgets it.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tcp/tcp.hpp"
#include "tcp_test_util.hpp"
#include "wire/icmp.hpp"

using namespace weft;
using namespace weft::tcptest;

namespace {

// ICMP host unreachable (code 1): soft for an established connection
// (RFC 1122 §4.2.3.9).
std::vector<std::uint8_t> host_unreachable(std::span<const std::uint8_t> quoted) { return icmp_unreachable(1, quoted); }

// Sends 100 bytes on an established connection and returns the IP packet
// that carried them.
std::vector<std::uint8_t> send_and_capture(Stack& s, SocketId id, Instant now) {
  EXPECT_TRUE(s.tcp().send(id, bytes(100), now));
  std::vector<std::uint8_t> pkt;
  s.drain([&](std::span<const std::uint8_t> p) { pkt.assign(p.begin(), p.end()); });
  EXPECT_EQ(pkt.size(), 40u + 100u);
  return pkt;
}

// Runs the timers until the connection gives up (at most a simulated hour).
void run_until_closed(Stack& s, SocketId id, Instant& now) {
  for (int i = 0; i < 100000 && s.tcp().info(id) && s.tcp().info(id)->state != tcp::TcpState::closed; ++i) {
    now += 100ms;
    s.poll(now);
    drain(s);
  }
}

StackConfig short_retries() {
  StackConfig c = config();
  c.tcp.retries2 = 3;
  return c;
}

}  // namespace

TEST(TcpSoftError, AnIcmpSoftErrorIsReportedWhenTheConnectionTimesOut) {
  Stack s(short_retries());
  Instant now{};
  auto e = established(s, now);
  const auto pkt = send_and_capture(s, e.id, now);
  s.receive(host_unreachable(pkt), now);
  EXPECT_EQ(s.tcp().info(e.id)->state, tcp::TcpState::established) << "a soft error does not abort";
  EXPECT_FALSE(s.tcp().take_error(e.id)) << "nor is it reported before the timeout";
  run_until_closed(s, e.id, now);
  EXPECT_EQ(s.tcp().take_error(e.id), std::errc::host_unreachable);
  EXPECT_EQ(counter(s, "tcp.timeouts"), 1u);
}

TEST(TcpSoftError, WithoutOneTheTimeoutIsEtimedout) {  // the control: the same connection, no ICMP
  Stack s(short_retries());
  Instant now{};
  auto e = established(s, now);
  (void)send_and_capture(s, e.id, now);
  run_until_closed(s, e.id, now);
  EXPECT_EQ(s.tcp().take_error(e.id), std::errc::timed_out);
  EXPECT_EQ(counter(s, "tcp.timeouts"), 1u);
}

TEST(TcpSoftError, AnAckOfNewDataForgetsIt) {
  Stack s(short_retries());
  Instant now{};
  auto e = established(s, now);
  const auto first = send_and_capture(s, e.id, now);
  s.receive(host_unreachable(first), now);
  // The peer acknowledges the data after all: the path works.
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 100, flag::ack)), now);
  drain(s);
  (void)send_and_capture(s, e.id, now);
  run_until_closed(s, e.id, now);
  EXPECT_EQ(s.tcp().take_error(e.id), std::errc::timed_out);
}

namespace {

// An IpSender whose sends can be made to fail, under a bare TcpLayer: the
// Stack's own IP layer never refuses a segment on an established path.
class FlakyIp final : public IpSender {
 public:
  bool fail = false;
  std::vector<PacketBuf> sent;
  PacketBuf take_buffer(std::size_t n) override { return pool_.take(kHeaderRoom + n); }
  Status send_ip(PacketBuf&& b, const IpSendParams&, Instant) override {
    if (fail) return std::errc::no_buffer_space;
    sent.push_back(std::move(b));
    return ok_status();
  }
  bool has_route(Ipv4Addr) const override { return true; }
  Ipv4Addr source_for(Ipv4Addr) const override { return kHost; }
  bool is_local_address(Ipv4Addr a) const override { return a == kHost; }
  std::size_t mtu_for(Ipv4Addr) const override { return 1500; }
  bool checksum_offload() const override { return false; }

 private:
  PacketPool pool_;
};

// A segment the layer sent, parsed (the IP header room is not filled in).
wire::TcpRepr parse_sent(const PacketBuf& b) {
  auto v = wire::TcpView::parse(std::span<const std::uint8_t>(b).subspan(IpSender::kHeaderRoom), kHost, kPeer);
  EXPECT_TRUE(v);
  return v ? wire::TcpRepr::from(*v) : wire::TcpRepr{};
}

}  // namespace

TEST(TcpSoftError, ASendErrorOnARetransmissionIsReportedWhenTheConnectionTimesOut) {
  for (const bool failing : {true, false}) {  // the second round is the control: ETIMEDOUT
    SCOPED_TRACE(failing ? "retransmissions refused" : "retransmissions sent");
    FlakyIp ip;
    TcpConfig cfg = short_retries().tcp;
    TcpLayer tcp(ip, PortTableConfig{}, cfg, SipKey{});
    Instant now{};
    SocketId id = tcp.open();
    ASSERT_TRUE(tcp.connect(id, {kPeer, kSrvPort}, now));
    ASSERT_EQ(ip.sent.size(), 1u);
    const auto syn = parse_sent(ip.sent[0]);
    // The peer's SYN-ACK, as a segment from kPeer:kSrvPort.
    auto sa = hdr(7000, syn.seq.value() + 1, flag::syn | flag::ack, 65535, kSrvPort, syn.src_port);
    sa.options.mss = 1460;
    auto p = packet(sa, {}, kPeer, kHost);
    tcp.input(kPeer, kHost, std::span<const std::uint8_t>(p).subspan(20), now);
    ASSERT_EQ(tcp.info(id)->state, tcp::TcpState::established);
    ASSERT_TRUE(tcp.send(id, bytes(100), now));
    const std::size_t before = ip.sent.size();
    ip.fail = failing;
    for (int i = 0; i < 100000 && tcp.info(id)->state != tcp::TcpState::closed; ++i) {
      now += 100ms;
      tcp.poll(now);
    }
    EXPECT_EQ(tcp.take_error(id), failing ? std::errc::no_buffer_space : std::errc::timed_out);
    if (!failing) {
      EXPECT_GT(ip.sent.size(), before + 2) << "the retransmissions went out";
    }
    EXPECT_EQ(tcp.counters().timeouts, 1u);
  }
}
