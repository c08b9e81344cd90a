// GoogleTest printer for SackRange, shared by the TCP unit tests, so that a
// failed comparison shows "[left, right)" instead of raw bytes.
#pragma once

#include <ostream>

#include "tcp/sack_range.hpp"

namespace weft::tcp {
inline void PrintTo(const SackRange& r, std::ostream* os) {
  *os << "[" << r.left.value() << ", " << r.right.value() << ")";
}
}  // namespace weft::tcp
