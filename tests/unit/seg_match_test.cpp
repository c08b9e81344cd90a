// The segment matcher of tcp_test_util.hpp matches what it names and
// nothing else, and says what differs.
#include "tcp_test_util.hpp"

namespace weft::tcptest {
namespace {

Seg sample() {
  Seg g;
  g.h = hdr(1000, 2000, flag::ack | flag::psh, 512);
  g.h.options.sack[0] = {SeqNum{3000}, SeqNum{4000}};
  g.h.options.sack_count = 1;
  g.h.options.timestamps = wire::TcpTimestamps{TsVal{7u}, TsVal{9u}};
  g.data.assign(10, 'x');
  return g;
}

TEST(SegMatch, MatchesWhatItNames) {
  const Seg g = sample();
  EXPECT_SEG(g, {});
  EXPECT_SEG(g, {.flags = flag::ack | flag::psh,
                 .seq = 1000,
                 .ack = 2000,
                 .window = 512,
                 .len = 10,
                 .sack = {{{3000, 4000}}},
                 .tsval = 7,
                 .tsecr = 9});
}

TEST(SegMatch, FailsOnEachFieldAndSaysWhich) {
  const Seg g = sample();
  EXPECT_FALSE(seg_matches(g, {.flags = flag::ack}));
  EXPECT_FALSE(seg_matches(g, {.seq = 1001}));
  EXPECT_FALSE(seg_matches(g, {.ack = 1999}));
  EXPECT_FALSE(seg_matches(g, {.window = 511}));
  EXPECT_FALSE(seg_matches(g, {.len = 0}));
  EXPECT_FALSE(seg_matches(g, {.sack = std::vector<std::pair<std::uint32_t, std::uint32_t>>{}}));
  EXPECT_FALSE(seg_matches(g, {.sack = {{{3000, 4001}}}}));
  EXPECT_FALSE(seg_matches(g, {.tsecr = 8}));
  const auto r = seg_matches(g, {.seq = 5, .sack = {{{1, 2}}}});
  EXPECT_EQ(std::string(r.message()),
            "[P.] seq 1000 ack 2000 win 512 len 10 sack 3000-4000 ts 7/9: seq 5 wanted, sack 1-2 wanted");
}

}  // namespace
}  // namespace weft::tcptest
