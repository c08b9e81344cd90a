// The outcome of validating bytes as a protocol header.
//
// Views are built only through parse(); once parse() succeeds, every
// accessor of the view reads inside the bytes it was given. A failure says
// why, so the caller can count the drop by reason.
#pragma once

#include <cstdint>
#include <variant>

namespace weft::wire {

enum class ParseError : std::uint8_t {
  truncated,       // fewer bytes than the fixed header
  bad_version,     // IPv4: version field is not 4
  bad_header_len,  // IPv4: IHL < 5 or beyond the bytes; TCP: data offset < 5 or beyond
  bad_total_len,   // IPv4: total length beyond the bytes received or shorter than the header
  bad_length,      // UDP: length field < 8 or beyond the bytes
  bad_checksum,    // the Internet checksum does not verify
  bad_option,      // an option of length 0/1 or running past the header
};

const char* to_string(ParseError e);

template <class View>
class Parsed {
 public:
  Parsed(View v) : v_(v) {}        // NOLINT: implicit by design
  Parsed(ParseError e) : v_(e) {}  // NOLINT: implicit by design
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const View* operator->() const { return &std::get<0>(v_); }
  const View& operator*() const { return std::get<0>(v_); }
  ParseError error() const { return std::get<1>(v_); }

 private:
  std::variant<View, ParseError> v_;
};

}  // namespace weft::wire
