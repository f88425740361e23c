// Computing a trace's report (report_data.h): the replays run on threads of
// their own, one per policy, since each only reads the trace.
#include "report_data.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "swiotlb/sim/trace_parser.h"

namespace swiotlb::cli {
namespace {

constexpr std::uint32_t kOtherAreaCount = 4;

std::vector<double> event_seconds(const sim::Trace& trace) {
  std::vector<double> out;
  if (trace.events.empty() ||
      !std::all_of(trace.events.begin(), trace.events.end(),
                   [](const sim::TraceEvent& e) { return e.has(sim::recorded::kTime); })) {
    return out;
  }
  out.reserve(trace.events.size());
  const std::uint64_t t0 = trace.events.front().t_ns;
  double last = 0;
  for (const sim::TraceEvent& e : trace.events) {
    // Per-CPU buffers can interleave slightly out of order: keep x ascending.
    last = std::max(last, static_cast<double>(e.t_ns >= t0 ? e.t_ns - t0 : 0) / 1e9);
    out.push_back(last);
  }
  return out;
}

// The curve's sizes: from the lowest peak demand (rounded down) to a couple
// of steps above the largest answer, in whole steps, about `points` of them.
struct CurveRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint64_t step = 0;
};

std::optional<CurveRange> curve_range(const sim::SizingReport& sizing, std::uint32_t nareas,
                                      std::size_t points) {
  std::uint64_t lowest_demand = ~std::uint64_t{0};
  std::uint64_t largest = 0;
  const std::uint64_t unit = sim::pool_step_slots(nareas);
  for (const sim::PolicySize& s : sizing.sizes) {
    if (s.nareas == nareas && s.found) {
      lowest_demand = std::min(lowest_demand, s.peak_demand_slots);
      largest = std::max(largest, s.nslabs);
    }
  }
  if (largest == 0) {
    return std::nullopt;
  }
  const std::uint64_t floor = std::uint64_t{128} * nareas;
  CurveRange r;
  r.first = std::max(floor, lowest_demand / unit * unit);
  const std::uint64_t span = largest + 2 * unit - r.first;
  const std::uint64_t units = (span + unit - 1) / unit;
  r.step =
      unit * std::max<std::uint64_t>(1, (units + points - 1) / std::max<std::size_t>(points, 1));
  r.last = r.first + (span + r.step - 1) / r.step * r.step;
  return r;
}

// Replays with growth from one 4 MiB pool, so that growth shows.
Result<DynamicTimeline> dynamic_timeline(const sim::Trace& trace, const ReportOptions& options) {
  std::map<std::uint32_t, std::size_t> event_of_line;
  DynamicTimeline t;
  sim::DynamicReplayOptions d;
  d.policy = "linux";
  const std::uint32_t nareas = trace.pool ? trace.pool->nareas : 1;
  d.nareas = nareas;
  d.nslabs = std::max<std::uint64_t>(sim::kDefaultGrowNslabs, std::uint64_t{128} * nareas);
  d.failures_kept = 0;
  std::vector<std::uint32_t> transient_lines;
  d.on_attempt = [&transient_lines](const sim::DynamicAttempt& a) {
    if (a.pool == sim::kTransientPool && a.found) {
      transient_lines.push_back(a.line);
    }
  };
  if (options.progress != nullptr) {
    d.progress = options.progress->callback();
  }
  Result<sim::DynamicReplayReport> report = sim::replay_dynamic(trace, d);
  if (!report) {
    return std::move(report).error();
  }
  t.report = std::move(*report);
  for (const std::uint32_t line : transient_lines) {
    const auto at =
        std::lower_bound(trace.events.begin(), trace.events.end(), line,
                         [](const sim::TraceEvent& e, std::uint32_t l) { return e.line < l; });
    t.transient_events.push_back(static_cast<double>(at - trace.events.begin()));
  }
  std::vector<std::pair<std::uint64_t, std::int64_t>> changes;
  for (const sim::DynamicPoolReport& pool : t.report.pools) {
    changes.emplace_back(pool.added_at_event, static_cast<std::int64_t>(pool.nslabs));
    if (pool.given_back_at_event) {
      changes.emplace_back(*pool.given_back_at_event, -static_cast<std::int64_t>(pool.nslabs));
    }
  }
  std::sort(changes.begin(), changes.end());
  std::int64_t total = 0;
  for (const auto& [event, delta] : changes) {
    total += delta;
    if (!t.pool_event.empty() && t.pool_event.back() == static_cast<double>(event)) {
      t.pool_slots.back() = static_cast<double>(total);
      continue;
    }
    t.pool_event.push_back(static_cast<double>(event));
    t.pool_slots.push_back(static_cast<double>(total));
  }
  t.pool_event.push_back(static_cast<double>(trace.events.size()));
  t.pool_slots.push_back(static_cast<double>(total));
  return t;
}

void stage(const ReportOptions& options, const std::string& what) {
  if (options.progress != nullptr) {
    options.progress->set_stage(what);
  }
}

}  // namespace

Result<TraceReport> build_trace_report(const std::string& path, const ReportOptions& options) {
  TraceReport r;
  r.path = path;
  stage(options, "report: reading " + path);
  sim::ParseOptions parse;
  parse.skip_bad = options.skip_bad;
  Result<sim::Trace> trace = sim::load_trace(path, parse);
  if (!trace) {
    return std::move(trace).error();
  }
  r.trace = std::move(*trace);
  const sim::Trace& t = r.trace;
  r.seconds = event_seconds(t);
  r.flags = sim::recorded_swiotlb_flags(t, options.cmdline);

  std::vector<std::string> policies = options.policies;
  if (policies.empty()) {
    policies = {"linux-6.1", "linux", "fast"};
  }
  sim::SizingOptions sizing;
  sizing.policies = policies;
  sizing.area_counts = options.area_counts;
  if (sizing.area_counts.empty()) {
    const std::uint32_t own = t.pool ? t.pool->nareas : 1;
    sizing.area_counts.push_back(own);
    if (own != kOtherAreaCount) {
      sizing.area_counts.push_back(kOtherAreaCount);
    }
  }
  sizing.margin_percent = options.margin_percent;
  sizing.flags = r.flags;
  sizing.ram_bytes = options.ram_bytes;
  if (options.progress != nullptr) {
    sizing.progress = options.progress->callback();
    sim::TerminalProgress* progress = options.progress;
    sizing.on_try = [progress](const std::string& policy, std::uint32_t nareas,
                               std::uint64_t nslabs) {
      progress->set_stage(
          fmt::format("report: sizing {} nareas={} nslabs={}", policy, nareas, nslabs));
    };
  }
  Result<sim::SizingReport> sized = sim::size_pool(t, sizing);
  if (!sized) {
    return std::move(sized).error();
  }
  r.sizing = std::move(*sized);
  r.curve_nareas = sizing.area_counts.front();

  // Series at the trace's pool (or at the advised size when it names none)
  // and the curve, one thread per policy.
  stage(options, "report: occupancy and sizing curve");
  sim::SeriesOptions series_options;
  if (!t.pool) {
    const sim::PolicySize& best = r.sizing.recommended();
    if (!best.found) {
      return make_error(Errc::invalid_argument,
                        "the trace has no '# pool' line and no pool size serves it");
    }
    series_options.nslabs = best.advised_nslabs;
    series_options.nareas = best.nareas;
  }
  const std::optional<CurveRange> range =
      curve_range(r.sizing, r.curve_nareas, options.curve_points);
  // One job per series and per curve point, shared by as many threads as
  // the machine has cores: the points differ a lot in cost (a pool far too
  // small fails, and searches its whole area for, nearly every map).
  const std::size_t points =
      range ? static_cast<std::size_t>((range->last - range->first) / range->step + 1) : 0;
  std::vector<std::optional<Result<sim::ReplaySeries>>> series(policies.size());
  std::vector<std::vector<std::optional<Result<std::vector<sim::CurvePoint>>>>> curves(
      policies.size(), std::vector<std::optional<Result<std::vector<sim::CurvePoint>>>>(points));
  const std::size_t jobs = policies.size() * (1 + points);
  std::atomic<std::size_t> next{0};
  const auto work = [&] {
    for (std::size_t job = next++; job < jobs; job = next++) {
      const std::size_t policy = job % policies.size();
      const std::size_t point = job / policies.size();
      if (point == 0) {
        sim::SeriesOptions o = series_options;
        o.policy = policies[policy];
        series[policy] = sim::replay_series(t, o);
      } else {
        const std::uint64_t n = range->first + (point - 1) * range->step;
        curves[policy][point - 1] =
            sim::sizing_curve(t, policies[policy], r.curve_nareas, n, n, range->step);
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < std::max(1u, std::thread::hardware_concurrency()); ++i) {
    threads.emplace_back(work);
  }
  work();
  for (std::thread& thread : threads) {
    thread.join();
  }
  for (std::size_t i = 0; i < policies.size(); ++i) {
    if (!*series[i]) {
      return std::move(*series[i]).error();
    }
    r.series.push_back(std::move(*series[i]).value());
    if (points == 0) {
      continue;
    }
    CurveSeries curve{policies[i], {}};
    for (std::optional<Result<std::vector<sim::CurvePoint>>>& point : curves[i]) {
      if (!*point) {
        return std::move(*point).error();
      }
      curve.points.insert(curve.points.end(), (*point)->begin(), (*point)->end());
    }
    r.curves.push_back(std::move(curve));
  }

  stage(options, "report: dynamic growth");
  Result<DynamicTimeline> dynamic = dynamic_timeline(t, options);
  if (dynamic) {
    r.dynamic = std::move(*dynamic);
  } else {
    r.dynamic_unavailable = dynamic.error().message();
  }
  return r;
}

}  // namespace swiotlb::cli
