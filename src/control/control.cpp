#include "control/control.hpp"

#include <unistd.h>

#include <cstdlib>

namespace weft::control {

std::optional<std::string> runtime_dir() {
  if (const char* d = std::getenv("WEFT_RUNTIME_DIR"); d && *d) return std::string(d);
  if (::geteuid() == 0) return std::string("/run/weft");
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return std::string(x) + "/weft";
  return std::nullopt;
}

std::optional<std::string> control_socket_path(std::string_view name_or_path) {
  if (name_or_path.find('/') != std::string_view::npos) return std::string(name_or_path);
  auto dir = runtime_dir();
  if (!dir) return std::nullopt;
  return *dir + "/" + std::string(name_or_path) + "/" + kSocketFile;
}

std::string default_host() {
  if (const char* h = std::getenv("WEFT_HOST"); h && *h) return h;
  return "default";
}

}  // namespace weft::control
