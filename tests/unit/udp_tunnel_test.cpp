// UdpTunnelLink over real OS UDP sockets on 127.0.0.1, ephemeral ports:
// packets both ways, and each kind of drop counted. Loopback needs no
// privileges; datagrams are awaited with poll() (with a deadline) rather
// than assumed to have arrived when sendto() returns.
#include "link/udp_tunnel.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "link_packets.hpp"

using namespace weft;

namespace {

const Ipv4Addr kA(192, 0, 2, 10), kB(192, 0, 2, 20), kC(192, 0, 2, 30);
const Ipv4Addr kLoopback(127, 0, 0, 1);
const Endpoint kAnyLoopbackPort{kLoopback, Port{0}};
const Instant kNow{};

bool wait_readable(int fd, std::chrono::milliseconds limit = std::chrono::milliseconds(2000)) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(limit.count())) == 1;
}

// receive() until it yields a packet or `limit` passes: the first datagram
// poll() reports may be one receive() drops.
std::size_t receive_within(UdpTunnelLink& l, std::span<std::uint8_t> buf,
                           std::chrono::milliseconds limit = std::chrono::milliseconds(2000)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (std::size_t n = l.receive(buf, kNow); n > 0) return n;
    wait_readable(l.poll_fd(), std::chrono::milliseconds(50));
  }
  return 0;
}

// A plain OS UDP socket on 127.0.0.1, playing a stranger or a peer that
// sends raw bytes.
struct RawSocket {
  int fd = -1;
  Endpoint local;
  RawSocket() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(kLoopback.value());
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
    socklen_t len = sizeof sin;
    EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len), 0);
    local = Endpoint{kLoopback, Port{ntohs(sin.sin_port)}};
  }
  ~RawSocket() { ::close(fd); }
  void send_to(Endpoint to, std::span<const std::uint8_t> bytes) const {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(to.addr.value());
    sin.sin_port = htons(to.port.value());
    ASSERT_EQ(::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&sin), sizeof sin),
              static_cast<ssize_t>(bytes.size()));
  }
  // The next datagram's bytes, or empty after a timeout.
  std::vector<std::uint8_t> recv() const {
    std::vector<std::uint8_t> buf(65536);
    if (!wait_readable(fd)) return {};
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    buf.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return buf;
  }
};

std::unique_ptr<UdpTunnelLink> open_link(std::vector<UdpPeer> peers = {},
                                         std::size_t mtu = UdpTunnelLink::kDefaultMtu) {
  auto l = UdpTunnelLink::open(kAnyLoopbackPort, std::move(peers), mtu);
  EXPECT_TRUE(l) << errc_message(l.error());
  return l ? std::move(l.value()) : nullptr;
}

// Two links that know each other: a (kA) and b (kB).
struct Pair {
  std::unique_ptr<UdpTunnelLink> a = open_link(), b = open_link();
  Pair() {
    EXPECT_TRUE(a->add_peer({kB, b->local_endpoint()}));
    EXPECT_TRUE(b->add_peer({kA, a->local_endpoint()}));
  }
};

}  // namespace

TEST(UdpTunnel, OpenOnPortZeroReportsTheBoundPortInItsName) {
  auto l = open_link();
  ASSERT_TRUE(l);
  EXPECT_FALSE(l->local_port().is_zero());
  EXPECT_EQ(l->local_endpoint().addr, kLoopback);
  EXPECT_EQ(l->name(), "udp:" + l->local_endpoint().to_string());
  EXPECT_GE(l->poll_fd(), 0);
  EXPECT_EQ(l->mtu(), 1472u);
}

TEST(UdpTunnel, CarriesPacketsBothWaysUnchanged) {
  Pair p;
  std::vector<std::uint8_t> buf(65536);
  for (std::uint32_t i = 0; i < 5; ++i) {
    auto ab = test::numbered(kA, kB, i, 100 + i);
    ASSERT_TRUE(p.a->send(ab, kNow));
    std::size_t n = receive_within(*p.b, buf);
    ASSERT_EQ(n, ab.size());
    EXPECT_TRUE(std::equal(ab.begin(), ab.end(), buf.begin()));

    auto ba = test::numbered(kB, kA, 1000 + i, 1472);  // exactly the MTU
    ASSERT_TRUE(p.b->send(ba, kNow));
    n = receive_within(*p.a, buf);
    ASSERT_EQ(n, ba.size());
    EXPECT_TRUE(std::equal(ba.begin(), ba.end(), buf.begin()));
  }
  EXPECT_EQ(p.a->counters().tx_packets, 5u);
  EXPECT_EQ(p.a->counters().rx_packets, 5u);
  EXPECT_EQ(p.b->counters().rx_bytes, 100u + 101 + 102 + 103 + 104);
  EXPECT_EQ(p.a->receive(buf, kNow), 0u);  // nothing left: 0, not an error
  EXPECT_EQ(p.a->counters().rx_errors, 0u);
}

// A packet given in parts leaves as one datagram, the parts joined in
// order, even when the IPv4 destination the link routes on is split.
TEST(UdpTunnel, APacketInPartsIsOneDatagram) {
  Pair p;
  std::vector<std::uint8_t> buf(65536);
  const auto ab = test::numbered(kA, kB, 3, 300);
  const std::span<const std::uint8_t> whole(ab);
  const std::span<const std::uint8_t> parts[] = {whole.first(17), {}, whole.subspan(17, 40), whole.subspan(57)};
  ASSERT_TRUE(p.a->send(PacketParts(parts), kNow));
  ASSERT_EQ(receive_within(*p.b, buf), ab.size());
  EXPECT_TRUE(std::equal(ab.begin(), ab.end(), buf.begin()));
  EXPECT_EQ(p.a->counters().tx_packets, 1u);
  EXPECT_EQ(p.a->counters().tx_bytes, ab.size());
  // Too large counts the parts together; too many parts is refused.
  const auto big = test::numbered(kA, kB, 4, 1472);
  const std::span<const std::uint8_t> one_over[] = {std::span(big), std::span(big).first(1)};
  EXPECT_FALSE(p.a->send(PacketParts(one_over), kNow));
  EXPECT_EQ(p.a->counters().tx_too_big, 1u);
  std::vector<std::span<const std::uint8_t>> many(Link::kMaxParts + 1, whole.first(1));
  many[0] = whole.first(20);
  EXPECT_FALSE(p.a->send(PacketParts(many), kNow));
  EXPECT_EQ(p.a->counters().tx_errors, 1u);
}

TEST(UdpTunnel, UnknownDestinationIsDroppedAndCounted) {
  Pair p;
  EXPECT_FALSE(p.a->send(test::numbered(kA, kC, 1), kNow));
  EXPECT_EQ(p.a->counters().tx_no_peer, 1u);
  EXPECT_EQ(p.a->counters().tx_packets, 0u);
}

TEST(UdpTunnel, OversizePacketIsRefusedBeforeSending) {
  auto a = open_link({}, 576);
  RawSocket peer;
  ASSERT_TRUE(a->add_peer({kB, peer.local}));
  EXPECT_FALSE(a->send(test::numbered(kA, kB, 1, 577), kNow));
  EXPECT_EQ(a->counters().tx_too_big, 1u);
  EXPECT_TRUE(a->send(test::numbered(kA, kB, 2, 576), kNow));
  auto got = peer.recv();
  ASSERT_EQ(got.size(), 576u);
  EXPECT_EQ(test::seq_of(got), 2u);  // the refused one never went out
}

TEST(UdpTunnel, SendRefusesWhatIsNotAnIpv4Packet) {
  Pair p;
  std::vector<std::uint8_t> short_packet(19, 0x45);
  EXPECT_FALSE(p.a->send(short_packet, kNow));
  auto v6 = test::numbered(kA, kB, 1);
  v6[0] = 0x60;
  EXPECT_FALSE(p.a->send(v6, kNow));
  EXPECT_EQ(p.a->counters().tx_malformed, 2u);
}

TEST(UdpTunnel, DatagramFromAnUnconfiguredSourceIsDroppedAndCounted) {
  Pair p;
  RawSocket stranger;
  // A well-formed packet claiming to come from the configured peer's weft
  // address: only the outer source decides.
  stranger.send_to(p.a->local_endpoint(), test::numbered(kB, kA, 666));
  ASSERT_TRUE(p.b->send(test::numbered(kB, kA, 7), kNow));
  std::vector<std::uint8_t> buf(65536);
  std::size_t n = receive_within(*p.a, buf);
  ASSERT_GT(n, 0u);
  EXPECT_EQ(test::seq_of(std::span(buf).first(n)), 7u);
  EXPECT_EQ(p.a->counters().rx_unknown_source, 1u);
  EXPECT_EQ(p.a->counters().rx_packets, 1u);
}

TEST(UdpTunnel, GarbageFromAPeerIsDroppedAndCounted) {
  auto a = open_link();
  RawSocket peer;
  ASSERT_TRUE(a->add_peer({kB, peer.local}));
  const std::uint8_t runt[] = {0x45, 0, 0, 19};
  peer.send_to(a->local_endpoint(), runt);
  std::vector<std::uint8_t> not_v4(40, 0x60);
  peer.send_to(a->local_endpoint(), not_v4);
  peer.send_to(a->local_endpoint(), {});  // an empty datagram
  peer.send_to(a->local_endpoint(), test::numbered(kB, kA, 9));
  std::vector<std::uint8_t> buf(65536);
  std::size_t n = receive_within(*a, buf);
  ASSERT_GT(n, 0u);
  EXPECT_EQ(test::seq_of(std::span(buf).first(n)), 9u);
  EXPECT_EQ(a->counters().rx_malformed, 3u);
}

TEST(UdpTunnel, DatagramLongerThanTheBufferIsDroppedNotTruncated) {
  Pair p;
  ASSERT_TRUE(p.b->send(test::numbered(kB, kA, 1, 1000), kNow));
  ASSERT_TRUE(p.b->send(test::numbered(kB, kA, 2, 200), kNow));
  std::vector<std::uint8_t> small(500);
  std::size_t n = receive_within(*p.a, small);
  ASSERT_EQ(n, 200u);
  EXPECT_EQ(test::seq_of(small), 2u);
  EXPECT_EQ(p.a->counters().rx_too_big, 1u);
}

// receive() fetches datagrams a batch at a time (recvmmsg): across batch
// boundaries, with drops inside a batch, every datagram comes out once and
// in order, and the link says it holds some (next_deadline) exactly while
// it does.
TEST(UdpTunnel, ManyDatagramsComeOutOnceAndInOrderAcrossBatches) {
  Pair p;
  RawSocket stranger;
  constexpr std::uint32_t kCount = 100;
  for (std::uint32_t i = 0; i < kCount; ++i) {
    ASSERT_TRUE(p.b->send(test::numbered(kB, kA, i, 60 + i), kNow));
    if (i % 7 == 3) stranger.send_to(p.a->local_endpoint(), test::numbered(kB, kA, 9999));
    if (i % 11 == 5) {
      ASSERT_TRUE(p.b->send(test::numbered(kB, kA, 8888, 1400), kNow));
    }
  }
  std::vector<std::uint8_t> buf(1000);  // the 1400-byte ones are too big for it
  bool saw_held = false;
  for (std::uint32_t i = 0; i < kCount; ++i) {
    std::size_t n = receive_within(*p.a, buf);
    ASSERT_EQ(n, 60u + i) << "datagram " << i;
    EXPECT_EQ(test::seq_of(std::span(buf).first(n)), i);
    if (auto d = p.a->next_deadline(); d) {
      EXPECT_EQ(*d, Instant{});
      saw_held = true;
    }
  }
  EXPECT_TRUE(saw_held) << "no batch ever held more than one datagram";
  EXPECT_EQ(p.a->receive(buf, kNow), 0u);
  EXPECT_EQ(p.a->receive(buf, kNow), 0u);
  EXPECT_FALSE(p.a->next_deadline());
  EXPECT_EQ(p.a->counters().rx_packets, kCount);
  EXPECT_EQ(p.a->counters().rx_unknown_source, 14u);
  EXPECT_EQ(p.a->counters().rx_too_big, 9u);
  EXPECT_EQ(p.a->counters().rx_errors, 0u);
  // And the next datagram after all that is read again.
  ASSERT_TRUE(p.b->send(test::numbered(kB, kA, 4242), kNow));
  std::size_t n = receive_within(*p.a, buf);
  ASSERT_GT(n, 0u);
  EXPECT_EQ(test::seq_of(std::span(buf).first(n)), 4242u);
}

TEST(UdpTunnel, LimitedBroadcastGoesToEveryPeer) {
  auto a = open_link();
  RawSocket b, c;
  ASSERT_TRUE(a->add_peer({kB, b.local}));
  ASSERT_TRUE(a->add_peer({kC, c.local}));
  ASSERT_TRUE(a->send(test::numbered(kA, Ipv4Addr::broadcast(), 5), kNow));
  EXPECT_EQ(test::seq_of(b.recv()), 5u);
  EXPECT_EQ(test::seq_of(c.recv()), 5u);
  EXPECT_EQ(a->counters().tx_packets, 2u);
}

TEST(UdpTunnel, OpenAndAddPeerRejectBadArguments) {
  EXPECT_EQ(UdpTunnelLink::open(kAnyLoopbackPort, {}, 67).error(), std::errc::invalid_argument);
  EXPECT_EQ(UdpTunnelLink::open(kAnyLoopbackPort, {}, 65508).error(), std::errc::invalid_argument);
  EXPECT_TRUE(UdpTunnelLink::open(kAnyLoopbackPort, {}, 65507));
  const Endpoint peer{kLoopback, Port{9}};
  EXPECT_EQ(UdpTunnelLink::open(kAnyLoopbackPort, {{kB, peer}, {kB, peer}}).error(), std::errc::file_exists);
  auto a = open_link();
  EXPECT_EQ(a->add_peer({Ipv4Addr::any(), peer}).error(), std::errc::invalid_argument);
  EXPECT_EQ(a->add_peer({Ipv4Addr::broadcast(), peer}).error(), std::errc::invalid_argument);
  EXPECT_EQ(a->add_peer({kB, {kLoopback, Port{0}}}).error(), std::errc::invalid_argument);
  EXPECT_EQ(a->add_peer({kB, {Ipv4Addr::any(), Port{9}}}).error(), std::errc::invalid_argument);
  // bind()'s errno comes back: the port is taken.
  EXPECT_EQ(UdpTunnelLink::open(a->local_endpoint(), {}).error(), std::errc::address_in_use);
}

TEST(UdpTunnel, ParsesEndpointsAndPeers) {
  auto e = parse_udp_endpoint("127.0.0.1:9000");
  ASSERT_TRUE(e);
  EXPECT_EQ(*e, (Endpoint{kLoopback, Port{9000}}));
  auto p = parse_udp_peer("192.0.2.20=127.0.0.1:9001");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->addr, kB);
  EXPECT_EQ(p->udp, (Endpoint{kLoopback, Port{9001}}));

  std::string why;
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x",
                          "localhost:9000", ":9000", "127.0.0.1:9000:1"}) {
    why.clear();
    EXPECT_FALSE(parse_udp_endpoint(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  for (const char* bad : {"192.0.2.20", "192.0.2.20=", "=127.0.0.1:9001", "192.0.2.20=127.0.0.1",
                          "192.0.2.300=127.0.0.1:9001", "192.0.2.20=127.0.0.1:0"}) {
    why.clear();
    EXPECT_FALSE(parse_udp_peer(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}
