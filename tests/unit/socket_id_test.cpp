// Socket ids carry their slot's generation: an id kept after its socket
// closed names nothing (EBADF), even once a new socket has the slot.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tcp_test_util.hpp"
#include "wire/udp.hpp"

using namespace weft;
using namespace weft::tcptest;

namespace {
const Instant t0 = Instant{} + 1000s;
constexpr auto kBadf = std::errc::bad_file_descriptor;

std::vector<std::uint8_t> udp_packet(Endpoint from, Endpoint to, std::size_t len) {
  std::vector<std::uint8_t> p(20 + 8 + len, 0x5a);
  wire::UdpRepr{from.port, to.port, static_cast<std::uint16_t>(len)}.emit(std::span<std::uint8_t>(p).subspan(20),
                                                                          from.addr, to.addr);
  wire::Ipv4Repr ip;
  ip.src = from.addr;
  ip.dst = to.addr;
  ip.protocol = static_cast<std::uint8_t>(IpProto::udp);
  ip.payload_len = static_cast<std::uint16_t>(8 + len);
  ip.emit(std::span<std::uint8_t>(p).first(20));
  return p;
}

// Every TCP user call given `stale` fails as for no socket.
void expect_tcp_stale(TcpLayer& tcp, SocketId stale) {
  std::vector<std::uint8_t> buf(4);
  EXPECT_EQ(tcp.bind(stale, {Ipv4Addr::any(), Port(7)}).error(), kBadf);
  EXPECT_EQ(tcp.listen(stale, 1).error(), kBadf);
  EXPECT_EQ(tcp.accept(stale).error(), kBadf);
  EXPECT_EQ(tcp.connect(stale, {kPeer, Port(9)}, t0).error(), kBadf);
  EXPECT_EQ(tcp.send(stale, buf, t0).error(), kBadf);
  EXPECT_EQ(tcp.recv(stale, buf, t0).error(), kBadf);
  EXPECT_EQ(tcp.shutdown(stale, Shutdown::both, t0).error(), kBadf);
  EXPECT_EQ(tcp.take_error(stale), kBadf);
  EXPECT_EQ(tcp.set_rcvbuf(stale, 4096).error(), kBadf);
  EXPECT_EQ(tcp.set_nodelay(stale, true, t0).error(), kBadf);
  EXPECT_EQ(tcp.set_linger(stale, std::nullopt).error(), kBadf);
  EXPECT_EQ(tcp.set_reuse_addr(stale, true).error(), kBadf);
  EXPECT_FALSE(tcp.options(stale));
  EXPECT_FALSE(tcp.info(stale));
  EXPECT_FALSE(tcp.local_endpoint(stale));
  EXPECT_FALSE(tcp.remote_endpoint(stale));
  EXPECT_EQ(tcp.events(stale), 0u);
  EXPECT_EQ(tcp.readable(stale), 0u);
  EXPECT_EQ(tcp.send_room(stale), 0u);
  EXPECT_EQ(tcp.pending_accepts(stale), 0u);
  EXPECT_EQ(tcp.abort(stale, t0).error(), kBadf);
  EXPECT_EQ(tcp.close(stale, t0).error(), kBadf);
}
}  // namespace

TEST(SocketId, SlotAndGeneration) {
  const SocketId id = make_socket_id(7, 3);
  EXPECT_EQ(socket_slot(id), 7u);
  EXPECT_EQ(socket_generation(id), 3u);
  EXPECT_EQ(make_socket_id(5, 0), SocketId{5}) << "a slot's first socket has its slot as id";
}

TEST(SocketId, TcpIdOfAClosedSocketIsEbadfEvenOnceItsSlotIsReused) {
  Stack s(config());
  auto& tcp = s.tcp();
  const SocketId a = tcp.open();
  ASSERT_TRUE(tcp.close(a, t0));
  expect_tcp_stale(tcp, a);  // closed, slot free
  const SocketId b = tcp.open();
  EXPECT_EQ(socket_slot(b), socket_slot(a)) << "the slot is reused";
  EXPECT_NE(b, a);
  expect_tcp_stale(tcp, a);  // the slot is someone else's now
  // b was left alone by all of that.
  EXPECT_EQ(tcp.info(b)->state, tcp::TcpState::closed);
  EXPECT_FALSE(tcp.local_endpoint(b)) << "the stale bind did not bind b";
  ASSERT_TRUE(tcp.bind(b, {Ipv4Addr::any(), kSrvPort}));
  ASSERT_TRUE(tcp.listen(b, 4));
  EXPECT_EQ(tcp.socket_count(), 1u);
}

TEST(SocketId, TcpIdOfAConnectionTheStackEndedIsEbadfOnceReused) {
  // A listener closed with a connection in its accept queue takes it along;
  // the ids of both are stale, and the listener that takes the slots next
  // and its child are not reached through them.
  Stack s(config());
  auto e = established(s, t0);
  auto& tcp = s.tcp();
  ASSERT_TRUE(tcp.close(e.id, t0));
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt() + 1, flag::rst)), t0);  // the orphan ends
  (void)drain(s);
  ASSERT_TRUE(tcp.close(e.listener, t0));
  ASSERT_EQ(tcp.socket_count(), 0u);
  auto e2 = established(s, t0 + 1s);
  EXPECT_EQ(socket_slot(e2.listener), socket_slot(e.listener));
  EXPECT_NE(e2.listener, e.listener);
  EXPECT_EQ(socket_slot(e2.id), socket_slot(e.id));
  EXPECT_NE(e2.id, e.id);
  expect_tcp_stale(tcp, e.id);
  expect_tcp_stale(tcp, e.listener);
  EXPECT_EQ(tcp.info(e2.id)->state, tcp::TcpState::established);
  EXPECT_EQ(tcp.info(e2.listener)->state, tcp::TcpState::listen);
  EXPECT_TRUE(drain(s).empty()) << "nothing sent on the new connection for the stale calls";
}

TEST(SocketId, UnknownSlotsAndGenerationsAreEbadf) {
  Stack s(config());
  const SocketId a = s.tcp().open();
  EXPECT_EQ(s.tcp().listen(make_socket_id(socket_slot(a), socket_generation(a) + 1), 1).error(), kBadf);
  EXPECT_EQ(s.tcp().listen(make_socket_id(socket_slot(a) + 1, 0), 1).error(), kBadf);
  const SocketId u = s.udp().open();
  EXPECT_EQ(s.udp().close(make_socket_id(socket_slot(u), socket_generation(u) + 1)).error(), kBadf);
  EXPECT_TRUE(s.udp().close(u));
}

TEST(SocketId, UdpIdOfAClosedSocketIsEbadfEvenOnceItsSlotIsReused) {
  Stack s(config());
  auto& udp = s.udp();
  std::vector<SocketId> readable;
  udp.set_on_readable([&](SocketId id) { readable.push_back(id); });
  const SocketId a = udp.open();
  ASSERT_TRUE(udp.bind(a, {Ipv4Addr::any(), Port(5000)}));
  ASSERT_TRUE(udp.close(a));
  const SocketId b = udp.open();
  EXPECT_EQ(socket_slot(b), socket_slot(a));
  EXPECT_NE(b, a);
  std::uint8_t buf[64];
  const std::uint8_t msg[4] = {1, 2, 3, 4};
  EXPECT_EQ(udp.bind(a, {Ipv4Addr::any(), Port(6000)}).error(), kBadf);
  EXPECT_EQ(udp.connect(a, {kPeer, Port(9)}).error(), kBadf);
  EXPECT_EQ(udp.send_to(a, msg, Endpoint{kPeer, Port(9)}, t0).error(), kBadf);
  EXPECT_EQ(udp.recv_from(a, buf).error(), kBadf);
  EXPECT_EQ(udp.set_reuse_addr(a, true).error(), kBadf);
  EXPECT_EQ(udp.set_dont_fragment(a, true).error(), kBadf);
  EXPECT_EQ(udp.set_recv_buffer(a, 4096).error(), kBadf);
  EXPECT_FALSE(udp.local_endpoint(a));
  EXPECT_FALSE(udp.readable(a));
  EXPECT_EQ(udp.close(a).error(), kBadf);
  EXPECT_TRUE(drain(s).empty()) << "the stale send sent nothing";
  // b is untouched, and what arrives for it is announced under its own id.
  EXPECT_FALSE(udp.local_endpoint(b)) << "the stale bind did not bind b";
  ASSERT_TRUE(udp.bind(b, {Ipv4Addr::any(), Port(6000)}));
  s.receive(udp_packet({kPeer, Port(1234)}, {kHost, Port(6000)}, 3), t0);
  EXPECT_EQ(readable, std::vector<SocketId>{b});
  auto r = udp.recv_from(b, buf);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->len, 3u);
  ASSERT_EQ(udp.sockets().size(), 1u);
  EXPECT_EQ(udp.sockets()[0].id, b);
}

TEST(SocketId, TcpEventsNameTheCurrentGeneration) {
  Stack s(config());
  auto& tcp = s.tcp();
  const SocketId old = tcp.open();
  ASSERT_TRUE(tcp.close(old, t0));
  std::vector<SocketId> events;
  tcp.set_on_event([&](SocketId id) { events.push_back(id); });
  auto e = established(s, t0);  // the listener takes the old slot
  ASSERT_EQ(socket_slot(e.listener), socket_slot(old));
  ASSERT_FALSE(events.empty());
  for (SocketId id : events) EXPECT_NE(id, old);
  EXPECT_EQ(events.front(), e.listener) << "the accept queue's news goes to the listener's current id";
}
