#include "wire/parse.hpp"

namespace weft::wire {

const char* to_string(ParseError e) {
  // Stable snake_case names: they end up as counter names and in traces.
  switch (e) {
    case ParseError::truncated:
      return "truncated";
    case ParseError::bad_version:
      return "bad_version";
    case ParseError::bad_header_len:
      return "bad_header_len";
    case ParseError::bad_total_len:
      return "bad_total_len";
    case ParseError::bad_length:
      return "bad_length";
    case ParseError::bad_checksum:
      return "bad_checksum";
    case ParseError::bad_option:
      return "bad_option";
  }
  return "unknown";  // unreachable for a valid enumerator; keeps -Wreturn-type quiet
}

}  // namespace weft::wire
