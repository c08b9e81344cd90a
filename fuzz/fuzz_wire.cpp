// libFuzzer target: every weft::wire parser on arbitrary bytes.
//
// Not built by CMake (g++ has no libFuzzer). With clang installed, from the
// repository root:
//
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
//     fuzz/fuzz_wire.cpp src/wire/checksum.cpp src/wire/parse.cpp src/wire/ipv4.cpp \
//     src/wire/icmp.cpp src/wire/udp.cpp src/wire/tcp.cpp -o fuzz_wire
//   mkdir -p corpus && ./fuzz_wire -max_len=2048 corpus
//
// Beyond "no crash, no out-of-bounds read" it checks two properties: every
// span a successful parse hands out lies inside the input, and a parsed
// header emitted again parses to the same header.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"
#include "wire/udp.hpp"

using namespace weft;
using namespace weft::wire;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

// Inside the input, and readable (ASan checks every byte).
void touch(std::span<const std::uint8_t> s, std::span<const std::uint8_t> in) {
  if (s.empty()) return;
  require(s.data() >= in.data() && s.data() + s.size() <= in.data() + in.size());
  volatile std::uint8_t sink = 0;
  for (auto b : s) sink = static_cast<std::uint8_t>(sink ^ b);
}

void tcp(std::span<const std::uint8_t> seg, std::span<const std::uint8_t> in, Ipv4Addr src, Ipv4Addr dst) {
  for (bool verify : {true, false}) {
    auto p = TcpView::parse(seg, src, dst, verify);
    if (!p) continue;
    touch(p->header(), in);
    touch(p->payload(), in);
    // Re-emit the header with the same payload and parse it again.
    TcpRepr r = TcpRepr::from(*p);
    if (r.options.sack_blocks_to_emit() != r.options.sack_count) continue;  // emit drops what does not fit
    if (r.header_len() + p->payload().size() > 0xffff) continue;
    std::vector<std::uint8_t> out(r.header_len() + p->payload().size());
    std::copy(p->payload().begin(), p->payload().end(), out.begin() + static_cast<std::ptrdiff_t>(r.header_len()));
    r.emit(out, src, dst, p->payload().size());
    auto q = TcpView::parse(out, src, dst);
    require(q.ok() && TcpRepr::from(*q) == r);
  }
}

void udp(std::span<const std::uint8_t> seg, std::span<const std::uint8_t> in, Ipv4Addr src, Ipv4Addr dst) {
  for (bool verify : {true, false}) {
    auto p = UdpView::parse(seg, src, dst, verify);
    if (!p) continue;
    touch(p->payload(), in);
    UdpRepr r = UdpRepr::from(*p);
    std::vector<std::uint8_t> out(UdpRepr::header_len + r.payload_len);
    std::copy(p->payload().begin(), p->payload().end(), out.begin() + UdpRepr::header_len);
    r.emit(out, src, dst);
    auto q = UdpView::parse(out, src, dst);
    require(q.ok() && UdpRepr::from(*q) == r);
  }
}

void icmp(std::span<const std::uint8_t> msg, std::span<const std::uint8_t> in) {
  auto p = IcmpView::parse(msg);
  if (!p) return;
  touch(p->payload(), in);
  (void)p->next_hop_mtu();
  (void)p->echo_seq();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  const Ipv4Addr src(192, 0, 2, 1), dst(192, 0, 2, 2);
  (void)ip_version(in);

  // As the stack sees a frame: IPv4, then the protocol it names.
  if (auto ip = Ipv4View::parse(in)) {
    touch(ip->header(), in);
    touch(ip->options(), in);
    touch(ip->payload(), in);
    require(ip->bytes().size() == ip->total_len());
    Ipv4Repr r = Ipv4Repr::from(*ip);
    std::vector<std::uint8_t> out(Ipv4Repr::header_len + r.payload_len);
    std::copy(ip->payload().begin(), ip->payload().end(), out.begin() + Ipv4Repr::header_len);
    r.emit(out);
    auto q = Ipv4View::parse(out);
    require(q.ok() && Ipv4Repr::from(*q) == r);
    tcp(ip->payload(), in, ip->src(), ip->dst());
    udp(ip->payload(), in, ip->src(), ip->dst());
    icmp(ip->payload(), in);
  }

  // Each transport parser on the raw bytes, so the fuzzer need not first
  // discover a valid IPv4 header.
  tcp(in, in, src, dst);
  udp(in, in, src, dst);
  icmp(in, in);
  (void)TcpOptions::parse(in.first(size < TcpOptions::max_len ? size : TcpOptions::max_len));
  return 0;
}
