#include "services/services.hpp"

#include <fmt/format.h>

namespace weft {

std::optional<ServiceSet> ServiceSet::parse(std::string_view list, std::string* error) {
  ServiceSet s;
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view name = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (name == "echo")
      s.echo = true;
    else if (name == "discard")
      s.discard = true;
    else if (name == "daytime")
      s.daytime = true;
    else if (name == "chargen")
      s.chargen = true;
    else if (name == "all")
      s.echo = s.discard = s.daytime = s.chargen = true;
    else if (name == "none" || name.empty()) {
    } else {
      if (error) *error = fmt::format("unknown service '{}' (echo, discard, daytime, chargen, all, none)", name);
      return std::nullopt;
    }
  }
  return s;
}

Result<std::unique_ptr<UdpServices>> UdpServices::start(Stack& stack, ServiceSet set,
                                                        std::function<std::string()> daytime_text) {
  std::unique_ptr<UdpServices> svc(new UdpServices(stack, std::move(daytime_text)));
  for (const ServiceInfo& s : kServices) {
    if (!set.has(s.kind)) continue;
    SocketId id = stack.udp().open();
    if (auto st = stack.udp().bind(id, Endpoint{Ipv4Addr::any(), Port{s.port}}); !st) {
      (void)stack.udp().close(id);  // closing a socket just opened cannot fail
      return st.error();            // ~UdpServices closes the ones already open
    }
    svc->sockets_.emplace_back(id, s.kind);
  }
  return svc;
}

UdpServices::~UdpServices() {
  for (auto& [id, kind] : sockets_) (void)stack_.udp().close(id);  // our own open sockets: closing cannot fail
}

void ChargenStream::fill(std::span<std::uint8_t> out) {
  constexpr std::uint32_t kLine = 72, kChars = 95;
  for (auto& b : out) {
    if (column < kLine) {
      b = static_cast<std::uint8_t>(' ' + (line + column) % kChars);
      ++column;
    } else if (column == kLine) {
      b = '\r';
      ++column;
    } else {
      b = '\n';
      column = 0;
      line = (line + 1) % kChars;
    }
  }
}

bool UdpServices::on_readable(SocketId id, Instant now) {
  Service kind{};
  bool ours = false;
  for (auto& [sid, k] : sockets_)
    if (sid == id) {
      kind = k;
      ours = true;
    }
  if (!ours) return false;
  UdpLayer& udp = stack_.udp();
  for (;;) {
    auto r = udp.recv_from(id, buf_);
    if (!r) break;
    ++counters_.requests;
    // Never answer a datagram from port 0 (no one can receive it) or from
    // another echo/daytime/chargen service: two such services answering
    // each other is the classic UDP reflection loop (CVE-1999-0103).
    const std::uint16_t sp = r->from.port.value();
    if (sp == 0 || sp == 7 || sp == 13 || sp == 19) {
      ++counters_.refused_reflection;
      continue;
    }
    std::span<const std::uint8_t> reply;
    std::string text;
    switch (kind) {
      case Service::echo:
        reply = std::span<const std::uint8_t>(buf_).first(r->len);
        break;
      case Service::discard:
        continue;
      case Service::daytime:
        text = daytime_text_ ? daytime_text_() : std::string{};
        text += "\r\n";
        reply = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
        break;
      case Service::chargen: {
        // RFC 864: a UDP chargen reply is 0 to 512 characters; send 512,
        // each datagram starting on the next line of the pattern.
        chargen_.next_line();
        chargen_.fill(std::span<std::uint8_t>(buf_).first(512));
        reply = std::span<const std::uint8_t>(buf_).first(512);
        break;
      }
    }
    if (udp.send_to(id, reply, r->from, now)) ++counters_.replies;
  }
  return true;
}

}  // namespace weft
