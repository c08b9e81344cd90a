// A scripted Link for decorator tests: remembers what was sent and hands out
// packets queued by the test, each no earlier than its ready time.
#pragma once

#include <algorithm>
#include <deque>
#include <vector>

#include "link/link.hpp"

namespace weft::test {

class StubLink final : public Link {
 public:
  struct Queued {
    Instant ready;
    std::vector<std::uint8_t> bytes;
  };

  using Link::send;
  bool send(PacketParts packet, Instant) override {
    auto& p = sent.emplace_back();
    for (auto part : packet) p.insert(p.end(), part.begin(), part.end());
    return accept;
  }
  std::size_t receive(std::span<std::uint8_t> buf, Instant now) override {
    if (inbox.empty() || inbox.front().ready > now || inbox.front().bytes.size() > buf.size()) return 0;
    auto n = inbox.front().bytes.size();
    std::copy(inbox.front().bytes.begin(), inbox.front().bytes.end(), buf.begin());
    inbox.pop_front();
    return n;
  }
  std::optional<Instant> next_deadline() const override {
    if (inbox.empty()) return std::nullopt;
    return inbox.front().ready;
  }
  int poll_fd() const override { return 42; }
  std::size_t mtu() const override { return 1280; }
  std::string name() const override { return "stub0"; }

  std::vector<std::vector<std::uint8_t>> sent;
  std::deque<Queued> inbox;
  bool accept = true;
};

}  // namespace weft::test
