// ByteRing: the store behind the send buffer (write, peek at seq - SND.UNA,
// consume on ACK) and the receive buffer (write_at out-of-order text,
// commit when contiguous, read by the application).
#include "tcp/byte_ring.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <numeric>
#include <vector>

#include "base/rng.hpp"

using namespace weft;
using namespace weft::tcp;

namespace {

std::vector<std::uint8_t> bytes(std::size_t n, std::uint8_t first = 0) {
  std::vector<std::uint8_t> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

std::vector<std::uint8_t> read_all(ByteRing& r) {
  std::vector<std::uint8_t> out(r.size());
  EXPECT_EQ(r.read(out), out.size());
  return out;
}

}  // namespace

TEST(ByteRing, StartsEmptyWithAllRoomFree) {
  ByteRing r(16);
  EXPECT_EQ(r.capacity(), 16u);
  EXPECT_EQ(r.size(), 0u);
  EXPECT_EQ(r.free(), 16u);
  EXPECT_TRUE(r.empty());
}

TEST(ByteRing, WriteTakesOnlyWhatFits) {
  ByteRing r(8);
  EXPECT_EQ(r.write(bytes(5)), 5u);
  EXPECT_EQ(r.write(bytes(5, 5)), 3u);  // the application is told how much was buffered
  EXPECT_EQ(r.size(), 8u);
  EXPECT_EQ(r.free(), 0u);
  EXPECT_EQ(r.write(bytes(1)), 0u);
  EXPECT_EQ(read_all(r), bytes(8));
}

TEST(ByteRing, ReadIsFifoAcrossThePhysicalEnd) {
  ByteRing r(8);
  ASSERT_EQ(r.write(bytes(6)), 6u);
  std::vector<std::uint8_t> four(4);
  ASSERT_EQ(r.read(four), 4u);
  EXPECT_EQ(four, bytes(4));
  ASSERT_EQ(r.write(bytes(6, 6)), 6u);  // wraps: 2 bytes at the end, 4 at the start
  EXPECT_EQ(r.size(), 8u);
  EXPECT_EQ(read_all(r), bytes(8, 4));
  EXPECT_TRUE(r.empty());
}

// The spans in place: one while the bytes are contiguous, two once they wrap.
TEST(ByteRing, ReadableSpansSplitAtThePhysicalEnd) {
  ByteRing r(8);
  EXPECT_TRUE(r.readable().empty());
  ASSERT_EQ(r.write(bytes(6)), 6u);
  r.consume(4);
  ReadSpans sp = r.readable();
  EXPECT_EQ(std::vector<std::uint8_t>(sp.first.begin(), sp.first.end()), bytes(2, 4));
  EXPECT_TRUE(sp.second.empty());
  ASSERT_EQ(r.write(bytes(6, 6)), 6u);  // 2 at the end, 4 at the start
  sp = r.readable();
  EXPECT_EQ(std::vector<std::uint8_t>(sp.first.begin(), sp.first.end()), bytes(4, 4));
  EXPECT_EQ(std::vector<std::uint8_t>(sp.second.begin(), sp.second.end()), bytes(4, 8));
  r.consume(5);  // across the end: what is left is one span again
  sp = r.readable();
  EXPECT_EQ(std::vector<std::uint8_t>(sp.first.begin(), sp.first.end()), bytes(3, 9));
  EXPECT_TRUE(sp.second.empty());
}

TEST(ByteRing, WritableSpansWrapAndOnlyCommittedBytesBecomeReadable) {
  ByteRing r(8);
  ASSERT_EQ(r.write(bytes(6)), 6u);
  r.consume(5);  // head at 5, one byte readable: room is 6..7 then 0..4
  WriteSpans sp = r.writable(100);
  ASSERT_EQ(sp.size(), 7u);  // free(), not the 100 asked
  ASSERT_EQ(sp.first.size(), 2u);
  ASSERT_EQ(sp.second.size(), 5u);
  const auto in = bytes(7, 6);
  std::copy_n(in.begin(), 2, sp.first.begin());
  std::copy_n(in.begin() + 2, 5, sp.second.begin());
  r.commit(4);  // fills 4 of the 7
  EXPECT_EQ(r.size(), 5u);
  EXPECT_EQ(read_all(r), bytes(5, 5));
  EXPECT_EQ(r.writable(3).size(), 3u);
  EXPECT_TRUE(ByteRing(0).writable(5).empty());
}

TEST(ByteRing, WritableAllocatesOnlyWhatIsAsked) {
  ByteRing r(1 << 20);
  EXPECT_EQ(r.allocated(), 0u);
  EXPECT_TRUE(r.writable(0).empty());
  EXPECT_EQ(r.allocated(), 0u);
  WriteSpans sp = r.writable(100);
  EXPECT_EQ(sp.size(), 100u);
  EXPECT_EQ(r.allocated(), ByteRing::kMinAlloc);
  sp = r.writable(10000);  // grows by doubling, as write() would
  EXPECT_EQ(sp.size(), 10000u);
  EXPECT_EQ(r.allocated(), 4 * ByteRing::kMinAlloc);
}

TEST(ByteRing, ReadIntoShortBufferPopsOnlyThat) {
  ByteRing r(8);
  r.write(bytes(5));
  std::vector<std::uint8_t> two(2);
  EXPECT_EQ(r.read(two), 2u);
  EXPECT_EQ(r.size(), 3u);
  std::vector<std::uint8_t> ten(10);
  EXPECT_EQ(r.read(ten), 3u);
  EXPECT_EQ(r.read(ten), 0u);
}

TEST(ByteRing, PeekAtOffsetIsWhatRetransmissionReads) {
  // Send buffer: SND.UNA is the front; a retransmission of seq reads at
  // seq - SND.UNA and leaves everything in place until it is acknowledged.
  ByteRing r(8);
  r.write(bytes(3));
  r.consume(3);
  r.write(bytes(8, 100));  // wraps
  std::vector<std::uint8_t> out(4);
  EXPECT_EQ(r.peek(3, out), 4u);
  EXPECT_EQ(out, bytes(4, 103));
  EXPECT_EQ(r.size(), 8u);
  EXPECT_EQ(r.peek(6, out), 2u);  // only two bytes exist past offset 6
  EXPECT_EQ(out[0], 106);
  EXPECT_EQ(out[1], 107);
  EXPECT_EQ(r.peek(8, out), 0u);
  EXPECT_EQ(r.peek(100, out), 0u);
}

TEST(ByteRing, ConsumeDropsAcknowledgedBytes) {
  ByteRing r(8);
  r.write(bytes(8));
  r.consume(5);
  EXPECT_EQ(r.size(), 3u);
  EXPECT_EQ(r.free(), 5u);
  EXPECT_EQ(read_all(r), bytes(3, 5));
  r.consume(0);
  EXPECT_TRUE(r.empty());
}

TEST(ByteRing, WriteAtParksBytesUntilCommitted) {
  // Receive buffer, RCV.NXT at the end: bytes 4..7 arrive before 0..3.
  ByteRing r(8);
  r.write_at(4, bytes(4, 4));
  EXPECT_TRUE(r.empty());  // parked, not readable
  EXPECT_EQ(r.free(), 8u);
  r.write_at(0, bytes(4));
  r.commit(8);
  EXPECT_EQ(r.size(), 8u);
  EXPECT_EQ(read_all(r), bytes(8));
}

TEST(ByteRing, WriteAtWrapsAndSurvivesTheRingEmptying) {
  ByteRing r(8);
  r.write(bytes(6));
  std::vector<std::uint8_t> six(6);
  r.read(six);                  // empty, head at physical 6
  r.write_at(2, bytes(4, 12));  // offsets 2..5 past the end: physical 0..3
  r.write_at(0, bytes(2, 10));  // physical 6..7
  r.commit(3);
  EXPECT_EQ(read_all(r), bytes(3, 10));
  r.commit(3);  // the rest was parked before the read emptied the ring
  EXPECT_EQ(read_all(r), bytes(3, 13));
}

TEST(ByteRing, ResizeGrowsKeepingWrappedAndParkedBytes) {
  ByteRing r(8);
  r.write(bytes(6));
  r.consume(4);
  r.write(bytes(4, 6));         // readable 4..9, wrapped
  r.write_at(1, bytes(1, 11));  // parked byte after a 1-byte hole
  ASSERT_TRUE(r.resize(32));
  EXPECT_EQ(r.capacity(), 32u);
  EXPECT_EQ(r.size(), 6u);
  r.write_at(0, bytes(1, 10));
  r.commit(2);
  EXPECT_EQ(read_all(r), bytes(8, 4));
}

TEST(ByteRing, ResizeRefusesToDropReadableBytes) {
  ByteRing r(16);
  r.write(bytes(10));
  EXPECT_FALSE(r.resize(9));
  EXPECT_EQ(r.capacity(), 16u);
  EXPECT_TRUE(r.resize(10));
  EXPECT_EQ(r.free(), 0u);
  EXPECT_EQ(read_all(r), bytes(10));
  EXPECT_TRUE(r.resize(4));  // empty: any size
  EXPECT_EQ(r.capacity(), 4u);
}

TEST(ByteRing, ZeroCapacityHoldsNothing) {
  ByteRing r(0);
  std::vector<std::uint8_t> out(4);
  EXPECT_EQ(r.write(bytes(4)), 0u);
  EXPECT_EQ(r.read(out), 0u);
  EXPECT_EQ(r.peek(0, out), 0u);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.free(), 0u);
  EXPECT_TRUE(r.resize(4));
  EXPECT_EQ(r.write(bytes(4)), 4u);
}

TEST(ByteRing, EmptySpansAreHarmless) {
  ByteRing r(4);
  EXPECT_EQ(r.write({}), 0u);
  EXPECT_EQ(r.read({}), 0u);
  r.write_at(0, {});
  r.commit(0);
  EXPECT_TRUE(r.empty());
}

namespace {

// Random writes, reads, peeks, consumes and resizes against a deque.
void random_send_buffer_use(std::size_t capacity, std::size_t max_chunk, std::size_t resize_extra) {
  Rng rng(0x5eed + capacity);
  ByteRing r(capacity);
  std::deque<std::uint8_t> model;
  std::uint8_t next = 0;
  for (int step = 0; step < 20000; ++step) {
    switch (rng.below(7)) {
      case 0: {
        std::vector<std::uint8_t> in(rng.below(max_chunk));
        for (auto& b : in) b = next++;
        const std::size_t n = r.write(in);
        ASSERT_EQ(n, std::min(in.size(), r.capacity() - model.size()));
        model.insert(model.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
        next = static_cast<std::uint8_t>(next - (in.size() - n));
        break;
      }
      case 1: {
        std::vector<std::uint8_t> out(rng.below(max_chunk));
        const std::size_t n = r.read(out);
        ASSERT_EQ(n, std::min(out.size(), model.size()));
        for (std::size_t k = 0; k < n; ++k, model.pop_front()) ASSERT_EQ(out[k], model.front());
        break;
      }
      case 2: {
        const std::size_t off = rng.below(model.size() + 2);
        std::vector<std::uint8_t> out(rng.below(max_chunk));
        const std::size_t n = r.peek(off, out);
        ASSERT_EQ(n, off >= model.size() ? 0 : std::min(out.size(), model.size() - off));
        for (std::size_t k = 0; k < n; ++k) ASSERT_EQ(out[k], model[off + k]);
        break;
      }
      case 3: {
        const std::size_t n = rng.below(model.size() + 1);
        r.consume(n);
        model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
        break;
      }
      case 4:
        if (rng.chance(0.05)) {
          ASSERT_TRUE(r.resize(model.size() + rng.below(resize_extra)));
        }
        break;
      case 5: {  // read in place, take a prefix
        const ReadSpans sp = r.readable();
        ASSERT_EQ(sp.size(), model.size());
        ASSERT_TRUE(sp.second.empty() || !sp.first.empty());
        std::size_t k = 0;
        for (auto part : {sp.first, sp.second})
          for (std::uint8_t b : part) ASSERT_EQ(b, model[k++]);
        const std::size_t n = rng.below(model.size() + 1);
        r.consume(n);
        model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
        break;
      }
      case 6: {  // fill in place, commit a prefix
        const std::size_t want = rng.below(max_chunk);
        const WriteSpans sp = r.writable(want);
        ASSERT_EQ(sp.size(), std::min(want, r.capacity() - model.size()));
        ASSERT_TRUE(sp.second.empty() || !sp.first.empty());
        const std::size_t n = rng.below(sp.size() + 1);
        std::size_t k = 0;
        for (auto part : {sp.first, sp.second})
          for (std::uint8_t& b : part)
            if (k++ < n) b = next++;
        r.commit(n);
        for (std::size_t i = 0; i < n; ++i) model.push_back(static_cast<std::uint8_t>(next - n + i));
        break;
      }
    }
    ASSERT_EQ(r.size(), model.size());
    ASSERT_EQ(r.free(), r.capacity() - model.size());
    ASSERT_LE(r.allocated(), r.capacity());
  }
}

}  // namespace

TEST(ByteRing, MatchesADequeUnderRandomSendBufferUse) {
  // Storage the size of the capacity from the first write (not a power of
  // two on purpose), and storage that grows and shrinks in steps under it.
  random_send_buffer_use(97, 64, 128);
  random_send_buffer_use(100000, 9000, 60000);
}

// Storage comes with the first byte and doubles as bytes need it, from
// kMinAlloc up to the capacity, never beyond.
TEST(ByteRing, StorageIsAllocatedAsBytesNeedIt) {
  ByteRing r(256 * 1024);
  EXPECT_EQ(r.allocated(), 0u);
  EXPECT_EQ(r.free(), 256u * 1024);  // the window is the capacity, not the storage
  r.write(bytes(1));
  EXPECT_EQ(r.allocated(), ByteRing::kMinAlloc);
  r.write(bytes(5000, 1));
  EXPECT_EQ(r.allocated(), 2 * ByteRing::kMinAlloc);
  std::vector<std::uint8_t> big(200 * 1024);
  r.write(big);
  EXPECT_EQ(r.allocated(), 256u * 1024);  // capped at the capacity
  r.read(big);
  r.read(big);
  EXPECT_EQ(r.allocated(), 256u * 1024) << "storage is kept once grown: no allocation per segment";
}

// Growing moves readable bytes that wrap around the end of the storage,
// and out-of-order bytes parked past them, to the same offsets.
TEST(ByteRing, GrowingKeepsWrappedAndParkedBytes) {
  ByteRing r(1 << 20);
  r.write(bytes(3000));
  std::vector<std::uint8_t> sink(2500);
  r.read(sink);                    // head at 2500 of 4096
  r.write(bytes(3000, 100));       // readable 500 + 3000 bytes, wrapped
  r.write_at(100, bytes(200, 7));  // parked after a 100-byte hole, still in 4 KiB
  ASSERT_EQ(r.allocated(), ByteRing::kMinAlloc);
  r.write_at(20000, bytes(50, 9));  // far past the end: storage grows to 32 KiB
  EXPECT_EQ(r.allocated(), 32u * 1024);
  r.write_at(0, bytes(100, 200));  // fill the hole
  r.commit(300);                   // the hole and the parked bytes
  std::vector<std::uint8_t> want = bytes(500, static_cast<std::uint8_t>(2500 % 256));
  auto tail = bytes(3000, 100);
  want.insert(want.end(), tail.begin(), tail.end());
  auto hole = bytes(100, 200), parked = bytes(200, 7);
  want.insert(want.end(), hole.begin(), hole.end());
  want.insert(want.end(), parked.begin(), parked.end());
  auto got = read_all(r);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << "byte " << i;
  r.commit(20050 - 300);  // up to and with the far bytes
  std::vector<std::uint8_t> rest = read_all(r);
  ASSERT_EQ(rest.size(), 20050u - 300);
  EXPECT_EQ(std::vector<std::uint8_t>(rest.end() - 50, rest.end()), bytes(50, 9));
}

// Shrinking the capacity below the storage gives the storage back.
TEST(ByteRing, ShrinkingBelowTheStorageReleasesIt) {
  ByteRing r(64 * 1024);
  std::vector<std::uint8_t> big(40 * 1024);
  r.write(big);
  ASSERT_EQ(r.allocated(), 64u * 1024);
  r.read(big);
  r.write(bytes(10));
  ASSERT_TRUE(r.resize(8192));
  EXPECT_EQ(r.allocated(), 8192u);
  EXPECT_EQ(read_all(r), bytes(10));
}
