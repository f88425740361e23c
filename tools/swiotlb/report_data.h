// What `swiotlb report` shows about one trace, computed: sizing with a
// margin, a replay series per policy at the trace's pool, the sizing curve,
// and a dynamic-growth replay. report_html.h turns it into a page.
//
// Errors: build_trace_report fails when the trace cannot be read, has no
// map, names an unknown policy or an impossible area count, or no pool can
// be built for it (no `# pool` line and no size found).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "progress.h"
#include "swiotlb/core/error.h"
#include "swiotlb/sim/dynamic_replay.h"
#include "swiotlb/sim/replay_series.h"
#include "swiotlb/sim/sizing.h"
#include "swiotlb/sim/trace.h"

namespace swiotlb::cli {

struct ReportOptions {
  // Default: linux-6.1, linux and fast.
  std::vector<std::string> policies;
  // Default: the trace's area count, and 4 as well when that differs.
  std::vector<std::uint32_t> area_counts;
  std::uint32_t margin_percent = 25;
  std::optional<std::uint64_t> ram_bytes;
  std::string cmdline;  // for the swiotlb= flags, as `size --cmdline`
  bool skip_bad = false;
  // About how many pool sizes the sizing curve replays per policy.
  std::size_t curve_points = 16;
  // Told of each stage; may be null.
  sim::TerminalProgress* progress = nullptr;
};

struct CurveSeries {
  std::string policy;
  std::vector<sim::CurvePoint> points;
};

struct DynamicTimeline {
  sim::DynamicReplayReport report;
  // Default and grown slots after each change: (event index, total slots).
  std::vector<double> pool_event;
  std::vector<double> pool_slots;
  // Events at which a map got a transient pool.
  std::vector<double> transient_events;
};

struct TraceReport {
  std::string path;
  sim::Trace trace;
  // Seconds since the first event, per event, when every event has a time;
  // empty otherwise.
  std::vector<double> seconds;
  std::string flags;  // "force", "noforce" or empty
  sim::SizingReport sizing;
  std::vector<sim::ReplaySeries> series;  // one per policy, at the trace's pool
  std::uint32_t curve_nareas = 1;
  std::vector<CurveSeries> curves;  // one per policy at curve_nareas
  std::optional<DynamicTimeline> dynamic;
  std::string dynamic_unavailable;  // why not, when dynamic is empty
};

Result<TraceReport> build_trace_report(const std::string& path, const ReportOptions& options);

}  // namespace swiotlb::cli
