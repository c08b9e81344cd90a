// PcapLink: a decorator that records every packet crossing any Link into a
// pcap file, the way smoltcp's PcapWriter and gVisor's sniffer wrap a device.
//
// Records are stamped with the `now` the caller passes, never with a clock,
// so a simulated run produces a byte-identical file on every replay. The file
// uses LINKTYPE_RAW (101): bare IPv4/IPv6 packets, which is what a Link
// carries. Sent packets are recorded when the caller offers them, before the
// inner link decides (as tcpdump sees what the stack emitted even if a queue
// later drops it); received packets when the inner link hands them out.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/result.hpp"
#include "link/link.hpp"

// libpcap's opaque handles, so that users of this header need not include
// <pcap/pcap.h>.
struct pcap;
struct pcap_dumper;

namespace weft {

struct PcapCounters {
  std::uint64_t packets_written = 0;

  template <class F>
  void visit(F&& f) const {
    f("packets_written", packets_written);
  }
};

class PcapLink final : public LinkDecorator {
 public:
  // Records traffic of `inner`, which must outlive the PcapLink. The file at
  // `path` is created or truncated. Errors are the errno of opening it.
  static Result<std::unique_ptr<PcapLink>> open(Link& inner, const std::string& path);
  // Same, but the PcapLink owns `inner`.
  static Result<std::unique_ptr<PcapLink>> open(std::unique_ptr<Link> inner, const std::string& path);

  // Flushes and closes the file.
  ~PcapLink() override;

  using Link::send;
  bool send(PacketParts packet, Instant now) override;
  std::size_t receive(std::span<std::uint8_t> buf, Instant now) override;

  // Pushes buffered records to the file, e.g. before a test reads it while
  // the link is still alive.
  void flush();

  const PcapCounters& counters() const { return counters_; }

 private:
  PcapLink(Link& inner, pcap* p, pcap_dumper* d) : LinkDecorator(inner), pcap_(p), dumper_(d) {}
  PcapLink(std::unique_ptr<Link> owned, pcap* p, pcap_dumper* d)
      : LinkDecorator(std::move(owned)), pcap_(p), dumper_(d) {}
  void record(std::span<const std::uint8_t> packet, Instant now);
  std::vector<std::uint8_t> scratch_;  // a packet sent in parts, joined to be recorded

  pcap* pcap_;
  pcap_dumper* dumper_;
  PcapCounters counters_;
};

}  // namespace weft
