#include "wire/parse.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

using namespace weft::wire;

TEST(ParseError, EveryErrorHasADistinctName) {
  std::set<std::string> names;
  for (int e = 0; e <= static_cast<int>(ParseError::bad_option); ++e) {
    std::string n = to_string(static_cast<ParseError>(e));
    EXPECT_NE(n, "unknown");
    names.insert(n);
  }
  EXPECT_EQ(names.size(), static_cast<std::size_t>(ParseError::bad_option) + 1);
  EXPECT_STREQ(to_string(ParseError::bad_checksum), "bad_checksum");
}
