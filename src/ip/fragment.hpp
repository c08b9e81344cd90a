// IPv4 fragmentation of an outgoing datagram (RFC 791 §3.2, "An Example
// Fragmentation Procedure"; RFC 1122 §3.3.2).
//
// Pure code: it only decides where to cut. The caller builds each
// fragment's header (same identification, the offset / 8 in the fragment
// offset field, MF as given) around the chunk.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

namespace weft::ip {

// How many fragments fragment_payload() emits for a payload of payload_len
// bytes: 1 when it fits in one packet (mtu - ip_header_len), else one per
// (mtu - ip_header_len) rounded down to a multiple of 8. 0 when it cannot be
// sent: the datagram would exceed the 16-bit total length, or the MTU leaves
// fewer than 8 payload bytes per fragment (RFC 791 guarantees 68 = 60 + 8).
std::size_t fragment_count(std::size_t payload_len, std::size_t mtu, std::size_t ip_header_len);

// Splits a transport payload into fragments for a link MTU: calls
// emit(offset_bytes, more_fragments, payload_chunk) for each, in order of
// offset; every non-final chunk is a multiple of 8 bytes and fits
// mtu - ip_header_len. Chunks are views into `payload`. A payload that fits
// is emitted whole as (0, false, payload). Returns the number of fragments
// emitted, fragment_count(...); 0 (and no call) when it cannot be sent.
template <class Emit>
requires std::invocable<Emit&, std::uint16_t, bool, std::span<const std::uint8_t>> std::size_t fragment_payload(
    std::span<const std::uint8_t> payload, std::size_t mtu, std::size_t ip_header_len, Emit&& emit) {
  const std::size_t n = fragment_count(payload.size(), mtu, ip_header_len);
  if (n <= 1) {
    if (n == 1) emit(std::uint16_t{0}, false, payload);
    return n;
  }
  const std::size_t chunk = (mtu - ip_header_len) & ~std::size_t{7};
  for (std::size_t off = 0; off < payload.size(); off += chunk) {
    const std::size_t len = payload.size() - off < chunk ? payload.size() - off : chunk;
    const bool more = off + len < payload.size();
    emit(static_cast<std::uint16_t>(off), more, payload.subspan(off, len));
  }
  return n;
}

}  // namespace weft::ip
