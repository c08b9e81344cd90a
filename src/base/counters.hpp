// Counters convention: each module keeps a plain struct of std::uint64_t
// fields and a visit() member that calls f(name, value) for each, so that the
// host can print them (SIGUSR1, exit), netstat -s can list them and tests can
// assert on them, with no registry or allocation on the hot path.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace weft {

using CounterList = std::vector<std::pair<std::string, std::uint64_t>>;

// Collects a visit()-able struct into a list, prefixing each name.
template <class T>
void collect_counters(const T& counters, const std::string& prefix, CounterList& out) {
  counters.visit([&](const char* name, std::uint64_t v) { out.emplace_back(prefix + name, v); });
}

}  // namespace weft
