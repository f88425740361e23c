// WaitQueue: first come first served order, head-of-line blocking,
// deadlines, queued entries run by service(), cancel_all, and no lost
// wakeup under contention. Threads are ordered by handshakes (polling the
// queue's statistics or counters the attempts keep), never by sleeps.
#include "swiotlb/iotlb/wait_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "support/eventually.h"

namespace swiotlb {
namespace {

using Clock = WaitQueue::Clock;
using namespace std::chrono_literals;

// Far enough that no test reaches it unless something is lost.
Clock::time_point far() {
  return Clock::now() + 30s;
}
Clock::time_point past() {
  return Clock::now() - 1s;
}

using testing::eventually;

// Units of room, and the order in which takers got theirs.
class Room {
 public:
  explicit Room(int units = 0) : units_(units) {}

  // An attempt: takes `n` units if there are that many, recording `who`.
  std::function<bool()> taker(int who, int n) {
    return [this, who, n] {
      std::lock_guard lock(mu_);
      ++attempts_[static_cast<std::size_t>(who)];
      if (units_ < n) {
        return false;
      }
      units_ -= n;
      order_.push_back(who);
      return true;
    };
  }

  // Adds room; the caller then announces it with notify().
  void give(int n) {
    std::lock_guard lock(mu_);
    units_ += n;
  }

  int attempts(int who) const {
    std::lock_guard lock(mu_);
    return attempts_[static_cast<std::size_t>(who)];
  }
  std::vector<int> order() const {
    std::lock_guard lock(mu_);
    return order_;
  }
  std::size_t served() const { return order().size(); }

 private:
  mutable std::mutex mu_;
  int units_;
  int attempts_[8] = {};
  std::vector<int> order_;
};

// A blocking waiter on its own thread.
class Waiter {
 public:
  Waiter(WaitQueue& q, Clock::time_point deadline, std::function<bool()> attempt)
      : attempt_(std::move(attempt)), thread_([this, &q, deadline] {
          result_ = q.wait(deadline, attempt_);
          in_time_ = Clock::now() < deadline;
        }) {}
  ~Waiter() {
    if (thread_.joinable()) {
      thread_.join();
    }
  }

  // Waits for the thread to return from wait(), then its result.
  bool result() {
    if (thread_.joinable()) {
      thread_.join();
    }
    return result_;
  }

  // Whether it got room before its deadline: a waiter that was not woken
  // when its turn came still gets room, but only once its deadline has
  // woken it (it tries once at the head whatever the time).
  bool served_in_time() { return result() && in_time_; }

 private:
  std::function<bool()> attempt_;
  bool result_ = false;
  bool in_time_ = false;
  std::thread thread_;
};

// Starts a waiter and returns once it has joined the queue (the queue then
// holds `joined` entries), so that waiters join in the order they start.
std::unique_ptr<Waiter> start(WaitQueue& q, std::uint64_t joined, std::function<bool()> attempt,
                              Clock::time_point deadline = far()) {
  auto w = std::make_unique<Waiter>(q, deadline, std::move(attempt));
  EXPECT_TRUE(eventually([&] { return q.stats().waiting_now == joined; }));
  return w;
}

TEST(WaitQueue, NotifyWithNobodyWaitingDoesNothing) {
  int wakes = 0;
  WaitQueue q([&] { ++wakes; });
  q.notify();
  q.notify();
  EXPECT_FALSE(q.has_waiters());
  EXPECT_EQ(wakes, 0);
  const WaitStats stats = q.stats();
  EXPECT_EQ(stats.waits, 0u);
  EXPECT_EQ(stats.timeouts, 0u);
  EXPECT_EQ(stats.waiting_now, 0u);

  // Room there already: the first attempt, on this thread, succeeds.
  Room room(1);
  EXPECT_TRUE(q.wait(far(), room.taker(0, 1)));
  EXPECT_EQ(room.attempts(0), 1);
  EXPECT_EQ(q.stats().waits, 1u);
  EXPECT_EQ(q.stats().timeouts, 0u);
  EXPECT_EQ(wakes, 0);
}

TEST(WaitQueue, ServesBlockingWaitersInJoinOrder) {
  WaitQueue q;
  Room room;
  std::vector<std::unique_ptr<Waiter>> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(start(q, static_cast<std::uint64_t>(i + 1), room.taker(i, 1)));
  }
  EXPECT_TRUE(q.has_waiters());
  for (int head = 0; head < 3; ++head) {
    // The head has tried (on joining, or when the one before it left) and
    // found no room; the one behind it has not tried at all.
    ASSERT_TRUE(eventually([&] { return room.attempts(head) == 1; }));
    if (head + 1 < 3) {
      EXPECT_EQ(room.attempts(head + 1), 0);
    }
    room.give(1);
    q.notify();
    ASSERT_TRUE(eventually([&] { return room.served() == static_cast<std::size_t>(head + 1); }));
  }
  for (auto& w : waiters) {
    EXPECT_TRUE(w->served_in_time());
  }
  EXPECT_EQ(room.order(), (std::vector<int>{0, 1, 2}));
  // Each tried twice: when it reached the head, and after its notify().
  EXPECT_EQ(room.attempts(0), 2);
  EXPECT_EQ(room.attempts(1), 2);
  EXPECT_EQ(room.attempts(2), 2);
  EXPECT_EQ(q.stats().waits, 3u);
  EXPECT_EQ(q.stats().waiting_now, 0u);
  EXPECT_FALSE(q.has_waiters());
}

TEST(WaitQueue, OneNotifyServesEveryoneItHasRoomFor) {
  // When the head leaves, the next tries at once: room may remain.
  WaitQueue q;
  Room room;
  std::vector<std::unique_ptr<Waiter>> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(start(q, static_cast<std::uint64_t>(i + 1), room.taker(i, 1)));
  }
  room.give(3);
  q.notify();
  for (auto& w : waiters) {
    EXPECT_TRUE(w->served_in_time());
  }
  EXPECT_EQ(room.order(), (std::vector<int>{0, 1, 2}));
}

TEST(WaitQueue, LargeHeadBlocksSmallerRequestsBehindIt) {
  WaitQueue q;
  Room room;
  auto big = start(q, 1, room.taker(0, 4));
  ASSERT_TRUE(eventually([&] { return room.attempts(0) == 1; }));
  auto small1 = start(q, 2, room.taker(1, 1));
  auto small2 = start(q, 3, room.taker(2, 1));

  // Room for a small one, not for the head: the head tries and fails, and
  // the small ones behind it do not try at all.
  room.give(1);
  q.notify();
  ASSERT_TRUE(eventually([&] { return room.attempts(0) == 2; }));
  EXPECT_EQ(room.attempts(1), 0);
  EXPECT_EQ(room.attempts(2), 0);
  EXPECT_EQ(room.served(), 0u);
  EXPECT_EQ(q.stats().waiting_now, 3u);

  room.give(3);
  q.notify();
  EXPECT_TRUE(big->served_in_time());
  ASSERT_TRUE(eventually([&] { return room.attempts(1) == 1; }));  // no room left for it
  room.give(2);
  q.notify();
  EXPECT_TRUE(small1->served_in_time());
  EXPECT_TRUE(small2->served_in_time());
  EXPECT_EQ(room.order(), (std::vector<int>{0, 1, 2}));
}

TEST(WaitQueue, ExpiredHeadLeavesAndTheNextIsServed) {
  WaitQueue q;
  Room room(1);
  // The head needs more than there is, and its deadline has passed: it
  // still tries once (it reached the head), and that attempt holds it there
  // until the second waiter has joined behind it.
  std::function<bool()> big = [&, take = room.taker(0, 4)] {
    EXPECT_TRUE(eventually([&] { return q.stats().waiting_now == 2; }));
    return take();
  };
  auto head = start(q, 1, big, past());
  // Not start(): the queue holds two entries only until the head sees it.
  auto next = std::make_unique<Waiter>(q, far(), room.taker(1, 1));

  EXPECT_FALSE(head->result());
  // The next one tries at once, with no notify(): the unit is still there.
  EXPECT_TRUE(next->served_in_time());
  EXPECT_EQ(room.order(), (std::vector<int>{1}));
  const WaitStats stats = q.stats();
  EXPECT_EQ(stats.waits, 2u);
  EXPECT_EQ(stats.timeouts, 1u);
  EXPECT_EQ(stats.waiting_now, 0u);
}

TEST(WaitQueue, WaiterBehindOthersTimesOutWithoutTrying) {
  WaitQueue q;
  Room room;
  auto head = start(q, 1, room.taker(0, 1));
  const auto deadline = Clock::now() + 5ms;
  EXPECT_FALSE(q.wait(deadline, room.taker(1, 1)));
  EXPECT_GE(Clock::now(), deadline);
  EXPECT_EQ(room.attempts(1), 0);
  EXPECT_EQ(q.stats().timeouts, 1u);

  room.give(1);
  q.notify();
  EXPECT_TRUE(head->served_in_time());
}

TEST(WaitQueue, QueuedAttemptRunsOnlyInService) {
  std::atomic<int> wakes{0};
  WaitQueue q([&] { ++wakes; });
  Room room(1);
  int timeouts = 0;
  q.enqueue(far(), room.taker(0, 1), [&] { ++timeouts; });
  EXPECT_EQ(room.attempts(0), 0);
  EXPECT_GE(wakes.load(), 1);
  EXPECT_TRUE(q.has_waiters());

  EXPECT_EQ(q.service(), Clock::time_point::max());
  EXPECT_EQ(room.attempts(0), 1);
  EXPECT_EQ(room.order(), (std::vector<int>{0}));
  EXPECT_EQ(timeouts, 0);
  const WaitStats stats = q.stats();
  EXPECT_EQ(stats.waits, 1u);
  EXPECT_EQ(stats.queued, 1u);
  EXPECT_EQ(stats.timeouts, 0u);
  EXPECT_EQ(stats.waiting_now, 0u);
}

TEST(WaitQueue, ServiceRunsQueuedEntriesInOrderAndReturnsTheNextDeadline) {
  std::atomic<int> wakes{0};
  WaitQueue q([&] { ++wakes; });
  Room room;
  const auto now = Clock::now();
  const Clock::time_point deadlines[] = {now + 3h, now + 1h, now + 2h};
  std::vector<int> timed_out;
  for (int i = 0; i < 3; ++i) {
    q.enqueue(deadlines[i], room.taker(i, 1), [&timed_out, i] { timed_out.push_back(i); });
  }
  // No room: the head tries once; the earliest deadline is the second's.
  EXPECT_EQ(q.service(), deadlines[1]);
  EXPECT_EQ(room.attempts(0), 1);
  EXPECT_EQ(room.attempts(1), 0);
  // Nothing has changed since: no new attempt.
  EXPECT_EQ(q.service(), deadlines[1]);
  EXPECT_EQ(room.attempts(0), 1);

  const int before = wakes.load();
  room.give(2);
  q.notify();
  EXPECT_EQ(wakes.load(), before + 1);
  EXPECT_EQ(q.service(), deadlines[2]);
  EXPECT_EQ(room.order(), (std::vector<int>{0, 1}));
  EXPECT_EQ(room.attempts(2), 1);

  room.give(1);
  q.notify();
  EXPECT_EQ(q.service(), Clock::time_point::max());
  EXPECT_EQ(room.order(), (std::vector<int>{0, 1, 2}));
  EXPECT_TRUE(timed_out.empty());
  EXPECT_EQ(q.stats().queued, 3u);
  EXPECT_EQ(q.stats().waiting_now, 0u);
}

TEST(WaitQueue, ServiceTimesOutExpiredQueuedEntries) {
  WaitQueue q([] {});
  Room room;
  std::vector<int> timed_out;
  const auto later = far();
  q.enqueue(later, room.taker(0, 1), [&] { timed_out.push_back(0); });
  q.enqueue(past(), room.taker(1, 1), [&] { timed_out.push_back(1); });

  // The second expired behind the head: it ends in on_timeout, untried.
  EXPECT_EQ(q.service(), later);
  EXPECT_EQ(room.attempts(0), 1);
  EXPECT_EQ(room.attempts(1), 0);
  EXPECT_EQ(timed_out, (std::vector<int>{1}));

  // One a few milliseconds ahead: service() runs its on_timeout once the
  // deadline has passed.
  const auto soon = Clock::now() + 2ms;
  q.enqueue(soon, room.taker(2, 1), [&] { timed_out.push_back(2); });
  ASSERT_TRUE(eventually([&] { return Clock::now() > soon; }));
  EXPECT_EQ(q.service(), later);
  EXPECT_EQ(timed_out, (std::vector<int>{1, 2}));
  EXPECT_EQ(room.attempts(2), 0);
  EXPECT_EQ(q.stats().timeouts, 2u);

  room.give(1);
  q.notify();
  EXPECT_EQ(q.service(), Clock::time_point::max());
  EXPECT_EQ(room.order(), (std::vector<int>{0}));

  // An expired head is timed out, not tried, even with room.
  room.give(1);
  q.enqueue(past(), room.taker(3, 1), [&] { timed_out.push_back(3); });
  EXPECT_EQ(q.service(), Clock::time_point::max());
  EXPECT_EQ(timed_out, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(room.attempts(3), 0);
  EXPECT_EQ(q.stats().timeouts, 3u);
  EXPECT_EQ(q.stats().waiting_now, 0u);
}

TEST(WaitQueue, BlockingAndQueuedEntriesShareOneOrder) {
  std::atomic<int> wakes{0};
  WaitQueue q([&] { ++wakes; });
  Room room;
  auto first = start(q, 1, room.taker(0, 1));
  const auto queued_deadline = far();
  q.enqueue(queued_deadline, room.taker(1, 1), [] { ADD_FAILURE() << "timed out"; });
  ASSERT_EQ(q.stats().waiting_now, 2u);
  auto third = start(q, 3, room.taker(2, 1));

  // A blocking head: service() has nothing to try.
  const int joined_wakes = wakes.load();
  EXPECT_EQ(q.service(), queued_deadline);
  EXPECT_EQ(room.attempts(1), 0);

  // Room for everyone. The blocking head takes its unit and leaves; the
  // queued entry is now the head, so the service thread is woken, and the
  // waiter behind it does not try until service() has run it.
  room.give(3);
  q.notify();
  EXPECT_TRUE(first->served_in_time());
  ASSERT_TRUE(eventually([&] { return wakes.load() > joined_wakes; }));
  EXPECT_EQ(room.attempts(2), 0);
  EXPECT_EQ(room.order(), (std::vector<int>{0}));

  EXPECT_EQ(q.service(), Clock::time_point::max());
  EXPECT_TRUE(third->served_in_time());
  EXPECT_EQ(room.order(), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(q.stats().waits, 3u);
  EXPECT_EQ(q.stats().queued, 1u);
  EXPECT_EQ(q.stats().timeouts, 0u);
}

TEST(WaitQueue, CancelAllTimesOutEveryone) {
  WaitQueue q([] {});
  Room room;
  auto a = start(q, 1, room.taker(0, 1));
  auto b = start(q, 2, room.taker(1, 1));
  const auto self = std::this_thread::get_id();
  std::vector<int> timed_out;
  for (int i = 2; i < 4; ++i) {
    q.enqueue(far(), room.taker(i, 1), [&, i] {
      EXPECT_EQ(std::this_thread::get_id(), self);
      timed_out.push_back(i);
    });
  }
  ASSERT_EQ(q.stats().waiting_now, 4u);

  q.cancel_all();
  // Every entry has left by the time cancel_all() returns.
  EXPECT_EQ(q.stats().waiting_now, 0u);
  EXPECT_EQ(timed_out, (std::vector<int>{2, 3}));
  EXPECT_FALSE(a->result());
  EXPECT_FALSE(b->result());
  EXPECT_EQ(room.attempts(2), 0);
  EXPECT_EQ(q.stats().timeouts, 4u);

  // The queue works as before afterwards.
  room.give(1);
  EXPECT_TRUE(q.wait(far(), room.taker(4, 1)));
}

// Workers take slots, through wait() when there are none or others wait;
// the queued entries take them through the service thread; a notifier
// thread gives slots back and announces each. A lost wakeup leaves a waiter
// asleep with a slot free and nobody to notify, until its deadline: wait()
// then returns false (the worker stops there, so that a loss fails the test
// in one deadline, not one per round), or a queued entry times out.
// `counted`: the notifier announces with notify_counted(), having read the
// waiter count under the lock that every attempt takes first (take()),
// instead of with notify().
void stress_no_lost_wakeups(bool counted) {
  constexpr int kWorkers = 6;
  constexpr int kRounds = 400;
  constexpr int kQueued = 200;
  // One slot: a notify() lost while the slot is out is the last one, so
  // the loss cannot be covered by a later release.
  constexpr int kSlots = 1;

  std::mutex slots_mu;
  int free_slots = kSlots;
  int in_use = 0;
  auto take = [&] {
    {
      std::lock_guard lock(slots_mu);
      if (free_slots > 0) {
        --free_slots;
        ++in_use;
        return true;
      }
    }
    // A failed attempt takes a while, as a search of full pools does: a
    // notify() often comes during it.
    std::this_thread::yield();
    return false;
  };

  // The service thread sleeps until woken or the earliest deadline.
  std::mutex service_mu;
  std::condition_variable service_cv;
  bool service_woken = true;
  bool stop = false;
  WaitQueue q([&] {
    std::lock_guard lock(service_mu);
    service_woken = true;
    service_cv.notify_one();
  });
  std::thread service([&] {
    auto next = Clock::time_point::max();
    for (;;) {
      {
        std::unique_lock lock(service_mu);
        service_cv.wait_until(lock, next, [&] { return service_woken || stop; });
        if (stop) {
          return;
        }
        service_woken = false;
      }
      next = q.service();
    }
  });

  std::atomic<int> served{0};
  std::atomic<int> failed{0};
  std::atomic<int> waited{0};
  std::atomic<int> queued_ended{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&] {
      const std::function<bool()> attempt = take;
      for (int i = 0; i < kRounds; ++i) {
        // A caller joins behind anyone waiting instead of trying first.
        if (!q.has_waiters() && take()) {
          ++served;
          continue;
        }
        ++waited;
        if (!q.wait(far(), attempt)) {
          ++failed;
          return;
        }
        ++served;
      }
    });
  }
  std::thread enqueuer([&] {
    for (int i = 0; i < kQueued; ++i) {
      q.enqueue(
          far(),
          [&] {
            if (!take()) {
              return false;
            }
            ++served;
            ++queued_ended;
            return true;
          },
          [&] {
            ++failed;
            ++queued_ended;
          });
      std::this_thread::yield();
    }
  });

  std::atomic<bool> stop_notifier{false};
  std::thread notifier([&] {
    while (!stop_notifier.load()) {
      bool gave = false;
      std::uint64_t waiting = 0;
      {
        std::lock_guard lock(slots_mu);
        if (in_use > 0) {
          --in_use;
          ++free_slots;
          gave = true;
          waiting = q.waiter_count().load(std::memory_order_relaxed);
        }
      }
      if (gave && counted) {
        q.notify_counted(waiting);
      } else if (gave) {
        q.notify();
      } else {
        std::this_thread::yield();
      }
    }
  });

  for (auto& t : workers) {
    t.join();
  }
  enqueuer.join();
  // Each queued entry ends by its deadline at the latest.
  EXPECT_TRUE(eventually([&] { return queued_ended.load() == kQueued; }));
  stop_notifier = true;
  notifier.join();
  {
    std::lock_guard lock(service_mu);
    stop = true;
    service_cv.notify_one();
  }
  service.join();

  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(served.load(), kWorkers * kRounds + kQueued);
  const WaitStats stats = q.stats();
  EXPECT_EQ(stats.timeouts, 0u);
  EXPECT_EQ(stats.waiting_now, 0u);
  EXPECT_EQ(stats.queued, static_cast<std::uint64_t>(kQueued));
  EXPECT_EQ(stats.waits, static_cast<std::uint64_t>(waited.load() + kQueued));
  std::lock_guard lock(slots_mu);
  EXPECT_EQ(free_slots + in_use, kSlots);
}

TEST(WaitQueue, StressNoLostWakeups) {
  stress_no_lost_wakeups(false);
}

TEST(WaitQueue, StressNoLostWakeupsWithWaitersCountedUnderTheLock) {
  stress_no_lost_wakeups(true);
}

// notify_counted() wakes only for a count that is not 0: the service thread
// is called for the queued head on 1, not on 0.
TEST(WaitQueue, NotifyCountedWakesOnlyForACountedWaiter) {
  int wakes = 0;
  WaitQueue q([&] { ++wakes; });
  Room room;
  q.enqueue(far(), room.taker(0, 1), [] {});
  EXPECT_EQ(wakes, 1);  // joining wakes the service thread
  EXPECT_EQ(q.waiter_count().load(), 1u);
  q.service();  // no room: it tried once and waits
  EXPECT_EQ(room.attempts(0), 1);
  q.notify_counted(0);
  EXPECT_EQ(wakes, 1);
  q.service();
  EXPECT_EQ(room.attempts(0), 1);  // the epoch did not move: no new attempt
  room.give(1);
  q.notify_counted(q.waiter_count().load());
  EXPECT_EQ(wakes, 2);
  q.service();
  EXPECT_EQ(room.attempts(0), 2);
  EXPECT_EQ(room.served(), 1u);
  EXPECT_EQ(q.waiter_count().load(), 0u);
}

}  // namespace
}  // namespace swiotlb
