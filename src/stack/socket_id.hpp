// SocketId: how the stack names a socket across its tables (port table,
// connection index, listener map) without holding pointers into each other.
#pragma once

#include <cstdint>

namespace weft {

using SocketId = std::uint32_t;

}  // namespace weft
