// The end-to-end replay measurement behind `swiotlb bench` (replay_bench.h).
#include "replay_bench.h"

#include <algorithm>
#include <vector>

#include "bench_clock.h"
#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/trace_writer.h"

namespace swiotlb::sim {

Result<ReplaySpeed> measure_replay_speed(std::uint64_t events, std::uint64_t seed,
                                         std::uint32_t rounds, const std::string& policy,
                                         WorkloadProfile profile) {
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
  speed.rounds = std::max(rounds, 1u);
  ReplayOptions options;
  options.policy = policy;
  std::vector<double> wall;
  std::vector<double> cpu;
  std::vector<double> baseline_wall;
  std::vector<double> baseline_cpu;
  for (std::uint32_t round = 0; round < speed.rounds; ++round) {
    const bench::Stopwatch whole;
    Result<ReplayReport> report = replay_trace_text(text, ParseOptions{}, options);
    const bench::Elapsed took = whole.elapsed();
    if (!report) {
      return std::move(report).error();
    }
    wall.push_back(took.wall);
    cpu.push_back(took.cpu);
    speed.events = report->events;
    speed.failures = report->failures + report->would_spin;

    const bench::Stopwatch parsed;
    Result<ReplayReport> baseline = replay_trace(*generated, options);
    const bench::Elapsed baseline_took = parsed.elapsed();
    if (!baseline) {
      return std::move(baseline).error();
    }
    baseline_wall.push_back(baseline_took.wall);
    baseline_cpu.push_back(baseline_took.cpu);
  }
  speed.seconds = bench::median(wall);
  speed.cpu_seconds = bench::median(cpu);
  speed.baseline_seconds = bench::median(baseline_wall);
  speed.baseline_cpu_seconds = bench::median(baseline_cpu);
  return speed;
}

}  // namespace swiotlb::sim
