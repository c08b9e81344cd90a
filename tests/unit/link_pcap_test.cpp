// PcapLink: what it writes must be readable by libpcap and tshark, carry the
// caller's timestamps, and be byte-identical across replays of a seeded run.
#include "link/pcap.hpp"

#include <pcap/pcap.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "link/sim.hpp"
#include "link_packets.hpp"
#include "link_stub.hpp"

using namespace weft;
using weft::test::numbered;

namespace {

const Ipv4Addr kA(192, 0, 2, 1);
const Ipv4Addr kB(198, 51, 100, 2);

Instant ms(std::int64_t n) { return Instant{std::chrono::milliseconds(n)}; }

std::string temp_path(const std::string& tag) {
  auto dir = std::filesystem::temp_directory_path();
  return (dir / ("weft_link_pcap_" + std::to_string(::getpid()) + "_" + tag + ".pcap")).string();
}

std::vector<std::uint8_t> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Record {
  std::int64_t us;
  std::vector<std::uint8_t> bytes;
  bool operator==(const Record&) const = default;
};

std::vector<Record> read_pcap(const std::string& path, int* datalink = nullptr) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(path.c_str(), err);
  EXPECT_NE(p, nullptr) << err;
  if (p == nullptr) return {};
  if (datalink) *datalink = pcap_datalink(p);
  std::vector<Record> out;
  pcap_pkthdr* h;
  const u_char* data;
  while (pcap_next_ex(p, &h, &data) == 1) {
    EXPECT_EQ(h->caplen, h->len);
    out.push_back({std::int64_t{h->ts.tv_sec} * 1'000'000 + h->ts.tv_usec, {data, data + h->caplen}});
  }
  pcap_close(p);
  return out;
}

// The reply a trivial echo host sends: the same packet with source and
// destination swapped (the header checksum is unchanged by the swap).
std::vector<std::uint8_t> swapped(std::span<const std::uint8_t> p) {
  std::vector<std::uint8_t> r(p.begin(), p.end());
  std::swap_ranges(r.begin() + 12, r.begin() + 16, r.begin() + 16);
  return r;
}

// A seeded two-host run with every impairment, recorded on both hosts.
void seeded_run(std::uint64_t seed, const std::string& path_a, const std::string& path_b) {
  SimNetwork net(seed, Impairments{.loss = 0.05,
                                   .duplicate = 0.05,
                                   .reorder = 0.05,
                                   .corrupt = 0.02,
                                   .delay = std::chrono::milliseconds(7),
                                   .jitter = std::chrono::microseconds(1500)});
  auto a = PcapLink::open(net.attach(kA), path_a);
  auto b = PcapLink::open(net.attach(kB), path_b);
  ASSERT_TRUE(a && b);
  std::vector<std::uint8_t> buf(65535);
  for (std::uint32_t i = 0; i < 300; ++i) {
    (void)a.value()->send(numbered(kA, kB, i, 64 + i), ms(i));
    // Deliver everything due by now, echoing at B.
    while (auto d = net.next_deadline()) {
      if (*d > ms(i)) break;
      if (std::size_t n = b.value()->receive(buf, *d)) (void)b.value()->send(swapped(std::span(buf).first(n)), *d);
      while (a.value()->receive(buf, *d)) {
      }
    }
  }
}

}  // namespace

TEST(PcapLink, RoundTripOverSimNetworkReadsBackWithTimestampsAndRawLinktype) {
  const std::string path = temp_path("roundtrip");
  SimNetwork net(1, Impairments{.delay = std::chrono::milliseconds(5)});
  Link& b = net.attach(kB);
  std::vector<Record> expected;
  {
    auto opened = PcapLink::open(net.attach(kA), path);
    ASSERT_TRUE(opened) << errc_message(opened.error());
    PcapLink& a = *opened.value();
    std::vector<std::uint8_t> buf(65535);
    for (std::uint32_t i = 0; i < 3; ++i) {
      const Instant t = ms(1000 + 250 * i) + std::chrono::microseconds(17);
      auto p = numbered(kA, kB, i, 100 + 10 * i);
      ASSERT_TRUE(a.send(p, t));
      expected.push_back({to_micros(t), p});
      ASSERT_EQ(b.next_deadline(), t + std::chrono::milliseconds(5));
      std::size_t n = b.receive(buf, t + std::chrono::milliseconds(5));
      ASSERT_EQ(n, p.size());
      auto reply = swapped(std::span(buf).first(n));
      ASSERT_TRUE(b.send(reply, t + std::chrono::milliseconds(5)));
      ASSERT_EQ(a.next_deadline(), t + std::chrono::milliseconds(10));  // forwarded
      ASSERT_EQ(a.receive(buf, t + std::chrono::milliseconds(10)), reply.size());
      expected.push_back({to_micros(t + std::chrono::milliseconds(10)), reply});
    }
    EXPECT_EQ(a.counters().packets_written, 6u);
    a.flush();
    EXPECT_EQ(read_pcap(path).size(), 6u);  // readable before the link is gone
  }
  int datalink = -1;
  EXPECT_EQ(read_pcap(path, &datalink), expected);
  EXPECT_EQ(datalink, DLT_RAW);
  // The file header's link type (offset 20, host byte order as the magic
  // says) is the portable LINKTYPE_RAW, not Linux's DLT_RAW value 12.
  auto bytes = file_bytes(path);
  ASSERT_GE(bytes.size(), 24u);
  const std::uint32_t magic = bytes[0] | bytes[1] << 8 | bytes[2] << 16 | std::uint32_t{bytes[3]} << 24;
  ASSERT_EQ(magic, 0xa1b2c3d4u);  // microsecond pcap, little-endian writer
  const std::uint32_t linktype = bytes[20] | bytes[21] << 8 | bytes[22] << 16 | std::uint32_t{bytes[23]} << 24;
  EXPECT_EQ(linktype, 101u);
  std::filesystem::remove(path);
}

TEST(PcapLink, SameSeedGivesByteIdenticalFiles) {
  const std::string a1 = temp_path("a1"), b1 = temp_path("b1"), a2 = temp_path("a2"), b2 = temp_path("b2"),
                    a3 = temp_path("a3"), b3 = temp_path("b3");
  seeded_run(99, a1, b1);
  seeded_run(99, a2, b2);
  seeded_run(100, a3, b3);
  EXPECT_GT(file_bytes(a1).size(), 300u * 64);
  EXPECT_EQ(file_bytes(a1), file_bytes(a2));
  EXPECT_EQ(file_bytes(b1), file_bytes(b2));
  EXPECT_NE(file_bytes(a1), file_bytes(a3));
  for (const auto& p : {a1, b1, a2, b2, a3, b3}) std::filesystem::remove(p);
}

TEST(PcapTshark, ReadsTheDestinations) {
  if (std::system("command -v tshark >/dev/null 2>&1") != 0) GTEST_SKIP() << "tshark is not installed";
  const std::string path = temp_path("tshark");
  test::StubLink stub;
  {
    auto l = PcapLink::open(stub, path);
    ASSERT_TRUE(l);
    ASSERT_TRUE(l.value()->send(numbered(kA, kB, 1), ms(1)));
    stub.inbox.push_back({ms(2), numbered(kB, kA, 2)});
    std::vector<std::uint8_t> buf(65535);
    ASSERT_GT(l.value()->receive(buf, ms(2)), 0u);
    ASSERT_TRUE(l.value()->send(numbered(kA, Ipv4Addr(203, 0, 113, 9), 3), ms(3)));
  }
  // -n: no name resolution; stderr carries its "running as root" warning.
  const std::string cmd = "tshark -n -r '" + path + "' -T fields -e ip.dst 2>/dev/null";
  FILE* f = ::popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char line[256];
  while (std::fgets(line, sizeof line, f)) out += line;
  EXPECT_EQ(::pclose(f), 0);
  EXPECT_EQ(out, "198.51.100.2\n192.0.2.1\n203.0.113.9\n");
  std::filesystem::remove(path);
}

TEST(PcapLink, ForwardsToTheInnerLinkAndCanOwnIt) {
  const std::string path = temp_path("owned");
  auto stub = std::make_unique<test::StubLink>();
  test::StubLink* raw = stub.get();
  raw->accept = false;
  auto opened = PcapLink::open(std::move(stub), path);
  ASSERT_TRUE(opened);
  PcapLink& l = *opened.value();
  EXPECT_EQ(l.mtu(), 1280u);
  EXPECT_EQ(l.name(), "stub0");
  EXPECT_EQ(l.poll_fd(), 42);
  EXPECT_FALSE(l.next_deadline());
  raw->inbox.push_back({ms(5), numbered(kB, kA, 1)});
  EXPECT_EQ(l.next_deadline(), ms(5));
  std::vector<std::uint8_t> buf(65535);
  EXPECT_EQ(l.receive(buf, ms(4)), 0u);  // not ready: nothing recorded
  EXPECT_EQ(l.counters().packets_written, 0u);
  // A refused send is still recorded: it is what the stack emitted.
  EXPECT_FALSE(l.send(numbered(kA, kB, 2), ms(6)));
  EXPECT_EQ(raw->sent.size(), 1u);
  EXPECT_EQ(l.counters().packets_written, 1u);
  opened.value().reset();
  std::filesystem::remove(path);
}

// A packet sent in parts is recorded whole, as one record.
TEST(PcapLink, RecordsAPacketSentInPartsAsOne) {
  const std::string path = temp_path("parts");
  test::StubLink stub;
  const auto p = numbered(kA, kB, 3);
  {
    auto opened = PcapLink::open(stub, path);
    ASSERT_TRUE(opened);
    const std::span<const std::uint8_t> whole(p);
    const std::span<const std::uint8_t> parts[] = {whole.first(9), whole.subspan(9, 11), whole.subspan(20)};
    EXPECT_TRUE(opened.value()->send(PacketParts(parts), ms(7)));
  }
  const auto records = read_pcap(path);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].bytes, p);
  ASSERT_EQ(stub.sent.size(), 1u);
  EXPECT_EQ(stub.sent[0], p);
  std::filesystem::remove(path);
}

TEST(PcapLink, OpenReportsTheErrno) {
  test::StubLink stub;
  auto r = PcapLink::open(stub, "/nonexistent-dir/x.pcap");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::no_such_file_or_directory);
}
