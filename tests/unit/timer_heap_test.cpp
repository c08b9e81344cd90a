// TimerHeap: deadlines in order, one per key, O(log n) reschedule and
// cancel, checked by hand and against a std::multimap model.
#include "base/timer_heap.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <iterator>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/rng.hpp"

using namespace weft;

namespace {

constexpr Instant at(int ms) { return Instant{std::chrono::milliseconds{ms}}; }

template <class Key>
std::vector<Key> expire_all(TimerHeap<Key>& h, Instant now) {
  std::vector<Key> fired;
  h.expire(now, [&](const Key& k) { fired.push_back(k); });
  return fired;
}

}  // namespace

TEST(TimerHeap, EmptyHeapHasNothingDue) {
  TimerHeap<int> h;
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.size(), 0u);
  EXPECT_FALSE(h.next());
  EXPECT_FALSE(h.deadline_of(1));
  EXPECT_EQ(h.expire(at(1000), [](int) { FAIL(); }), 0u);
  h.cancel(1);  // cancelling an unknown key is a no-op
  EXPECT_TRUE(h.empty());
}

TEST(TimerHeap, FiresInDeadlineOrder) {
  TimerHeap<int> h;
  const int deadlines[] = {50, 10, 40, 30, 20, 60, 5};
  for (int i = 0; i < 7; ++i) h.schedule(i, at(deadlines[i]));
  EXPECT_EQ(h.size(), 7u);
  EXPECT_EQ(h.next(), at(5));
  EXPECT_EQ(h.deadline_of(2), at(40));
  EXPECT_EQ(expire_all(h, at(100)), (std::vector<int>{6, 1, 4, 3, 2, 0, 5}));
  EXPECT_TRUE(h.empty());
}

TEST(TimerHeap, ExpireStopsAtNow) {
  TimerHeap<int> h;
  h.schedule(1, at(10));
  h.schedule(2, at(20));
  h.schedule(3, at(30));
  EXPECT_TRUE(expire_all(h, at(9)).empty());
  EXPECT_EQ(expire_all(h, at(20)), (std::vector<int>{1, 2}));  // deadline == now fires
  EXPECT_EQ(h.next(), at(30));
  EXPECT_EQ(h.size(), 1u);
  EXPECT_FALSE(h.deadline_of(1));
}

TEST(TimerHeap, RescheduleReplacesTheDeadline) {
  TimerHeap<int> h;
  h.schedule(1, at(10));
  h.schedule(2, at(20));
  h.schedule(3, at(30));

  h.schedule(3, at(5));  // earlier
  EXPECT_EQ(h.size(), 3u);
  EXPECT_EQ(h.next(), at(5));
  EXPECT_EQ(h.deadline_of(3), at(5));

  h.schedule(3, at(50));  // later
  h.schedule(1, at(40));
  EXPECT_EQ(h.size(), 3u);
  EXPECT_EQ(h.next(), at(20));
  EXPECT_EQ(expire_all(h, at(100)), (std::vector<int>{2, 1, 3}));
}

TEST(TimerHeap, CancelRemovesOnlyThatKey) {
  TimerHeap<int> h;
  for (int i = 0; i < 10; ++i) h.schedule(i, at(10 * i));
  h.cancel(0);  // the root
  h.cancel(5);  // the middle
  h.cancel(9);  // the last
  h.cancel(42);
  EXPECT_EQ(h.size(), 7u);
  EXPECT_FALSE(h.deadline_of(5));
  EXPECT_EQ(h.next(), at(10));
  EXPECT_EQ(expire_all(h, at(1000)), (std::vector<int>{1, 2, 3, 4, 6, 7, 8}));
}

TEST(TimerHeap, EqualDeadlinesFireInSchedulingOrder) {
  TimerHeap<int> h;
  for (int k : {7, 3, 9, 1, 5}) h.schedule(k, at(10));
  h.schedule(0, at(5));
  // Rescheduling to the same instant counts as scheduling anew: 3 goes last.
  h.schedule(3, at(10));
  EXPECT_EQ(expire_all(h, at(10)), (std::vector<int>{0, 7, 9, 1, 5, 3}));
}

TEST(TimerHeap, CallbackMayRearmItsOwnKeyForLater) {
  // A retransmission timer that re-arms itself on every expiry.
  TimerHeap<int> h;
  h.schedule(1, at(10));
  h.schedule(2, at(15));
  std::vector<int> fired;
  const std::size_t n = h.expire(at(20), [&](int k) {
    fired.push_back(k);
    if (k == 1) h.schedule(1, at(30));
  });
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
  EXPECT_EQ(h.deadline_of(1), at(30));
  EXPECT_EQ(h.size(), 1u);
}

TEST(TimerHeap, KeysScheduledDueByTheCallbackFireInTheSameCall) {
  TimerHeap<int> h;
  h.schedule(1, at(10));
  h.schedule(3, at(18));
  std::vector<int> fired;
  h.expire(at(20), [&](int k) {
    fired.push_back(k);
    if (k == 1) h.schedule(2, at(12));  // due, and earlier than 3
  });
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(h.empty());
}

TEST(TimerHeap, CallbackMayCancelAKeyThatWasDue) {
  TimerHeap<int> h;
  h.schedule(1, at(10));
  h.schedule(2, at(11));
  h.schedule(3, at(12));
  std::vector<int> fired;
  h.expire(at(20), [&](int k) {
    fired.push_back(k);
    if (k == 1) h.cancel(2);
  });
  EXPECT_EQ(fired, (std::vector<int>{1, 3}));
}

TEST(TimerHeap, ACallbackThatAlwaysRearmsForNowIsBounded) {
  TimerHeap<int> h;
  h.schedule(1, at(10));
  h.schedule(2, at(10));
  h.schedule(3, at(500));  // pending, not due: counts in size-at-start
  std::size_t calls = 0;
  auto rearm_now = [&](int k) {
    ++calls;
    h.schedule(k, at(20));
  };
  const std::size_t n = h.expire(at(20), rearm_now);
  EXPECT_EQ(n, 3 + TimerHeap<int>::max_extra_fires);
  EXPECT_EQ(calls, n);
  // Nothing is lost: both keys are still armed and due, and next() says so.
  EXPECT_EQ(h.size(), 3u);
  EXPECT_EQ(h.next(), at(20));
  EXPECT_EQ(h.deadline_of(1), at(20));
  EXPECT_EQ(h.deadline_of(2), at(20));
  // They alternate: ties fire in scheduling order. The first call fired an
  // odd number of times (3 + max_extra_fires), ending with 1, so 2 was
  // re-armed first.
  static_assert((3 + TimerHeap<int>::max_extra_fires) % 2 == 1);
  std::vector<int> fired;
  h.expire(at(20), [&](int k) {
    if (fired.size() < 4) h.schedule(k, at(20));
    fired.push_back(k);
  });
  EXPECT_EQ(fired, (std::vector<int>{2, 1, 2, 1, 2, 1}));
}

TEST(TimerHeap, WorksWithNonTrivialKeys) {
  TimerHeap<std::string> h;
  h.schedule("retransmit", at(30));
  h.schedule("delayed-ack", at(10));
  h.schedule("keepalive", at(20));
  h.schedule("delayed-ack", at(40));
  h.cancel("keepalive");
  EXPECT_EQ(expire_all(h, at(100)), (std::vector<std::string>{"retransmit", "delayed-ack"}));
}

// A million random operations against a model: a std::multimap from
// deadline to key keeps equal deadlines in insertion order, which is exactly
// the tie rule, and a side map finds a key's entry for cancel and reschedule.
TEST(TimerHeap, MatchesAMultimapModelOverAMillionRandomOperations) {
  using Model = std::multimap<Instant, std::uint32_t>;
  Model model;
  std::unordered_map<std::uint32_t, Model::iterator> where;
  auto model_schedule = [&](std::uint32_t k, Instant when) {
    if (auto it = where.find(k); it != where.end()) model.erase(it->second);
    where[k] = model.emplace(when, k);
  };
  auto model_cancel = [&](std::uint32_t k) {
    if (auto it = where.find(k); it != where.end()) {
      model.erase(it->second);
      where.erase(it);
    }
  };

  TimerHeap<std::uint32_t> heap;
  Rng rng(0x7157'7ea9);
  constexpr std::uint32_t keys = 1000;
  // Coarse deadlines (whole milliseconds in a short horizon) so that ties
  // and deadlines in the past are common.
  std::int64_t now_ms = 1000;
  auto random_deadline = [&] { return at(static_cast<int>(now_ms - 20 + static_cast<std::int64_t>(rng.below(220)))); };

  std::size_t fired_total = 0;
  for (int op = 0; op < 1'000'000; ++op) {
    const std::uint64_t dice = rng.below(100);
    const auto k = static_cast<std::uint32_t>(rng.below(keys));
    if (dice < 45) {
      const Instant when = random_deadline();
      heap.schedule(k, when);
      model_schedule(k, when);
    } else if (dice < 65) {
      heap.cancel(k);
      model_cancel(k);
    } else if (dice < 75) {
      now_ms += static_cast<std::int64_t>(rng.below(30));
      const Instant now = at(static_cast<int>(now_ms));
      // Some callbacks re-arm their key (for later, or still due), some
      // arm another key; the model follows the same steps in the same order.
      const std::size_t size_before = heap.size();
      const std::size_t n = heap.expire(now, [&](std::uint32_t got) {
        ASSERT_FALSE(model.empty());
        ASSERT_LE(model.begin()->first, now);
        ASSERT_EQ(model.begin()->second, got) << "op " << op;
        where.erase(got);
        model.erase(model.begin());
        const std::uint64_t action = rng.below(10);
        if (action == 0) {
          const Instant when = random_deadline();
          heap.schedule(got, when);
          model_schedule(got, when);
        } else if (action == 1) {
          const auto other = static_cast<std::uint32_t>(rng.below(keys));
          const Instant when = random_deadline();
          heap.schedule(other, when);
          model_schedule(other, when);
        }
      });
      fired_total += n;
      // Only the loop guard may leave due keys behind.
      if (!model.empty() && model.begin()->first <= now) {
        ASSERT_EQ(n, size_before + TimerHeap<std::uint32_t>::max_extra_fires);
      }
    } else if (dice < 85) {
      const auto d = heap.deadline_of(k);
      const auto it = where.find(k);
      ASSERT_EQ(d.has_value(), it != where.end());
      if (d) {
        ASSERT_EQ(*d, it->second->first);
      }
    } else {
      ASSERT_EQ(heap.size(), model.size());
      ASSERT_EQ(heap.empty(), model.empty());
      if (model.empty()) {
        ASSERT_FALSE(heap.next());
      } else {
        ASSERT_EQ(heap.next(), model.begin()->first);
      }
    }
  }
  EXPECT_GT(fired_total, 100'000u);  // the run really exercised expiry

  // Drain: everything left fires in model order.
  std::vector<std::uint32_t> rest;
  while (!heap.empty()) heap.expire(at(static_cast<int>(now_ms + 1000)), [&](std::uint32_t k) { rest.push_back(k); });
  std::vector<std::uint32_t> expected;
  for (const auto& [when, k] : model) expected.push_back(k);
  EXPECT_EQ(rest, expected);
}
