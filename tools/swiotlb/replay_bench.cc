// The end-to-end replay measurement behind `swiotlb bench` (replay_bench.h).
#include "replay_bench.h"

#include <chrono>
#include <ctime>

#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/trace_writer.h"

namespace swiotlb::sim {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Result<ReplaySpeed> measure_replay_speed(std::uint64_t events, std::uint64_t seed,
                                         const std::string& policy, WorkloadProfile profile) {
  WorkloadOptions workload;
  workload.profile = profile;
  workload.events = events;
  workload.seed = seed;
  workload.cpus = 4;
  Result<Trace> generated = generate_workload(workload);
  if (!generated) {
    return std::move(generated).error();
  }
  const std::string text = format_trace(*generated);

  ReplaySpeed speed;
  speed.bytes = text.size();
  ReplayOptions options;
  options.policy = policy;
  const std::clock_t cpu_start = std::clock();
  const auto start = std::chrono::steady_clock::now();
  Result<ReplayReport> report = replay_trace_text(text, ParseOptions{}, options);
  speed.seconds = seconds_since(start);
  speed.cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  if (!report) {
    return std::move(report).error();
  }
  speed.events = report->events;
  speed.failures = report->failures + report->would_spin;
  return speed;
}

}  // namespace swiotlb::sim
