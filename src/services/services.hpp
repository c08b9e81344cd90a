// The classic small services, over UDP (and TCP once it exists):
// echo (7, RFC 862), discard (9, RFC 863), daytime (13, RFC 867),
// chargen (19, RFC 864). They run inside the host on the embedded API.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stack/stack.hpp"

namespace weft {

enum class Service : std::uint8_t { echo, discard, daytime, chargen };

// Each service's name and well-known port, in Service order; both the UDP
// and the TCP services open theirs from this table.
struct ServiceInfo {
  Service kind;
  std::uint16_t port;
  const char* name;
};
inline constexpr ServiceInfo kServices[] = {{Service::echo, 7, "echo"},
                                            {Service::discard, 9, "discard"},
                                            {Service::daytime, 13, "daytime"},
                                            {Service::chargen, 19, "chargen"}};

struct ServiceSet {
  bool echo = false, discard = false, daytime = false, chargen = false;
  bool any() const { return echo || discard || daytime || chargen; }
  bool has(Service s) const {
    switch (s) {
      case Service::echo:
        return echo;
      case Service::discard:
        return discard;
      case Service::daytime:
        return daytime;
      case Service::chargen:
        return chargen;
    }
    return false;
  }
  // "echo,discard", "all", "none" or ""; nullopt with `error` set on a bad name.
  static std::optional<ServiceSet> parse(std::string_view list, std::string* error);
};

struct ServiceCounters {
  std::uint64_t requests = 0;
  std::uint64_t replies = 0;
  std::uint64_t refused_reflection = 0;  // source port 0/7/13/19: possible loop
  template <class F>
  void visit(F&& f) const {
    f("requests", requests);
    f("replies", replies);
    f("refused_reflection", refused_reflection);
  }
};

// RFC 864's rotating pattern of the 95 printable ASCII characters: line n
// holds 72 characters starting at character n, then CR LF. A position in
// that endless stream, so a TCP stream continues where it stopped.
struct ChargenStream {
  std::uint32_t line = 0;    // which line (mod 95)
  std::uint32_t column = 0;  // 0..73 (72 = CR, 73 = LF)
  void fill(std::span<std::uint8_t> out);
  void next_line() {
    if (column != 0) {
      column = 0;
      line = (line + 1) % 95;
    }
  }
};

class UdpServices {
 public:
  // Opens a wildcard socket for each enabled service. `daytime_text` gives
  // the current human-readable time (the host reads the wall clock; a
  // simulation passes a fixed text). Errors: whatever bind reports.
  static Result<std::unique_ptr<UdpServices>> start(Stack& stack, ServiceSet set,
                                                    std::function<std::string()> daytime_text);
  ~UdpServices();
  // Serves every datagram waiting on socket `id`; false if `id` is not ours.
  bool on_readable(SocketId id, Instant now);
  const ServiceCounters& counters() const { return counters_; }

 private:
  UdpServices(Stack& stack, std::function<std::string()> daytime_text)
      : stack_(stack), daytime_text_(std::move(daytime_text)) {}
  Stack& stack_;
  std::function<std::string()> daytime_text_;
  std::vector<std::pair<SocketId, Service>> sockets_;
  std::vector<std::uint8_t> buf_ = std::vector<std::uint8_t>(65536);
  ChargenStream chargen_;
  ServiceCounters counters_;
};

}  // namespace weft
