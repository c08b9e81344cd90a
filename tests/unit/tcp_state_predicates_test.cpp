// The state predicates beside is_synchronized, state by state against RFC
// 9293 §3.3.2's descriptions: they are written as comparisons on the enum's
// order, so this table is what pins the order down.
#include "tcp/state.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace weft::tcp {
namespace {

struct Row {
  TcpState s;
  bool synchronized, handshaking, received_fin, accepts_text, sends_data;
};

constexpr std::array<Row, 11> kRows{{
    {TcpState::closed, false, false, false, false, false},
    {TcpState::listen, false, false, false, false, false},
    {TcpState::syn_sent, false, true, false, false, false},
    {TcpState::syn_received, false, true, false, false, false},
    {TcpState::established, true, false, false, true, true},
    {TcpState::fin_wait_1, true, false, false, true, true},
    {TcpState::fin_wait_2, true, false, false, true, true},
    {TcpState::close_wait, true, false, true, false, true},
    {TcpState::closing, true, false, true, false, true},
    {TcpState::last_ack, true, false, true, false, true},
    {TcpState::time_wait, true, false, true, false, false},
}};

TEST(TcpStatePredicates, EachStateAsRfc9293DescribesIt) {
  for (const Row& r : kRows) {
    SCOPED_TRACE(state_name(r.s));
    EXPECT_EQ(is_synchronized(r.s), r.synchronized);
    EXPECT_EQ(is_handshaking(r.s), r.handshaking);
    EXPECT_EQ(has_received_fin(r.s), r.received_fin);
    EXPECT_EQ(accepts_text(r.s), r.accepts_text);
    EXPECT_EQ(sends_data(r.s), r.sends_data);
  }
}

// The names netstat prints do not come from the numbers.
TEST(TcpStatePredicates, NamesAreLinuxs) {
  EXPECT_EQ(std::string(state_name(TcpState::syn_received)), "SYN_RECV");
  EXPECT_EQ(std::string(state_name(TcpState::closed)), "CLOSE");
  EXPECT_EQ(std::string(state_name(TcpState::time_wait)), "TIME_WAIT");
}

static_assert(is_synchronized(TcpState::established) && !is_synchronized(TcpState::syn_received));

}  // namespace
}  // namespace weft::tcp
