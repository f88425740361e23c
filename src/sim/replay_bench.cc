// The end-to-end replay measurement behind `swiotlb bench` (replay_bench.h).
#include "swiotlb/sim/replay_bench.h"

#include <chrono>

#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/trace_parser.h"
#include "swiotlb/sim/trace_writer.h"
#include "swiotlb/sim/workload.h"

namespace swiotlb::sim {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Result<ReplaySpeed> measure_replay_speed(std::uint64_t events, std::uint64_t seed,
                                         const std::string& policy) {
  WorkloadOptions workload;
  workload.profile = WorkloadProfile::mixed;
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
  const auto parse_start = std::chrono::steady_clock::now();
  Result<Trace> parsed = parse_trace(text);
  speed.parse_seconds = seconds_since(parse_start);
  if (!parsed) {
    return std::move(parsed).error();
  }
  ReplayOptions options;
  options.policy = policy;
  const auto replay_start = std::chrono::steady_clock::now();
  Result<ReplayReport> report = replay_trace(*parsed, options);
  speed.replay_seconds = seconds_since(replay_start);
  if (!report) {
    return std::move(report).error();
  }
  speed.events = report->events;
  return speed;
}

}  // namespace swiotlb::sim
