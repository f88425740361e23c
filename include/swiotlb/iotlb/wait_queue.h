// WaitQueue: callers that found no room, served first come, first served.
//
// A caller that may sleep and found every pool full does not fail at once:
// it joins the queue and tries again each time room may have appeared
// (slots were freed, a pool was added), until it succeeds or its deadline
// passes. Only the entry at the head of the queue tries, so a large request
// is not starved by a stream of small ones that arrive after it; the price
// is that a small request waits behind a large one even when it would fit
// (head-of-line blocking, as FreeBSD's deferred busdma loads have it).
//
// Two kinds of entry share the one order:
//  - a blocking waiter (wait()): the caller's own thread sleeps and runs
//    its attempt when it is at the head;
//  - a queued request (enqueue()): the caller returns at once; its attempt
//    and then its completion run later on the service thread, the one that
//    calls service() (the IoTlb's worker), never inside another caller's
//    unmap.
//
// The queue knows nothing of pools: an attempt is a function that returns
// true when it is finished (it got room, or failed for good) and false when
// there is still no room.
//
// Ordering: notify() is called after the room it announces is visible (the
// slots were freed under their area lock, the new pool published). A waiter
// registers (a sequentially consistent increment of the waiter count) before
// its first attempt in the queue, and notify() reads that count after a
// sequentially consistent fence. So either notify() sees the waiter and
// moves the epoch on, which keeps the waiter from sleeping, or the waiter's
// attempt comes after the free and sees the room. No wakeup is lost, and a
// notify() with nobody waiting costs one fence and one load.
//
// Room can also be published without the fence, under a lock that every
// attempt takes and releases before it looks for room (IoTlb passes its
// pools' run cache locks: SlotPool::pass_cache_locks). The caller reads
// waiter_count() while it holds that lock, after the room is there, and
// calls notify_counted() with what it read. If the waiter's attempt passed
// the lock first, the caller's read comes after the waiter's increment and
// sees it; if the caller held the lock first, the attempt comes after the
// room and sees it.
//
// Callbacks (attempts, on_timeout, wake_service) run with no lock of the
// queue held, may call notify(), has_waiters() and stats(), and must not
// throw.
//
// Thread safety: every method may be called from any thread; service() is
// meant for one thread at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace swiotlb {

struct WaitStats {
  std::uint64_t waits = 0;        // callers that had to wait (both kinds)
  std::uint64_t wait_ns = 0;      // total time spent waiting by finished entries
  std::uint64_t timeouts = 0;     // entries whose deadline passed first
  std::uint64_t queued = 0;       // entries that came through enqueue()
  std::uint64_t waiting_now = 0;  // entries in the queue now
};

class WaitQueue {
 public:
  using Clock = std::chrono::steady_clock;

  // `wake_service` is called (from any thread, with no lock of the queue
  // held) when a queued entry joins (its deadline may be the earliest), has
  // reached the head or may make progress, so that the service thread runs
  // service() soon. May be empty when enqueue() is never used.
  explicit WaitQueue(std::function<void()> wake_service = nullptr);
  ~WaitQueue();  // REQUIRES: no entry waiting
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  // Joins the queue and sleeps until `attempt` returns true while this
  // entry is at the head (true), or until `deadline` passes (false: the
  // entry has left the queue; the caller reports the timeout). The attempt
  // runs on this thread, with no lock of the queue held, and only while
  // this entry is at the head: at once when it gets there (even if its
  // deadline has passed by then), then each time notify() says room may
  // have appeared. An entry that times out behind others never tries.
  bool wait(Clock::time_point deadline, const std::function<bool()>& attempt);

  // Joins the queue and returns at once. When the entry is at the head and
  // room may have appeared, service() runs `attempt`; when it returns true
  // the entry leaves. If `deadline` passes first, service() runs
  // `on_timeout` instead and the entry leaves. Each entry ends in exactly
  // one of the two.
  void enqueue(Clock::time_point deadline, std::function<bool()> attempt,
               std::function<void()> on_timeout);

  // Room may have appeared: the head tries again. Cheap with nobody waiting.
  void notify();

  // notify() for room published under a lock that every attempt passes
  // through first (see Ordering): `count` is what the caller read of
  // waiter_count() while it held that lock. With 0, nothing; otherwise as
  // notify(). No fence.
  void notify_counted(std::uint64_t count) {
    if (count != 0) [[unlikely]] {
      wake_head();
    }
  }
  // The number of entries in the queue, for notify_counted(). Read it with
  // any memory order; the lock it is read under gives the ordering.
  const std::atomic<std::uint64_t>& waiter_count() const { return *waiter_count_; }

  // Run by the service thread: tries the queued entries at the head (in
  // order, until one finds no room or a blocking waiter is at the head) and
  // times out the queued entries whose deadline passed. Returns the
  // earliest deadline of a queued entry still waiting (Clock::time_point::max()
  // when none), so the service thread knows when to call again.
  Clock::time_point service();

  // Whether anyone waits: a new caller that may sleep joins the queue
  // behind them instead of trying first, so that the order holds.
  bool has_waiters() const;

  WaitStats stats() const;

  // Times out every entry now (queued ones run on_timeout on this thread;
  // blocking waiters return false, or true if an attempt they were running
  // succeeds). An attempt running on the service thread is let finish
  // first. Returns when every entry that was waiting has left, so that the
  // queue can then be destroyed. For shutdown; not from inside a callback.
  void cancel_all();

 private:
  struct Entry;
  struct State;
  void wake_head();  // moves the epoch on and wakes the head

  std::unique_ptr<State> state_;
  const std::atomic<std::uint64_t>* waiter_count_;  // state_'s, read inline
};

}  // namespace swiotlb
