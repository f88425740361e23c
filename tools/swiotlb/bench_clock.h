// The clocks of `swiotlb bench`: wall time and the process's CPU time, read
// together, and the release of a group of worker threads at one instant.
//
// Every row reports both. On a machine shared with other work the wall
// time of a loop includes the time its thread waited for a CPU; the CPU
// time does not, so the two side by side tell a slow operation from a busy
// machine. The CPU time is the whole process's (CLOCK_PROCESS_CPUTIME_ID):
// for a case on several threads that is the sum of what they ran, and any
// other thread of the process (an IoTlb's idle worker) counts too.
//
// Thread safety: the functions may be called from any thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <thread>
#include <vector>

namespace swiotlb::bench {

// Calibration: the next iteration count to try after a pass of `iterations`
// took `seconds`, aiming a little above `min_seconds` and growing at most
// tenfold a step (a pass too short to measure says little about the next).
inline std::uint64_t next_iterations(std::uint64_t iterations, double seconds, double min_seconds) {
  constexpr double kMaxGrowth = 10.0;
  constexpr double kAimAbove = 1.2;
  const double wanted = seconds > 0 ? kAimAbove * min_seconds / seconds : kMaxGrowth;
  const double grown = std::ceil(static_cast<double>(iterations) * std::min(wanted, kMaxGrowth));
  return std::max(iterations + 1, static_cast<std::uint64_t>(grown));
}

// The median of the rounds of a case.
inline double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 != 0 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

// CPU seconds this process has run, all threads.
inline double process_cpu_seconds() {
  timespec now{};
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now) != 0) {
    return 0;  // not on this system: rows then show a CPU time of 0
  }
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// Wall and CPU seconds of one timed stretch.
struct Elapsed {
  double wall = 0;
  double cpu = 0;
};

class Stopwatch {
 public:
  Stopwatch() : wall_(std::chrono::steady_clock::now()), cpu_(process_cpu_seconds()) {}
  Elapsed elapsed() const {
    const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - wall_;
    return {wall.count(), process_cpu_seconds() - cpu_};
  }

 private:
  std::chrono::steady_clock::time_point wall_;
  double cpu_;
};

// Starts `count` threads, runs setup(t) on each, waits until all are ready,
// releases them together to run body(t), and returns the time from their
// release to the last one's end.
//
// A single thread is a worker thread too, never the caller: glibc takes a
// lock with plain instructions in a process that has never started a
// thread, and with atomic ones once it has, which is what a library user
// with threads pays. Timing one thread on a caller that may never have
// started one would compare two different prices of the same lock.
template <class Setup, class Body>
Elapsed run_released(unsigned count, Setup setup, Body body) {
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  threads.reserve(count);
  for (unsigned t = 0; t < count; ++t) {
    threads.emplace_back([&, t] {
      setup(t);
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
        std::this_thread::yield();
      }
      body(t);
    });
  }
  while (ready.load() != count) {
    std::this_thread::yield();
  }
  const Stopwatch watch;
  go.store(true, std::memory_order_release);
  for (std::thread& t : threads) {
    t.join();
  }
  return watch.elapsed();
}

template <class Body>
Elapsed run_released(unsigned count, Body body) {
  return run_released(
      count, [](unsigned) {}, body);
}

}  // namespace swiotlb::bench
