// What a transport layer needs from the IP layer below it. The Stack
// implements it; transports (UDP now, TCP next) never see links or queues.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/packet.hpp"
#include "base/result.hpp"
#include "base/time.hpp"
#include "wire/types.hpp"

namespace weft {

struct IpSendParams {
  Ipv4Addr src;
  Ipv4Addr dst;
  IpProto protocol;
  bool dont_fragment = false;
  std::uint8_t ttl = 64;
  // The ECN field (RFC 3168 §5): kNotEct, kEct0, kEct1 or kCe.
  std::uint8_t ecn = 0;
};

class IpSender {
 public:
  // Bytes reserved at the front of every buffer for the IPv4 header.
  static constexpr std::size_t kHeaderRoom = 20;

  // A buffer of kHeaderRoom + transport_len bytes; the transport writes its
  // segment at offset kHeaderRoom.
  virtual PacketBuf take_buffer(std::size_t transport_len) = 0;

  // Fills the IPv4 header, routes (own address and 127/8 loop back inside
  // the host; the prefix goes out directly; the rest via the gateway) and
  // fragments when larger than the MTU.
  // Errors: ENETUNREACH (no route), EMSGSIZE (too large with don't-fragment).
  virtual Status send_ip(PacketBuf&& buf, const IpSendParams& p, Instant now) = 0;

  // Whether send_ip() has a route to dst: its own addresses, broadcast,
  // the prefix, or anything when a gateway is set.
  virtual bool has_route(Ipv4Addr dst) const = 0;
  // The source address the host uses to reach dst (127.0.0.1 for 127/8).
  virtual Ipv4Addr source_for(Ipv4Addr dst) const = 0;
  // True for addresses this host owns: its own and all of 127.0.0.0/8.
  virtual bool is_local_address(Ipv4Addr a) const = 0;
  // Largest IP datagram that goes out to dst without fragmenting.
  virtual std::size_t mtu_for(Ipv4Addr dst) const = 0;
  // True when transport checksums are skipped (simulated link offload).
  virtual bool checksum_offload() const = 0;

 protected:
  ~IpSender() = default;
};

}  // namespace weft
