#include "link/pcap.hpp"

#include <pcap/pcap.h>

#include <algorithm>
#include <cerrno>

namespace weft {

namespace {

// No IP packet is longer, so nothing is ever cut short.
constexpr int kSnaplen = 65535;

Status open_dumper(const std::string& path, pcap_t*& p, pcap_dumper_t*& d) {
  // DLT_RAW is 12 on Linux (14 on some BSDs); libpcap writes it into the
  // file header as the portable LINKTYPE_RAW, 101, which is what readers
  // expect. Passing 101 directly would not work: 101 is not a DLT_ value
  // libpcap knows how to map.
  p = pcap_open_dead_with_tstamp_precision(DLT_RAW, kSnaplen, PCAP_TSTAMP_PRECISION_MICRO);
  if (p == nullptr) return std::errc::not_enough_memory;
  errno = 0;
  d = pcap_dump_open(p, path.c_str());
  if (d == nullptr) {
    const int e = errno;
    pcap_close(p);
    return e != 0 ? static_cast<std::errc>(e) : std::errc::io_error;
  }
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<PcapLink>> PcapLink::open(Link& inner, const std::string& path) {
  pcap_t* p = nullptr;
  pcap_dumper_t* d = nullptr;
  if (auto st = open_dumper(path, p, d); !st) return st.error();
  return std::unique_ptr<PcapLink>(new PcapLink(inner, p, d));
}

Result<std::unique_ptr<PcapLink>> PcapLink::open(std::unique_ptr<Link> inner, const std::string& path) {
  if (!inner) return std::errc::invalid_argument;
  pcap_t* p = nullptr;
  pcap_dumper_t* d = nullptr;
  if (auto st = open_dumper(path, p, d); !st) return st.error();
  return std::unique_ptr<PcapLink>(new PcapLink(std::move(inner), p, d));
}

PcapLink::~PcapLink() {
  pcap_dump_close(dumper_);  // flushes
  pcap_close(pcap_);
}

void PcapLink::flush() { pcap_dump_flush(dumper_); }

void PcapLink::record(std::span<const std::uint8_t> packet, Instant now) {
  // Floor division, so that a (unusual) time before the epoch still gives
  // 0 <= tv_usec < 1e6.
  const std::int64_t us = to_micros(now);
  std::int64_t sec = us / 1'000'000;
  std::int64_t usec = us % 1'000'000;
  if (usec < 0) {
    usec += 1'000'000;
    --sec;
  }
  pcap_pkthdr h{};
  h.ts.tv_sec = static_cast<time_t>(sec);
  h.ts.tv_usec = static_cast<suseconds_t>(usec);
  h.len = static_cast<bpf_u_int32>(packet.size());
  h.caplen = static_cast<bpf_u_int32>(std::min<std::size_t>(packet.size(), kSnaplen));
  // pcap_dump appends to a stdio buffer: no allocation per packet.
  pcap_dump(reinterpret_cast<u_char*>(dumper_), &h, packet.data());
  ++counters_.packets_written;
}

bool PcapLink::send(PacketParts packet, Instant now) {
  record(contiguous(packet, scratch_), now);
  return inner_.send(packet, now);
}

std::size_t PcapLink::receive(std::span<std::uint8_t> buf, Instant now) {
  const std::size_t n = inner_.receive(buf, now);
  if (n > 0) record(buf.first(n), now);
  return n;
}

}  // namespace weft
