// What a socket reports after a RST and after a failed connect (issue 11
// C3, C4), as Linux does (net/ipv4/tcp_input.c tcp_reset(); a failed
// connect leaves the socket CLOSED and connect() may be called again).
// Each test runs with both ends' sequence numbers in the lower half, in the
// upper half and just below the wrap.
#include <gtest/gtest.h>

#include <cstdio>
#include <optional>
#include <string>
#include <system_error>
#include <tuple>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;
using tcp::TcpState;

namespace {

const Instant t0 = Instant{} + 1000s;
const std::uint32_t kSeqValues[] = {0x00001000u, 0x80001000u, 0xFFFFFFF0u};

// Linux's tcp_reset(): SYN-SENT ECONNREFUSED; CLOSE-WAIT EPIPE (the peer
// had closed already; writing is what fails); any other synchronized state
// ECONNRESET. A connection in TIME-WAIT is done and reports nothing.
std::optional<std::errc> linux_error(TcpState s) {
  switch (s) {
    case TcpState::syn_sent:
      return std::errc::connection_refused;
    case TcpState::close_wait:
      return std::errc::broken_pipe;
    case TcpState::time_wait:
      return std::nullopt;
    default:
      return std::errc::connection_reset;
  }
}

class RstError : public ::testing::TestWithParam<std::tuple<TcpState, std::uint32_t>> {};
class Reconnect : public ::testing::TestWithParam<std::uint32_t> {};

}  // namespace

// A RST with SEG.SEQ = RCV.NXT (RFC 5961 §3.2) in each state; the socket
// stays open (shutdown(), never close()), so take_error() shows SO_ERROR.
TEST_P(RstError, RstSetsTheErrorLinuxSets) {
  const auto [state, v] = GetParam();
  Stack s(config({.iss = v}));
  auto& tcp = s.tcp();
  SocketId id = 0;
  std::uint32_t peer_nxt = v + 1, host_nxt = v + 1;
  Port local = kSrvPort;
  if (state == TcpState::syn_sent) {
    id = tcp.open();
    ASSERT_TRUE(tcp.connect(id, {kPeer, kPeerPort}, t0));
    const auto syn = drain(s).at(0);
    local = syn.h.src_port;
    s.receive(packet(hdr(0, v + 1, flag::rst | flag::ack, 0, kPeerPort, local)), t0 + 1ms);
  } else {
    auto e = established(s, t0, {}, v);
    ASSERT_EQ(e.iss, v);
    id = e.id;
    auto peer_fin = [&](bool acks_our_fin) {
      s.receive(packet(hdr(peer_nxt, host_nxt + (acks_our_fin ? 1 : 0), flag::fin | flag::ack)), t0 + 1ms);
      ++peer_nxt;
    };
    switch (state) {
      case TcpState::established:
        break;
      case TcpState::fin_wait_1:
        ASSERT_TRUE(tcp.shutdown(id, Shutdown::write, t0));
        break;
      case TcpState::fin_wait_2:
        ASSERT_TRUE(tcp.shutdown(id, Shutdown::write, t0));
        s.receive(packet(hdr(peer_nxt, host_nxt + 1, flag::ack)), t0 + 1ms);
        break;
      case TcpState::close_wait:
        peer_fin(false);
        break;
      case TcpState::closing:
        ASSERT_TRUE(tcp.shutdown(id, Shutdown::write, t0));
        peer_fin(false);  // crosses our FIN
        break;
      case TcpState::last_ack:
        peer_fin(false);
        ASSERT_TRUE(tcp.shutdown(id, Shutdown::write, t0 + 2ms));
        break;
      case TcpState::time_wait:
        ASSERT_TRUE(tcp.shutdown(id, Shutdown::write, t0));
        peer_fin(true);
        break;
      default:
        FAIL() << "not a state this test reaches";
    }
    ASSERT_EQ(tcp.info(id)->state, state);
    (void)drain(s);
    s.receive(packet(hdr(peer_nxt, 0, flag::rst)), t0 + 3ms);
  }
  EXPECT_EQ(tcp.info(id)->state, TcpState::closed);
  EXPECT_EQ(tcp.take_error(id), linux_error(state));
  EXPECT_EQ(tcp.take_error(id), std::nullopt) << "reported once";
}

INSTANTIATE_TEST_SUITE_P(EveryState, RstError,
                         ::testing::Combine(::testing::Values(TcpState::syn_sent, TcpState::established,
                                                              TcpState::fin_wait_1, TcpState::fin_wait_2,
                                                              TcpState::close_wait, TcpState::closing,
                                                              TcpState::last_ack, TcpState::time_wait),
                                            ::testing::ValuesIn(kSeqValues)),
                         [](const auto& info) {
                           return std::string(tcp::state_name(std::get<0>(info.param))) + "_seq_" +
                                  hex(std::get<1>(info.param));
                         });

// Linux: a connect() that failed leaves the socket CLOSED, and connect()
// may be called again; it starts a new handshake (weft answered EINVAL).
// Refused by a RST, then again after a timeout; the third attempt
// completes and carries data.
TEST_P(Reconnect, ConnectAgainAfterAFailedConnectStartsANewHandshake) {
  const std::uint32_t v = GetParam();
  Stack s(config({.iss = v}));
  auto& tcp = s.tcp();
  const SocketId c = tcp.open();
  Instant now = t0;

  // 1. Refused.
  ASSERT_TRUE(tcp.connect(c, {kPeer, kPeerPort}, now));
  auto syn = drain(s).at(0);
  ASSERT_SEG(syn, {.flags = flag::syn, .seq = v});
  s.receive(packet(hdr(0, v + 1, flag::rst | flag::ack, 0, kPeerPort, syn.h.src_port)), now);
  ASSERT_EQ(tcp.take_error(c), std::errc::connection_refused);
  ASSERT_EQ(tcp.info(c)->state, TcpState::closed);

  // 2. Timed out.
  ASSERT_TRUE(tcp.set_syn_retries(c, 1));
  now += 1s;
  auto st = tcp.connect(c, {kPeer, kPeerPort}, now);
  ASSERT_TRUE(st) << std::make_error_code(st.error()).message();
  syn = drain(s).at(0);
  EXPECT_SEG(syn, {.flags = flag::syn, .seq = v});
  EXPECT_EQ(tcp.info(c)->state, TcpState::syn_sent);
  for (int i = 0; i < 10 && tcp.info(c)->state == TcpState::syn_sent; ++i) {
    now += 10s;
    s.poll(now);
  }
  (void)drain(s);
  ASSERT_EQ(tcp.info(c)->state, TcpState::closed);
  // The error not read yet: this connect() reports it (as Linux's does)
  // and sends nothing.
  now += 1s;
  st = tcp.connect(c, {kPeer, kPeerPort}, now);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error(), std::errc::timed_out);
  EXPECT_TRUE(drain(s).empty());

  // 3. Completes: a fresh handshake (1 s initial RTO again, no backoff
  // left from the attempt that timed out) and data flows.
  st = tcp.connect(c, {kPeer, kPeerPort}, now);
  ASSERT_TRUE(st) << std::make_error_code(st.error()).message();
  syn = drain(s).at(0);
  EXPECT_SEG(syn, {.flags = flag::syn, .seq = v});
  EXPECT_EQ(s.next_deadline(), now + 1s);
  auto sa = hdr(7000, v + 1, flag::syn | flag::ack, 65535, kPeerPort, syn.h.src_port);
  sa.options.mss = 1460;
  s.receive(packet(sa), now + 10ms);
  auto out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack, .seq = v + 1, .ack = 7001});
  EXPECT_EQ(tcp.info(c)->state, TcpState::established);
  EXPECT_EQ(tcp.take_error(c), std::nullopt);
  ASSERT_TRUE(tcp.send(c, bytes(10), now + 20ms));
  out = drain(s);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_SEG(out[0], {.flags = flag::ack | flag::psh, .seq = v + 1, .ack = 7001, .len = 10});
}

INSTANTIATE_TEST_SUITE_P(SeqInBothHalvesAndAcrossTheWrap, Reconnect, ::testing::ValuesIn(kSeqValues),
                         [](const auto& info) { return "seq_" + hex(info.param); });
