// Result<T>: a value or a POSIX error code, for the embedded socket API.
//
// Errors are std::errc so that they map 1:1 onto the errno values a Berkeley
// sockets user expects (EADDRINUSE, ECONNREFUSED, ...). No exceptions cross
// the core's API.
#pragma once

#include <cassert>
#include <system_error>
#include <utility>
#include <variant>

namespace weft {

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(std::errc err) : v_(err) {}         // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& operator*() const& { return value(); }
  const T* operator->() const { return &value(); }
  std::errc error() const { return ok() ? std::errc{} : std::get<1>(v_); }
  int errno_value() const { return static_cast<int>(error()); }

 private:
  std::variant<T, std::errc> v_;
};

// Result<void> stand-in.
struct Ok {};
using Status = Result<Ok>;
inline Status ok_status() { return Ok{}; }

// strerror text for an errc, e.g. "Connection refused".
inline std::string errc_message(std::errc e) { return std::make_error_code(e).message(); }

}  // namespace weft
