// The worker loop: sleeps until asked, until the next queued deadline, or
// until the next look for idle pools is due.
#include "io_tlb_worker.h"

#include <algorithm>

namespace swiotlb {

IoTlb::Worker::Worker(IoTlb& owner, std::chrono::milliseconds tick, bool threaded)
    : owner_(owner), tick_(tick) {
  if (threaded) {
    thread_ = std::thread([this] { loop(); });
  }
}

IoTlb::Worker::~Worker() {
  if (!thread_.joinable()) {
    return;
  }
  {
    std::lock_guard guard(lock_);
    stop_ = true;
  }
  wakeup_.notify_one();
  thread_.join();
}

void IoTlb::Worker::request_growth(std::uint32_t tier) {
  const std::uint32_t bit = 1u << tier;
  if ((growth_asked_.fetch_or(bit, std::memory_order_acq_rel) & bit) != 0) {
    return;
  }
  wake();
}

void IoTlb::Worker::wake() {
  {
    std::lock_guard guard(lock_);
    woken_ = true;
  }
  wakeup_.notify_one();
}

void IoTlb::Worker::run_now() {
  if (!thread_.joinable()) {
    (void)owner_.waits_.service();  // nobody else serves the queued maps
  }
  std::lock_guard work(work_lock_);
  run_pending();
}

void IoTlb::Worker::run_pending() {
  const std::uint32_t asked = growth_asked_.exchange(0, std::memory_order_acq_rel);
  for (std::uint32_t tier = 0; tier < 32; ++tier) {
    if ((asked & (1u << tier)) != 0) {
      owner_.grow(tier);
    }
  }
  if (tick_.count() != 0) {
    owner_.shrink_idle();
  }
  if (owner_.table_->has_retired()) {
    owner_.table_->reclaim();
  }
}

void IoTlb::Worker::loop() {
  using Clock = WaitQueue::Clock;
  Clock::time_point next_tick =
      tick_.count() != 0 ? Clock::now() + tick_ : Clock::time_point::max();
  for (;;) {
    Clock::time_point next_deadline = owner_.waits_.service();
    {
      std::unique_lock guard(lock_);
      const Clock::time_point until = std::min(next_tick, next_deadline);
      auto ready = [&] { return stop_ || woken_; };
      if (until == Clock::time_point::max()) {
        wakeup_.wait(guard, ready);
      } else {
        wakeup_.wait_until(guard, until, ready);
      }
      if (stop_) {
        return;
      }
      woken_ = false;
    }
    if (tick_.count() != 0 && Clock::now() >= next_tick) {
      next_tick = Clock::now() + tick_;
    }
    std::lock_guard work(work_lock_);
    run_pending();
  }
}

}  // namespace swiotlb
