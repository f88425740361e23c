// Scaling from one thread to two, with the ceiling the machine allows
// measured in the same run.
//
// `scaling/fast/4096/t2`: SlotPool map+unmap of 4 KiB (no copy) on an empty
// `fast` pool with two areas, thread t in area t. `scaling_copy/fast/4096/t2`:
// the whole DMA path (map_single with its bounce copy, then unmap_single) on
// an IoTlb with an area per CPU, each thread with a device and a source
// buffer of its own, debug checks off. Each row gives
//   speedup         = throughput of 2 threads / throughput of 1
//   ceiling_speedup = the same for a pure compute loop (no memory shared,
//                     nothing but registers), timed round for round with it
//   efficiency      = speedup / ceiling_speedup
// so that a neighbour busy on one of the CPUs (which lowers both) is told
// apart from contention inside the library (which lowers only the first).
// Thread t is pinned to CPU t when the process may run on that many CPUs.
// Rounds interleave the four loops (1 and 2 threads, operation and
// compute); the median of each ratio over the rounds is reported.
//
// Thread safety: run_scaling_bench() is for one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "swiotlb/core/error.h"

namespace swiotlb::bench {

struct ScalingBenchResult {
  std::string name;  // e.g. "scaling/fast/4096/t2"
  std::string policy;
  std::uint64_t bytes = 0;
  std::uint32_t threads = 2;
  bool copy = false;
  double ns_per_op = 0;               // 2 threads: wall time / all ops
  double cpu_ns_per_op = 0;           // 2 threads: CPU time / all ops
  double baseline_ns_per_op = 0;      // 1 thread: wall time / ops
  double baseline_cpu_ns_per_op = 0;  // 1 thread: CPU time / ops
  double speedup = 0;
  double ceiling_speedup = 0;
  double efficiency = 0;  // speedup / ceiling_speedup
};

struct ScalingBenchOptions {
  double min_seconds = 0.05;  // the least time one round of one loop lasts
  std::uint32_t rounds = 5;
  std::string filter;  // ECMAScript regex on the names; empty: every case
};

// The case names, in the order run_scaling_bench() reports them.
std::vector<std::string> scaling_bench_names();

// Times the cases the filter selects. Fails for an invalid filter, a
// fixture that cannot be built or an operation that fails (naming the case).
Result<std::vector<ScalingBenchResult>> run_scaling_bench(
    const ScalingBenchOptions& options,
    const std::function<void(const ScalingBenchResult&)>& on_row = nullptr);

}  // namespace swiotlb::bench
