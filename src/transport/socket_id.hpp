// SocketId: how the stack names a socket across its tables (port table,
// connection index, listener map) without holding pointers into each other.
#pragma once

#include <cstdint>
#include <vector>

namespace weft {

// A socket's id: its slot in the layer's socket table (the low 32 bits)
// and the slot's generation (the high 32 bits). A slot's generation goes
// up each time a socket leaves it, so an id kept after its socket closed
// names nothing, even once the slot holds a new socket: every call given
// it fails with EBADF instead of acting on someone else's socket. The
// first socket in a slot has generation 0 (its id is its slot).
using SocketId = std::uint64_t;
// A slot alone: what tables that only ever hold live sockets store where
// size matters (ConnectionIndex keeps 4-byte values to a cache line per
// bucket, demux.hpp). Netstat shows it: small, unique among a layer's
// sockets while the socket lives.
using SocketSlot = std::uint32_t;

constexpr SocketSlot socket_slot(SocketId id) { return static_cast<SocketSlot>(id); }
constexpr std::uint32_t socket_generation(SocketId id) { return static_cast<std::uint32_t>(id >> 32); }
constexpr SocketId make_socket_id(SocketSlot slot, std::uint32_t generation) {
  return SocketId{generation} << 32 | slot;
}

// Socket ids for a layer's slot vector. A freed slot is reused (most
// recently freed first), so the vector stays as large as the most sockets
// ever open at once, never larger; its generation is bumped as it is freed
// (after 2^32 reuses of one slot an id would repeat).
class SocketIds {
 public:
  // An id for a new socket; `slots` grows by one default element when no
  // freed slot is left.
  template <class Slots>
  SocketId take(Slots& slots) {
    if (!free_.empty()) {
      const SocketSlot slot = free_.back();
      free_.pop_back();
      return make_socket_id(slot, gen_[slot]);
    }
    slots.emplace_back();
    gen_.push_back(0);
    return make_socket_id(static_cast<SocketSlot>(slots.size() - 1), 0);
  }
  // The socket with this id is gone: its slot is free, its id stale.
  void give(SocketId id) {
    const SocketSlot slot = socket_slot(id);
    ++gen_[slot];
    free_.push_back(slot);
  }

 private:
  std::vector<SocketSlot> free_;
  std::vector<std::uint32_t> gen_;  // by slot: the generation of the next (or current) socket there
};

}  // namespace weft
