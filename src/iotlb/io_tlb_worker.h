// The IoTlb's background work: what must not run in a caller's map or
// unmap. It adds pools when asked (a search failed, or a pool passed its
// watermark), gives back grown pools that stayed idle, frees retired pools
// after their grace period, and serves the queued map requests. A thread
// of its own runs it, or, for a backend with caller-driven maintenance,
// only run_now() (IoTlb::run_maintenance()) does.
//
// Thread safety: request_growth(), wake() and run_now() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb {

class SWIOTLB_LOCAL IoTlb::Worker {
 public:
  // `tick`: how often to look for idle pools (zero: never); `threaded`:
  // whether a thread runs the work by itself.
  Worker(IoTlb& owner, std::chrono::milliseconds tick, bool threaded);
  ~Worker();  // stops and joins the thread
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Asks for a pool for configured pool `tier`. Cheap when already asked.
  void request_growth(std::uint32_t tier);
  // Something to do (a retired pool, a queued request).
  void wake();
  // Does all pending work on the caller's thread, serialized with the worker.
  void run_now();

 private:
  void loop();
  void run_pending();  // REQUIRES: work_lock_ held

  IoTlb& owner_;
  const std::chrono::milliseconds tick_;
  std::mutex lock_;  // guards the flags below and the wakeups
  std::condition_variable wakeup_;
  bool stop_ = false;
  bool woken_ = false;
  std::atomic<std::uint32_t> growth_asked_{0};  // one bit per configured pool
  std::mutex work_lock_;                        // one runner of the work at a time
  std::thread thread_;                          // not started without `threaded`
};

}  // namespace swiotlb
