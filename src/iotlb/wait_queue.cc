// WaitQueue: one mutex guards the queue, a doubly linked list of entries in
// arrival order. Each blocking waiter sleeps on a condition variable of its
// own, so that a wakeup goes to the one entry that can use it (the head or
// the entry about to become it) instead of to every sleeper.
#include "swiotlb/iotlb/wait_queue.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

#include "swiotlb/core/check.h"

namespace swiotlb {

namespace {

#if defined(__SANITIZE_THREAD__)
#define SWIOTLB_WAIT_QUEUE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SWIOTLB_WAIT_QUEUE_TSAN 1
#endif
#endif

// The read of notify() that pairs with the increment in join(): either it
// sees the waiter, or the waiter's attempt sees the room announced.
std::uint64_t read_after_room_published(std::atomic<std::uint64_t>& waiters) {
#if defined(SWIOTLB_WAIT_QUEUE_TSAN)
  // ThreadSanitizer does not model fences (GCC refuses them under it). A
  // read-modify-write gives the same guarantee, since it and the waiter's
  // increment are ordered in the count's modification order and one reads
  // the other; it costs a write of the count's cache line on every call,
  // which the fence avoids.
  return waiters.fetch_add(0, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return waiters.load(std::memory_order_relaxed);
#endif
}

}  // namespace

struct WaitQueue::Entry {
  Entry* prev = nullptr;
  Entry* next = nullptr;
  Clock::time_point deadline;
  Clock::time_point joined;
  // A blocking entry lives on its waiter's stack and borrows the caller's
  // attempt; a queued one belongs to the queue and carries its callbacks.
  const std::function<bool()>* borrowed = nullptr;
  std::function<bool()> attempt;
  std::function<void()> on_timeout;
  std::condition_variable cv;    // blocking entries sleep here
  std::uint64_t seen_epoch = 0;  // the epoch when it last tried
  bool tried = false;
  bool busy = false;       // queued: service() runs its attempt, without the mutex
  bool cancelled = false;  // blocking: cancel_all() told it to leave

  bool blocking() const { return borrowed != nullptr; }
  // The head tries when it never has (room may remain from the entry that
  // left before it) or when notify() has moved the epoch since it last did.
  bool should_try(std::uint64_t epoch) const { return !tried || seen_epoch != epoch; }
};

struct WaitQueue::State {
  explicit State(std::function<void()> wake) : wake_service(std::move(wake)) {}

  const std::function<void()> wake_service;

  // Entries in the queue. Changed under `mu`, but notify() reads it without
  // the mutex: the cheap path when nobody waits (see the header's Ordering).
  std::atomic<std::uint64_t> waiters{0};

  mutable std::mutex mu;
  Entry* head = nullptr;
  Entry* tail = nullptr;
  std::uint64_t epoch = 0;  // moved on by notify() while anyone waits
  WaitStats stats;

  // cancel_all() waits on `quiet` until service() runs no callback (so that
  // each queued entry ends in exactly one way) and until the blocking
  // waiters it cancelled have left (so that the queue may be destroyed).
  std::condition_variable quiet;
  int service_callbacks = 0;  // service() calls running callbacks now
  int cancellers = 0;         // cancel_all() calls waiting for them to end
  std::uint64_t cancelled_waiters = 0;

  void join(Entry* e) {
    e->joined = Clock::now();
    e->prev = tail;
    e->next = nullptr;
    (tail != nullptr ? tail->next : head) = e;
    tail = e;
    ++stats.waits;
    // Sequentially consistent, and before the entry's first attempt: pairs
    // with read_after_room_published() in notify().
    waiters.fetch_add(1, std::memory_order_seq_cst);
  }

  // Unlinks `e` and accounts for it. When `e` was the head, the next entry
  // must try at once, since room may remain: a blocking one is woken here;
  // for a queued one this returns true and the caller wakes the service
  // thread once the mutex is released.
  bool leave(Entry* e, bool succeeded) {
    const bool was_head = head == e;
    (e->prev != nullptr ? e->prev->next : head) = e->next;
    (e->next != nullptr ? e->next->prev : tail) = e->prev;
    e->prev = e->next = nullptr;
    waiters.fetch_sub(1, std::memory_order_relaxed);

    const auto waited =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - e->joined);
    stats.wait_ns += static_cast<std::uint64_t>(std::max<std::int64_t>(waited.count(), 0));
    if (!succeeded) {
      ++stats.timeouts;
    }
    if (e->cancelled && --cancelled_waiters == 0) {
      quiet.notify_all();
    }
    if (!was_head || head == nullptr) {
      return false;
    }
    if (head->blocking()) {
      // Under the mutex: once it is released the waiter may leave and
      // destroy its condition variable.
      head->cv.notify_one();
      return false;
    }
    return true;
  }

  void wake_service_if(bool wake) const {
    if (wake && wake_service) {
      wake_service();
    }
  }
};

WaitQueue::WaitQueue(std::function<void()> wake_service)
    : state_(std::make_unique<State>(std::move(wake_service))), waiter_count_(&state_->waiters) {}

WaitQueue::~WaitQueue() {
  SWIOTLB_CHECK(state_->head == nullptr, "a WaitQueue destroyed with waiters");
}

bool WaitQueue::wait(Clock::time_point deadline, const std::function<bool()>& attempt) {
  State& s = *state_;
  Entry self;
  self.deadline = deadline;
  self.borrowed = &attempt;

  std::unique_lock lock(s.mu);
  s.join(&self);
  bool succeeded = false;
  for (;;) {
    if (s.head == &self && !self.cancelled && self.should_try(s.epoch)) {
      // The epoch is read before the attempt: a notify() that comes after
      // this point moves it, and the loop tries again.
      self.tried = true;
      self.seen_epoch = s.epoch;
      lock.unlock();
      succeeded = attempt();
      lock.lock();
      if (succeeded) {
        break;
      }
    }
    // The deadline is checked after each failed attempt, so that a stream
    // of notify() calls cannot keep a waiter past it.
    if (self.cancelled || Clock::now() >= deadline) {
      break;
    }
    if (s.head == &self && self.should_try(s.epoch)) {
      continue;  // room may have appeared while the attempt ran
    }
    self.cv.wait_until(lock, deadline);
  }
  const bool wake = s.leave(&self, succeeded);
  lock.unlock();
  s.wake_service_if(wake);
  return succeeded;
}

void WaitQueue::enqueue(Clock::time_point deadline, std::function<bool()> attempt,
                        std::function<void()> on_timeout) {
  State& s = *state_;
  SWIOTLB_CHECK(s.wake_service, "enqueue() needs a wake_service");
  auto entry = std::make_unique<Entry>();
  entry->deadline = deadline;
  entry->attempt = std::move(attempt);
  entry->on_timeout = std::move(on_timeout);
  {
    std::lock_guard lock(s.mu);
    s.join(entry.release());  // the queue owns it until it leaves
    ++s.stats.queued;
  }
  // Always: even behind others, its deadline may be the earliest the
  // service thread has to keep.
  s.wake_service_if(true);
}

void WaitQueue::notify() {
  if (read_after_room_published(state_->waiters) != 0) {
    wake_head();
  }
}

void WaitQueue::wake_head() {
  State& s = *state_;
  bool wake = false;
  {
    std::lock_guard lock(s.mu);
    ++s.epoch;
    if (Entry* head = s.head; head != nullptr) {
      if (head->blocking()) {
        head->cv.notify_one();
      } else {
        // A queued head whose attempt is running sees the epoch move when
        // it returns, and service() tries it again.
        wake = !head->busy;
      }
    }
  }
  s.wake_service_if(wake);
}

WaitQueue::Clock::time_point WaitQueue::service() {
  State& s = *state_;
  // Declared before the lock, so destroyed after it is released: the
  // callbacks' captures are the caller's and may take their own locks.
  std::vector<std::unique_ptr<Entry>> finished;
  std::unique_lock lock(s.mu);
  while (s.cancellers == 0) {
    std::vector<std::unique_ptr<Entry>> expired;
    const auto now = Clock::now();
    for (Entry* e = s.head; e != nullptr;) {
      Entry* next = e->next;
      if (!e->blocking() && !e->busy && now >= e->deadline) {
        s.leave(e, false);  // a queued new head is tried below
        expired.emplace_back(e);
      }
      e = next;
    }

    Entry* trying = s.head;
    if (trying != nullptr && (trying->blocking() || trying->busy || !trying->should_try(s.epoch))) {
      trying = nullptr;
    }
    if (trying == nullptr && expired.empty()) {
      break;
    }
    if (trying != nullptr) {
      trying->busy = true;
      trying->tried = true;
      trying->seen_epoch = s.epoch;
    }

    ++s.service_callbacks;
    lock.unlock();
    for (auto& e : expired) {
      e->on_timeout();
    }
    expired.clear();
    const bool succeeded = trying != nullptr && trying->attempt();
    lock.lock();
    --s.service_callbacks;

    if (trying != nullptr) {
      trying->busy = false;
      if (succeeded) {
        s.leave(trying, true);  // a queued new head is tried on the next round
        finished.emplace_back(trying);
      }
      // On failure the next round tries it again if the epoch moved meanwhile.
    }
    if (s.service_callbacks == 0 && s.cancellers > 0) {
      s.quiet.notify_all();
    }
  }

  auto next = Clock::time_point::max();
  for (const Entry* e = s.head; e != nullptr; e = e->next) {
    if (!e->blocking()) {
      next = std::min(next, e->deadline);
    }
  }
  return next;
}

bool WaitQueue::has_waiters() const {
  return state_->waiters.load(std::memory_order_seq_cst) != 0;
}

WaitStats WaitQueue::stats() const {
  std::lock_guard lock(state_->mu);
  WaitStats out = state_->stats;
  out.waiting_now = state_->waiters.load(std::memory_order_relaxed);
  return out;
}

void WaitQueue::cancel_all() {
  State& s = *state_;
  std::vector<std::unique_ptr<Entry>> dropped;
  std::unique_lock lock(s.mu);
  // A queued attempt running on the service thread ends first, so that its
  // entry ends in its attempt or its on_timeout, never both.
  ++s.cancellers;
  s.quiet.wait(lock, [&] { return s.service_callbacks == 0; });
  --s.cancellers;

  for (Entry* e = s.head; e != nullptr;) {
    Entry* next = e->next;
    if (e->blocking()) {
      if (!e->cancelled) {
        e->cancelled = true;
        ++s.cancelled_waiters;
      }
      e->cv.notify_one();
    } else {
      s.leave(e, false);
      dropped.emplace_back(e);
    }
    e = next;
  }

  lock.unlock();
  for (auto& e : dropped) {
    e->on_timeout();
  }
  dropped.clear();
  lock.lock();
  s.quiet.wait(lock, [&] { return s.cancelled_waiters == 0; });
}

}  // namespace swiotlb
