#include "ip/fragment.hpp"

namespace weft::ip {

std::size_t fragment_count(std::size_t payload_len, std::size_t mtu, std::size_t ip_header_len) {
  // The total length field covers header and payload: 65535 at most.
  if (ip_header_len > 65535 || payload_len > 65535 - ip_header_len) return 0;
  if (mtu >= ip_header_len && payload_len <= mtu - ip_header_len) return 1;
  if (mtu < ip_header_len + 8) return 0;
  // Offsets then stay below 65535 - ip_header_len and fit the 13-bit field
  // once divided by 8.
  const std::size_t chunk = (mtu - ip_header_len) & ~std::size_t{7};
  return (payload_len + chunk - 1) / chunk;
}

}  // namespace weft::ip
