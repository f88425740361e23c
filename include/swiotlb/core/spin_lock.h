// SpinLock: a lock for critical sections of a few dozen instructions, such
// as a CPU's or an area's magazines (the kernel takes a spinlock there).
//
// Taking it is one atomic exchange and giving it back one release store,
// where std::mutex pays an atomic read-modify-write each way. A waiter spins
// a while on a plain load, then yields its CPU, so that a holder preempted
// on a busy machine gets to run. Not recursive; meets the Lockable
// requirements (std::lock_guard, std::unique_lock).
//
// Memory ordering: lock() acquires and unlock() releases, so everything
// written under the lock is seen by the next holder.
#pragma once

#include <atomic>
#include <thread>

namespace swiotlb {

class SpinLock {
 public:
  void lock() {
    while (held_.exchange(true, std::memory_order_acquire)) {
      wait();
    }
  }
  bool try_lock() { return !held_.exchange(true, std::memory_order_acquire); }
  void unlock() { held_.store(false, std::memory_order_release); }

 private:
  [[gnu::cold]] void wait() const {
    for (unsigned spins = 0; held_.load(std::memory_order_relaxed); ++spins) {
      if (spins >= 64) {
        std::this_thread::yield();
        spins = 0;
      }
    }
  }
  std::atomic<bool> held_{false};
};

}  // namespace swiotlb
