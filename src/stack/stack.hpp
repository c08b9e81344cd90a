// The host core: one IPv4 address, the IP layer (input validation,
// reassembly, routing, fragmentation, loopback), ICMP, and the transports.
//
// It does no I/O and reads no clock. Drivers hand it packets from the link
// with receive(), let it run its timers with poll(), take the packets it
// wants sent with drain(), and sleep until next_deadline(). The same code
// runs on TUN under an epoll loop and on the simulated network in tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>

#include "base/counters.hpp"
#include "base/packet.hpp"
#include "base/rng.hpp"
#include "base/time.hpp"
#include "ip/ip_sender.hpp"
#include "ip/reassembly.hpp"
#include "tcp/tcp.hpp"
#include "udp/udp.hpp"
#include "wire/ipv4.hpp"
#include "wire/types.hpp"

namespace weft {

struct StackConfig {
  Ipv4Cidr address;                 // the host's one address and its prefix
  std::optional<Ipv4Addr> gateway;  // next hop for destinations outside the prefix
  std::size_t mtu = 1500;
  std::uint64_t seed = 0;  // secrets (ephemeral ports, IP ident) derive from it
  std::uint16_t ephemeral_lo = 49152;
  std::uint16_t ephemeral_hi = 65535;
  ip::ReassemblyConfig reassembly{};
  // ICMP error rate limit: a token bucket, as Linux's icmp_msgs_per_sec /
  // icmp_msgs_burst (RFC 1812 §4.3.2.8 asks for one).
  double icmp_errors_per_sec = 1000;
  double icmp_error_burst = 50;
  // Skip computing and verifying transport checksums: only for links that
  // cannot corrupt (the simulated network without corruption), to measure
  // what checksums cost.
  bool checksum_offload = false;
  TcpConfig tcp{};
};

struct IpCounters {
  std::uint64_t in_receives = 0;     // every packet from the link, valid or not
  std::uint64_t in_delivered = 0;    // handed to ICMP/UDP/TCP
  std::uint64_t in_unsupported = 0;  // not IPv4 (IPv6, garbage version)
  std::uint64_t in_truncated = 0;
  std::uint64_t in_bad_header_len = 0;
  std::uint64_t in_bad_total_len = 0;
  std::uint64_t in_bad_checksum = 0;
  std::uint64_t in_not_for_us = 0;  // we are a host, not a router
  std::uint64_t in_martian = 0;     // 127/8 or our own source from the link
  std::uint64_t in_unknown_protocol = 0;
  std::uint64_t in_fragments = 0;
  std::uint64_t reassembled = 0;
  std::uint64_t out_requests = 0;   // datagrams the transports asked to send
  std::uint64_t out_transmits = 0;  // packets handed to the link
  std::uint64_t out_fragments = 0;  // fragments created
  std::uint64_t out_no_route = 0;
  std::uint64_t out_too_big = 0;
  std::uint64_t loopback = 0;  // datagrams delivered inside the host
  template <class F>
  void visit(F&& f) const {
    f("in_receives", in_receives);
    f("in_delivered", in_delivered);
    f("in_unsupported", in_unsupported);
    f("in_truncated", in_truncated);
    f("in_bad_header_len", in_bad_header_len);
    f("in_bad_total_len", in_bad_total_len);
    f("in_bad_checksum", in_bad_checksum);
    f("in_not_for_us", in_not_for_us);
    f("in_martian", in_martian);
    f("in_unknown_protocol", in_unknown_protocol);
    f("in_fragments", in_fragments);
    f("reassembled", reassembled);
    f("out_requests", out_requests);
    f("out_transmits", out_transmits);
    f("out_fragments", out_fragments);
    f("out_no_route", out_no_route);
    f("out_too_big", out_too_big);
    f("loopback", loopback);
  }
};

struct IcmpCounters {
  std::uint64_t in_msgs = 0;
  std::uint64_t in_errors = 0;  // truncated or bad checksum
  std::uint64_t in_echo_requests = 0;
  std::uint64_t in_echo_replies = 0;
  std::uint64_t in_dest_unreachable = 0;
  std::uint64_t in_other = 0;
  std::uint64_t out_echo_replies = 0;
  std::uint64_t out_echo_requests = 0;
  std::uint64_t out_dest_unreachable = 0;
  std::uint64_t rate_limited = 0;
  template <class F>
  void visit(F&& f) const {
    f("in_msgs", in_msgs);
    f("in_errors", in_errors);
    f("in_echo_requests", in_echo_requests);
    f("in_echo_replies", in_echo_replies);
    f("in_dest_unreachable", in_dest_unreachable);
    f("in_other", in_other);
    f("out_echo_replies", out_echo_replies);
    f("out_echo_requests", out_echo_requests);
    f("out_dest_unreachable", out_dest_unreachable);
    f("rate_limited", rate_limited);
  }
};

// An ICMP echo reply for the host's own pings (weft ping).
struct EchoReply {
  Ipv4Addr from;
  std::uint16_t ident;
  std::uint16_t seq;
  // The reply's data, as it came (RFC 792: the echoer returns the request's
  // data unchanged). It points into the packet being processed: valid only
  // during the callback, which copies what it keeps.
  std::span<const std::uint8_t> payload;
  std::uint8_t ttl;
  Instant at;
};

class Stack final : private IpSender {
 public:
  explicit Stack(StackConfig cfg);
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // One packet from the link (no link header). Never fails: what is wrong
  // with it is counted.
  void receive(std::span<const std::uint8_t> packet, Instant now);
  // Delivers packets the host sent to itself and runs timers due by now.
  void poll(Instant now);
  // When poll() next has work: now if loopback packets wait, else the
  // earliest timer, else nullopt.
  std::optional<Instant> next_deadline() const;
  // Hands each packet waiting for the link to `transmit`, oldest first.
  template <class F>
  void drain(F&& transmit) {
    while (!link_out_.empty()) {
      PacketBuf b = link_out_.pop_front();
      transmit(std::span<const std::uint8_t>(b));
      pool_.give(std::move(b));
    }
  }
  bool has_output() const { return !link_out_.empty(); }

  UdpLayer& udp() { return udp_; }
  const UdpLayer& udp() const { return udp_; }
  TcpLayer& tcp() { return tcp_; }
  const TcpLayer& tcp() const { return tcp_; }

  // Sends an ICMP echo request from this host (weft ping).
  // Errors: ENETUNREACH, EMSGSIZE (payload over 65507 bytes).
  Status send_echo_request(Ipv4Addr dst, std::uint16_t ident, std::uint16_t seq, std::span<const std::uint8_t> payload,
                           Instant now);
  void set_on_echo_reply(std::function<void(const EchoReply&)> f) { on_echo_reply_ = std::move(f); }

  const StackConfig& config() const { return cfg_; }
  Ipv4Addr address() const { return cfg_.address.addr; }
  const IpCounters& ip_counters() const { return ip_; }
  const IcmpCounters& icmp_counters() const { return icmp_; }
  const ip::ReassemblyCounters& reassembly_counters() const { return reasm_.counters(); }
  // Every counter of the host, "ip.in_receives" style.
  CounterList all_counters() const;

 private:
  // IpSender
  PacketBuf take_buffer(std::size_t transport_len) override;
  Status send_ip(PacketBuf&& buf, const IpSendParams& p, Instant now) override;
  Ipv4Addr source_for(Ipv4Addr dst) const override;
  bool has_route(Ipv4Addr dst) const override;
  bool is_local_address(Ipv4Addr a) const override;
  std::size_t mtu_for(Ipv4Addr dst) const override;
  bool checksum_offload() const override { return cfg_.checksum_offload; }

  void input(std::span<const std::uint8_t> packet, Instant now, bool from_loopback);
  void deliver(Ipv4Addr src, Ipv4Addr dst, std::uint8_t protocol, std::uint8_t ttl,
               std::span<const std::uint8_t> ip_header, std::span<const std::uint8_t> payload, Instant now,
               std::uint8_t ecn = 0);
  // Sends the datagram in `buf` (header `h` already emitted in front) as
  // fragments of at most `mtu` bytes, each with `h`'s fields.
  void transmit_fragments(PacketBuf&& buf, wire::Ipv4Repr h, std::size_t mtu);

  // ICMP (icmp.cpp)
  void icmp_input(Ipv4Addr src, Ipv4Addr dst, std::uint8_t ttl, std::span<const std::uint8_t> message, Instant now);
  // Sends destination unreachable about the datagram whose header and
  // payload are given, if RFC 1122 §3.2.2 allows and the rate limit has a token.
  void send_dest_unreachable(std::uint8_t code, Ipv4Addr original_src, Ipv4Addr original_dst, std::uint8_t protocol,
                             std::span<const std::uint8_t> ip_header, std::span<const std::uint8_t> payload,
                             Instant now);
  bool take_icmp_token(Instant now);

  StackConfig cfg_;
  Rng rng_;
  PacketPool pool_;
  Ring<PacketBuf> link_out_;
  Ring<PacketBuf> loop_in_;
  ip::Reassembler reasm_;
  UdpLayer udp_;
  std::uint16_t next_ident_;
  double icmp_tokens_;
  TcpLayer tcp_;  // after next_ident_: its secrets are drawn after UDP's, so UDP's choices stay as they were
  Instant icmp_tokens_at_{};
  IpCounters ip_;
  IcmpCounters icmp_;
  std::function<void(const EchoReply&)> on_echo_reply_;
};

}  // namespace weft
