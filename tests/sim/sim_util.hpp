// Helpers shared by the simulation tests.
#pragma once

#include <cstdlib>
#include <cstring>
#include <string>

namespace weft::simtest {

// scripts/test runs the simulation set a second time under ASan+UBSan with
// WEFT_SIM_SCALE=reduced; tests shrink their counts by this divisor there.
inline int scale_divisor() {
  const char* s = std::getenv("WEFT_SIM_SCALE");
  return (s && std::strcmp(s, "reduced") == 0) ? 10 : 1;
}

}  // namespace weft::simtest
