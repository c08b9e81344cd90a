// SocketId: how the stack names a socket across its tables (port table,
// connection index, listener map) without holding pointers into each other.
#pragma once

#include <cstdint>
#include <vector>

namespace weft {

using SocketId = std::uint32_t;

// Socket ids are indexes into a layer's slot vector; a closed socket's id
// is reused (most recently freed first), so the vector stays as large as
// the most sockets ever open at once, never larger.
class SocketIds {
 public:
  // An id for a new socket; `slots` grows by one default element when no
  // freed id is left.
  template <class Slots>
  SocketId take(Slots& slots) {
    if (!free_.empty()) {
      const SocketId id = free_.back();
      free_.pop_back();
      return id;
    }
    slots.emplace_back();
    return static_cast<SocketId>(slots.size() - 1);
  }
  void give(SocketId id) { free_.push_back(id); }

 private:
  std::vector<SocketId> free_;
};

}  // namespace weft
