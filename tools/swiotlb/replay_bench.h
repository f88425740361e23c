// How fast a trace replays, end to end, for `swiotlb bench`: a synthetic trace is generated and
// written out as text (not timed), then parsed and replayed by replay_trace_text (timed), the way
// `swiotlb replay` spends its time on a file already in the page cache.
#pragma once

#include <cstdint>
#include <string>

#include "swiotlb/core/error.h"
#include "swiotlb/sim/workload.h"

namespace swiotlb::sim {

struct ReplaySpeed {
  std::uint64_t events = 0;     // events parsed and replayed
  std::uint64_t bytes = 0;      // size of the trace text
  std::uint64_t failures = 0;   // maps the replayed pool could not serve
  std::uint32_t rounds = 0;     // rounds timed; each figure below is their median
  double seconds = 0;           // wall time: parse and replay, overlapped as replay_trace_text does
  double cpu_seconds = 0;       // CPU time of the process meanwhile, all threads
  double baseline_seconds = 0;  // wall time of the replay of the trace already parsed
  double baseline_cpu_seconds = 0;  // its CPU time

  double events_per_second() const {
    return seconds > 0 ? static_cast<double>(events) / seconds : 0;
  }
  // Less sensitive to a busy machine than events_per_second: what one CPU
  // does in a second when parse and replay share it.
  double events_per_cpu_second() const {
    return cpu_seconds > 0 ? static_cast<double>(events) / cpu_seconds : 0;
  }
};

// Generates a workload of `profile` with about `events` events and `seed`
// on a 4-CPU pool, then times `rounds` rounds (at least 1) under `policy`:
// each the parse and replay of its text, then the replay of the trace
// already parsed (the baseline). The median round of each is kept, so that
// a burst of noise on a shared machine spoils one round, not the figure.
// Fails when the workload cannot be generated or a replay fails.
Result<ReplaySpeed> measure_replay_speed(std::uint64_t events, std::uint64_t seed,
                                         std::uint32_t rounds, const std::string& policy = "linux",
                                         WorkloadProfile profile = WorkloadProfile::mixed);

}  // namespace swiotlb::sim
