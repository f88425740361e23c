// How fast a trace replays, end to end, for `swiotlb bench` and the
// benchmarks: a synthetic trace is generated and written out as text (not
// timed), then parsed and replayed (timed), the way `swiotlb replay` spends
// its time on a file already in memory.
#pragma once

#include <cstdint>
#include <string>

#include "swiotlb/core/error.h"

namespace swiotlb::sim {

struct ReplaySpeed {
  std::uint64_t events = 0;      // events parsed and replayed
  std::uint64_t bytes = 0;       // size of the trace text
  double parse_seconds = 0;
  double replay_seconds = 0;

  double seconds() const { return parse_seconds + replay_seconds; }
  double events_per_second() const { return seconds() > 0 ? static_cast<double>(events) / seconds() : 0; }
};

// Generates a `mixed` workload of about `events` events with `seed` on a
// 4-CPU pool, then times its parse and its replay under `policy`.
// Fails when the workload cannot be generated or the replay cannot start.
Result<ReplaySpeed> measure_replay_speed(std::uint64_t events, std::uint64_t seed,
                                         const std::string& policy = "linux");

}  // namespace swiotlb::sim
