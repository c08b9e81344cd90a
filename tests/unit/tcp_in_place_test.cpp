// The byte API in place (tcp.hpp: consume, read_with, write_with) against
// the copying one: two hosts given the same segments, one reading with
// recv() and sending with send(), the other with read_with()/consume() and
// write_with(), must send the same segments (the same ACKs, window
// updates, data and flags) and hand over the same bytes, also where the
// bytes wrap in the rings and in both halves of the sequence space.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "tcp_test_util.hpp"

using namespace weft;
using namespace weft::tcptest;

namespace {

const Instant t0 = Instant{} + 1000s;
const std::uint32_t kIssValues[] = {0x00001000u, 0x80001000u, 0xFFFFF000u};

std::vector<std::string> segments(Stack& s) {
  std::vector<std::string> v;
  for (const Seg& g : drain(s)) {
    std::string d = describe(g) + " data";
    for (std::uint8_t b : g.data) d += std::to_string(b) + ",";
    v.push_back(std::move(d));
  }
  return v;
}

void append(std::vector<std::uint8_t>& to, std::span<const std::uint8_t> a, std::span<const std::uint8_t> b,
            std::size_t n) {
  const std::size_t first = std::min(n, a.size());
  to.insert(to.end(), a.begin(), a.begin() + static_cast<std::ptrdiff_t>(first));
  to.insert(to.end(), b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n - first));
}

class InPlace : public ::testing::TestWithParam<std::uint32_t> {
 protected:
  Options opts() const { return Options{.iss = GetParam()}; }
};

TEST_P(InPlace, ReadWithAndConsumeAckAndOpenTheWindowAsRecvDoes) {
  Stack a(config(opts())), b(config(opts()));  // a: recv(); b: read_with() and consume()
  const Established ea = established(a, t0), eb = established(b, t0);
  ASSERT_EQ(ea.iss, eb.iss);
  std::uint32_t nxt = ea.peer_nxt;
  std::vector<std::uint8_t> got_a, got_b;
  bool wrapped = false;
  int updates = 0;  // reads that made the host send something (window updates)
  Instant now = t0;
  for (int round = 0; round < 80; ++round) {
    const int nseg = 1 + round % 5;
    for (int i = 0; i < nseg; ++i) {
      const std::size_t len = (round * 7 + i * 13) % 3 == 0 ? 1460 : 300 + 97 * static_cast<std::size_t>(i + round % 9);
      if (a.tcp().readable(ea.id) + len > 65535) break;  // the peer keeps within the window
      const auto p = packet(hdr(nxt, ea.host_nxt(), flag::ack), bytes(len, static_cast<std::uint8_t>(round)));
      a.receive(p, now);
      b.receive(p, now);
      nxt += static_cast<std::uint32_t>(len);
    }
    ASSERT_EQ(segments(a), segments(b)) << "round " << round << ": the ACKs of the data";
    now += 1ms;
    // Reads shorter than what arrived fill the window; now and then one
    // reads all, which opens it (a window update).
    const std::size_t want = round % 20 == 19 ? 1u << 20 : 500 + 13 * static_cast<std::size_t>(round);
    std::vector<std::uint8_t> buf(std::min<std::size_t>(want, 1u << 17));
    auto ra = a.tcp().recv(ea.id, buf, now);
    ASSERT_TRUE(ra);
    got_a.insert(got_a.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(ra->len));
    Result<TcpRecv> rb = TcpRecv{};
    if (round % 2 == 0) {
      rb = b.tcp().read_with(
          eb.id,
          [&](std::span<const std::uint8_t> x, std::span<const std::uint8_t> y) {
            wrapped = wrapped || !y.empty();
            const std::size_t n = std::min(buf.size(), x.size() + y.size());
            append(got_b, x, y, n);
            return n;
          },
          now);
    } else {
      std::vector<std::uint8_t> peeked(buf.size());
      auto pk = b.tcp().recv(eb.id, peeked, now, /*peek=*/true);
      ASSERT_TRUE(pk);
      rb = b.tcp().consume(eb.id, buf.size(), now);
      ASSERT_TRUE(rb);
      ASSERT_EQ(pk->len, rb->len);
      got_b.insert(got_b.end(), peeked.begin(), peeked.begin() + static_cast<std::ptrdiff_t>(rb->len));
    }
    ASSERT_TRUE(rb);
    ASSERT_EQ(ra->len, rb->len) << "round " << round;
    const auto after_read = segments(a);
    ASSERT_EQ(after_read, segments(b)) << "round " << round << ": what the read sent";
    if (!after_read.empty()) ++updates;
    now += 50ms;  // past the delayed ACK
    a.poll(now);
    b.poll(now);
    ASSERT_EQ(segments(a), segments(b)) << "round " << round << ": the timers";
  }
  EXPECT_EQ(got_a, got_b);
  EXPECT_TRUE(wrapped) << "the test never read across the ring's end";
  EXPECT_GT(updates, 0) << "no read opened the window";
}

TEST_P(InPlace, WriteWithSendsAsSendDoes) {
  Stack a(config(opts())), b(config(opts()));  // a: send(); b: write_with()
  const Established ea = established(a, t0), eb = established(b, t0);
  std::uint32_t acked = ea.host_nxt();
  bool wrapped = false;
  // Both hosts' segments, data included, must be the same; the peer will
  // acknowledge all the data sent.
  auto compare = [&](const char* what, int round) {
    std::vector<std::string> da, db;
    for (const Seg& g : drain(a)) {
      da.push_back(describe(g) + " " + std::string(g.data.begin(), g.data.end()));
      const SeqNum end = g.h.seq + static_cast<std::uint32_t>(g.data.size());
      if (end > SeqNum{acked}) acked = end.value();  // sequence order: the ISS may be near the wrap
    }
    for (const Seg& g : drain(b)) db.push_back(describe(g) + " " + std::string(g.data.begin(), g.data.end()));
    EXPECT_EQ(da, db) << "round " << round << ": " << what;
  };
  Instant now = t0;
  for (int round = 0; round < 60; ++round) {
    const std::size_t n = 700 + (static_cast<std::size_t>(round) * 2111) % 9000;
    const auto data = bytes(n, static_cast<std::uint8_t>(round));
    const bool more = round % 5 == 1;                     // MSG_MORE
    const std::size_t fill = round % 7 == 3 ? n / 2 : n;  // f may fill less than it is offered
    auto ra = a.tcp().send(ea.id, std::span(data).first(fill), now, more);
    auto rb = b.tcp().write_with(
        eb.id,
        [&](std::span<std::uint8_t> x, std::span<std::uint8_t> y) {
          wrapped = wrapped || !y.empty();
          const std::size_t k = std::min(fill, x.size() + y.size());
          const std::size_t first = std::min(k, x.size());
          std::memcpy(x.data(), data.data(), first);
          if (k > first) std::memcpy(y.data(), data.data() + first, k - first);
          return k;
        },
        now, more, n);
    ASSERT_EQ(ra.error(), rb.error()) << "round " << round;  // EAGAIN both, with the buffer full
    if (ra) {
      ASSERT_EQ(*ra, *rb) << "round " << round;
    }
    compare("what the write sent", round);
    now += 1ms;
    // The peer takes everything sent so far, so the ring's front moves on
    // and what is written next wraps.
    const auto ack = packet(hdr(ea.peer_nxt, acked, flag::ack));
    a.receive(ack, now);
    b.receive(ack, now);
    compare("what the ACK released", round);
    now += 250ms;  // past the cork timeout
    a.poll(now);
    b.poll(now);
    compare("the timers", round);
  }
  EXPECT_TRUE(wrapped) << "the test never wrote across the ring's end";
  EXPECT_GT(acked - ea.host_nxt(), 200000u) << "the writes stalled";
}

INSTANTIATE_TEST_SUITE_P(Iss, InPlace, ::testing::ValuesIn(kIssValues), seq_param_name);

TEST(InPlaceErrors, ReadWithReportsAsRecvAndCallsFOnlyForBytes) {
  Stack s(config());
  auto& tcp = s.tcp();
  int calls = 0;
  auto take_all = [&](std::span<const std::uint8_t> x, std::span<const std::uint8_t> y) {
    ++calls;
    return x.size() + y.size();
  };
  EXPECT_EQ(tcp.read_with(999, take_all, t0).error(), std::errc::bad_file_descriptor);
  EXPECT_EQ(tcp.consume(999, 1, t0).error(), std::errc::bad_file_descriptor);
  const SocketId fresh = tcp.open();
  EXPECT_EQ(tcp.read_with(fresh, take_all, t0).error(), std::errc::not_connected);
  EXPECT_EQ(tcp.consume(fresh, 1, t0).error(), std::errc::not_connected);
  Established e = established(s, t0);
  EXPECT_EQ(tcp.read_with(e.id, take_all, t0).error(), std::errc::resource_unavailable_try_again);
  EXPECT_EQ(tcp.consume(e.id, 1, t0).error(), std::errc::resource_unavailable_try_again);
  EXPECT_EQ(calls, 0);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack | flag::fin), bytes(10)), t0);
  auto c = tcp.consume(e.id, 4, t0);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->len, 4u);
  auto r = tcp.read_with(e.id, take_all, t0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->len, 6u);
  EXPECT_EQ(calls, 1);
  // End of stream: len 0, f not called; consume says the same.
  r = tcp.read_with(e.id, take_all, t0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->len, 0u);
  EXPECT_EQ(calls, 1);
  c = tcp.consume(e.id, 1, t0);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->len, 0u);
}

TEST(InPlaceErrors, ReadWithReportsAResetOnce) {
  Stack s(config());
  Established e = established(s, t0);
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::rst)), t0);
  int calls = 0;
  auto f = [&](std::span<const std::uint8_t>, std::span<const std::uint8_t>) {
    ++calls;
    return std::size_t{1};
  };
  const auto first = s.tcp().read_with(e.id, f, t0).error();
  EXPECT_EQ(first, std::errc::connection_reset);
  EXPECT_EQ(s.tcp().read_with(e.id, f, t0).error(), std::errc::connection_reset);
  EXPECT_EQ(calls, 0);
}

TEST(InPlaceErrors, WriteWithReportsAsSend) {
  Stack s(config());
  auto& tcp = s.tcp();
  int calls = 0;
  auto fill_all = [&](std::span<std::uint8_t> x, std::span<std::uint8_t> y) {
    ++calls;
    std::fill(x.begin(), x.end(), 'x');
    std::fill(y.begin(), y.end(), 'y');
    return x.size() + y.size();
  };
  EXPECT_EQ(tcp.write_with(999, fill_all, t0).error(), std::errc::bad_file_descriptor);
  const SocketId fresh = tcp.open();
  EXPECT_EQ(tcp.write_with(fresh, fill_all, t0).error(), std::errc::not_connected);
  Established e = established(s, t0);
  // The peer's window is closed: everything stays queued until the buffer is full.
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack, /*window=*/0)), t0);
  auto w = tcp.write_with(e.id, fill_all, t0, false, 0);
  ASSERT_TRUE(w);
  EXPECT_EQ(*w, 0u);
  EXPECT_EQ(calls, 0) << "max 0: nothing offered";
  w = tcp.write_with(e.id, fill_all, t0);
  ASSERT_TRUE(w);
  EXPECT_EQ(*w, tcp.info(e.id)->send_queue);
  EXPECT_EQ(tcp.send_room(e.id), 0u);
  EXPECT_EQ(tcp.write_with(e.id, fill_all, t0).error(), std::errc::resource_unavailable_try_again);
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(tcp.shutdown(e.id, Shutdown::write, t0));
  EXPECT_EQ(tcp.write_with(e.id, fill_all, t0).error(), std::errc::broken_pipe);
  EXPECT_EQ(calls, 1);
}

}  // namespace

// End of stream is a field of the result (docs/errors.md), the same from
// recv, consume and read_with, and len 0 alone never means it: an empty
// buffer gives len 0 without eof.
TEST(TcpEndOfStream, IsAFieldNotAZeroLength) {
  Stack s(config());
  Instant now{};
  auto e = established(s, now);
  auto& tcp = s.tcp();
  std::uint8_t b[8];
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack), bytes(3)), now);
  e.peer_nxt += 3;
  drain(s);
  auto empty = tcp.recv(e.id, std::span<std::uint8_t>(b, 0), now);
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->len, 0u);
  EXPECT_FALSE(empty->eof) << "an empty buffer is not the end of the stream";
  s.receive(packet(hdr(e.peer_nxt, e.host_nxt(), flag::ack | flag::fin), bytes(2)), now);
  drain(s);
  auto data = tcp.recv(e.id, b, now);
  ASSERT_TRUE(data);
  EXPECT_EQ(data->len, 5u);
  EXPECT_FALSE(data->eof) << "the bytes before the FIN come first";
  for (int i = 0; i < 2; ++i) {  // and every later call says so again
    auto r = tcp.recv(e.id, b, now);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->eof);
    EXPECT_EQ(r->len, 0u);
    auto c = tcp.consume(e.id, 10, now);
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->eof);
    bool called = false;
    auto w = tcp.read_with(
        e.id,
        [&](auto, auto) {
          called = true;
          return std::size_t{0};
        },
        now);
    ASSERT_TRUE(w);
    EXPECT_TRUE(w->eof);
    EXPECT_FALSE(called);
  }
}
