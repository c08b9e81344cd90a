// Precompiled header for the test executables (CMake target_precompile_headers).
//
// Why: every test file parses GoogleTest and most parse the stack's headers;
// parsing them once per test binary instead of once per file is most of what
// makes the test build affordable (scripts/test builds the tests twice, Release
// and ASan+UBSan). Only headers that declare things belong here: nothing with
// test-local helpers (tcp_test_util.hpp and friends define functions in
// anonymous namespaces, which would be unused, hence -Werror, in most files).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "base/rng.hpp"
#include "link/sim.hpp"
#include "stack/stack.hpp"
#include "wire/checksum.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"
#include "wire/udp.hpp"
