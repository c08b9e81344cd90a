// TraceLink: one readable line per packet, and a decoder that describes
// malformed packets instead of reading past them.
#include "link/trace.hpp"

#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "link_packets.hpp"
#include "link_stub.hpp"

using namespace weft;
using weft::test::ipv4;
using weft::wire::store_be16;
using weft::wire::store_be32;

namespace {

const Ipv4Addr kA(192, 0, 2, 1);
const Ipv4Addr kB(203, 0, 113, 5);

const Instant kT = instant_from_micros(1'000'250);

std::string line(std::span<const std::uint8_t> p, TraceDirection dir = TraceDirection::tx) {
  char buf[256];
  std::size_t n = format_trace_line(buf, kT, dir, p);
  EXPECT_EQ(n, std::strlen(buf));
  return {buf, n};
}

std::vector<std::uint8_t> tcp_syn() {
  std::vector<std::uint8_t> t(20);
  store_be16(&t[0], 40000);
  store_be16(&t[2], 80);
  store_be32(&t[4], 1000);  // seq
  t[12] = 5 << 4;           // data offset 5
  t[13] = 0x02;             // SYN
  store_be16(&t[14], 65535);
  return ipv4(kA, kB, IpProto::tcp, t);
}

}  // namespace

TEST(TraceFormat, DecodesUdpTcpAndIcmp) {
  const std::uint8_t payload[] = {1, 2, 3, 4};
  EXPECT_EQ(line(test::udp(kB, kA, 53, 40001, payload), TraceDirection::rx),
            "1000250 rx 32 203.0.113.5 > 192.0.2.1 udp 53 > 40001 len 4");
  EXPECT_EQ(line(tcp_syn()), "1000250 tx 40 192.0.2.1 > 203.0.113.5 tcp 40000 > 80 [S] seq 1000 ack 0 win 65535");
  auto synack = tcp_syn();
  synack[20 + 13] = 0x12;
  EXPECT_EQ(line(synack).substr(0, 63), "1000250 tx 40 192.0.2.1 > 203.0.113.5 tcp 40000 > 80 [S.] seq 1");
  const std::uint8_t echo_reply[8] = {0, 0, 0xff, 0xff, 0, 1, 0, 1};
  EXPECT_EQ(line(ipv4(kB, kA, IpProto::icmp, echo_reply), TraceDirection::rx),
            "1000250 rx 28 203.0.113.5 > 192.0.2.1 icmp type 0 code 0");
  const std::uint8_t unreach[8] = {3, 4, 0, 0, 0, 0, 0x05, 0xdc};
  EXPECT_EQ(line(ipv4(kB, kA, IpProto::icmp, unreach)), "1000250 tx 28 203.0.113.5 > 192.0.2.1 icmp type 3 code 4");
  const std::uint8_t gre[4] = {};
  EXPECT_EQ(line(ipv4(kA, kB, static_cast<IpProto>(47), gre)), "1000250 tx 24 192.0.2.1 > 203.0.113.5 proto 47");
}

TEST(TraceFormat, DescribesMalformedPacketsWithoutReadingPastThem) {
  EXPECT_EQ(line({}), "1000250 tx 0 empty");
  auto udp = test::udp(kA, kB, 1, 2, {});
  EXPECT_EQ(line(std::span(udp).first(19)), "1000250 tx 19 ipv4 truncated");
  auto bad_ihl = udp;
  bad_ihl[0] = 0x4f;  // 60-byte header in a 28-byte packet
  EXPECT_EQ(line(bad_ihl), "1000250 tx 28 ipv4 bad-ihl 60");
  bad_ihl[0] = 0x44;  // IHL 4: shorter than the minimum
  EXPECT_EQ(line(bad_ihl), "1000250 tx 28 ipv4 bad-ihl 16");
  std::vector<std::uint8_t> v6(40, 0);
  v6[0] = 0x60;
  EXPECT_EQ(line(v6), "1000250 tx 40 ipv6");
  std::vector<std::uint8_t> junk(30, 0x12);
  EXPECT_EQ(line(junk), "1000250 tx 30 not-ip version 1");
  const std::uint8_t four[4] = {0, 53, 0, 53};
  EXPECT_EQ(line(ipv4(kA, kB, IpProto::udp, four)), "1000250 tx 24 192.0.2.1 > 203.0.113.5 udp truncated");
  // A TCP header cut short by the IPv4 total length, although the buffer
  // (padded by the link) is long enough: the total length wins.
  auto syn = tcp_syn();
  store_be16(&syn[2], 30);
  EXPECT_EQ(line(syn), "1000250 tx 40 192.0.2.1 > 203.0.113.5 tcp truncated");
}

TEST(TraceFormat, FragmentsShowPortsOnlyInTheFirst) {
  const std::uint8_t payload[16] = {};
  auto first = test::udp(kA, kB, 1000, 2000, payload);
  first[6] = 0x20;  // MF, offset 0
  EXPECT_EQ(line(first), "1000250 tx 44 192.0.2.1 > 203.0.113.5 udp 1000 > 2000 len 16 frag mf");
  auto later = first;
  store_be16(&later[6], 185);  // offset 185 * 8 = 1480, last fragment
  EXPECT_EQ(line(later), "1000250 tx 44 192.0.2.1 > 203.0.113.5 proto 17 frag off 1480");
}

TEST(TraceFormat, NeverOverflowsASmallBuffer) {
  char small[16];
  std::size_t n = format_trace_line(small, kT, TraceDirection::tx, tcp_syn());
  EXPECT_EQ(n, 15u);
  EXPECT_EQ(std::string(small), "1000250 tx 40 1");
}

TEST(TraceLink, WritesOneLinePerPacketToAStream) {
  test::StubLink stub;
  std::ostringstream os;
  {
    TraceLink trace(stub, os);
    const std::uint8_t payload[] = {9};
    EXPECT_TRUE(trace.send(test::udp(kA, kB, 5, 6, payload), kT));
    stub.inbox.push_back({kT + std::chrono::microseconds(250), test::udp(kB, kA, 6, 5, payload)});
    std::vector<std::uint8_t> buf(65535);
    EXPECT_EQ(trace.receive(buf, kT), 0u);  // not ready yet: no line
    EXPECT_EQ(trace.receive(buf, kT + std::chrono::microseconds(250)), 29u);
    EXPECT_EQ(trace.counters().lines_written, 2u);
    EXPECT_EQ(stub.sent.size(), 1u);
    EXPECT_EQ(trace.mtu(), 1280u);
    EXPECT_EQ(trace.name(), "stub0");
    EXPECT_EQ(trace.poll_fd(), 42);
    EXPECT_FALSE(trace.next_deadline());
  }
  EXPECT_EQ(os.str(),
            "1000250 tx 29 192.0.2.1 > 203.0.113.5 udp 5 > 6 len 1\n"
            "1000500 rx 29 203.0.113.5 > 192.0.2.1 udp 6 > 5 len 1\n");
}

// A packet sent in parts is traced as the whole packet and reaches the
// inner link whole.
TEST(TraceLink, TracesAPacketSentInPartsAsOne) {
  test::StubLink stub;
  std::ostringstream os;
  const std::uint8_t payload[] = {9};
  const auto p = test::udp(kA, kB, 5, 6, payload);
  {
    TraceLink trace(stub, os);
    const std::span<const std::uint8_t> whole(p);
    const std::span<const std::uint8_t> parts[] = {whole.first(21), {}, whole.subspan(21)};
    EXPECT_TRUE(trace.send(PacketParts(parts), kT));
  }
  EXPECT_EQ(os.str(), "1000250 tx 29 192.0.2.1 > 203.0.113.5 udp 5 > 6 len 1\n");
  ASSERT_EQ(stub.sent.size(), 1u);
  EXPECT_EQ(stub.sent[0], p);
}

TEST(TraceLink, WritesToAFileAndCanOwnTheInnerLink) {
  char* data = nullptr;
  std::size_t size = 0;
  FILE* f = ::open_memstream(&data, &size);
  ASSERT_NE(f, nullptr);
  {
    auto stub = std::make_unique<test::StubLink>();
    stub->accept = false;
    TraceLink trace(std::move(stub), f);
    // Refused by the inner link, but traced: it is what the stack emitted.
    EXPECT_FALSE(trace.send(tcp_syn(), kT));
  }
  std::fclose(f);
  EXPECT_EQ(std::string(data, size),
            "1000250 tx 40 192.0.2.1 > 203.0.113.5 tcp 40000 > 80 [S] seq 1000 ack 0 win 65535\n");
  std::free(data);
}
