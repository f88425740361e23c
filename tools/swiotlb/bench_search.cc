// run_search_bench(): the slot-search cases of bench_search.h, timed.
//
// Timing, as for the other `swiotlb bench` cases: each policy's loop is
// calibrated on its own until one pass lasts min_seconds (the last pass is
// the warm-up), then `rounds` rounds time every policy of the case in turn
// with those counts, and the median round of each is kept, so a burst of
// noise spoils one round of one policy rather than one side of a ratio.
// Fixtures are built once per (policy, areas, occupancy) and shared by the
// request sizes: a map and its unmap leave the pool as they found it, but
// for the kernel policies' search cursor, which is theirs to move.
#include "bench_search.h"

#include <fmt/format.h>

#include <cmath>
#include <iterator>
#include <map>
#include <thread>
#include <tuple>

#include "bench_clock.h"
#include "cli_name_filter.h"

namespace swiotlb::bench {
namespace {

constexpr std::string_view kBaselinePolicy = "linux";

struct Case {
  std::uint32_t threads = 1;
  unsigned occupancy = 0;  // percent
  std::uint64_t bytes = 0;
};

std::string case_name(std::string_view policy, const Case& c) {
  return fmt::format("search/{}/{}/occ{}/t{}", policy, c.bytes, c.occupancy, c.threads);
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (std::uint32_t threads : search_thread_counts()) {
    for (unsigned occupancy : kSearchOccupancies) {
      for (std::uint64_t bytes : kSearchSizes) {
        cases.push_back({threads, occupancy, bytes});
      }
    }
  }
  return cases;
}

struct Pass {
  double seconds = 0;       // wall
  double cpu_seconds = 0;   // all threads
  std::uint64_t found = 0;  // maps that found a run, all threads
};

// Runs `iterations` map+unmap on each of the case's threads (released
// together, see bench_clock.h), thread t in the area of CPU t.
Result<Pass> time_ops(SearchFixture& fixture, const Case& c, std::uint64_t iterations) {
  std::vector<Status> status(c.threads);
  std::vector<std::uint64_t> found(c.threads);
  const Elapsed took = run_released(c.threads, [&](unsigned t) {
    // Counted locally and stored once: neighbouring counters written on
    // every operation would share a cache line between the threads.
    std::uint64_t hits = 0;
    for (std::uint64_t i = 0; i < iterations; ++i) {
      Result<bool> ok = fixture.map_unmap(c.bytes, t);
      if (!ok) {
        status[t] = std::move(ok).error();
        break;
      }
      hits += *ok ? 1u : 0u;
    }
    found[t] = hits;
  });
  for (const Status& s : status) {
    if (!s) {
      return s.error();
    }
  }
  Pass pass{took.wall, took.cpu, 0};
  for (std::uint64_t f : found) {
    pass.found += f;
  }
  return pass;
}

Result<std::uint64_t> calibrate(SearchFixture& fixture, const Case& c, double min_seconds) {
  std::uint64_t iterations = 1;
  for (;;) {
    Result<Pass> pass = time_ops(fixture, c, iterations);
    if (!pass) {
      return std::move(pass).error();
    }
    const double seconds = pass->seconds;
    if (seconds >= min_seconds) {
      return iterations;
    }
    iterations = next_iterations(iterations, seconds, min_seconds);
  }
}

// Fixtures by (policy, areas, occupancy), built on first use.
class Fixtures {
 public:
  Result<SearchFixture*> get(std::string_view policy, const Case& c) {
    const std::uint32_t areas = search_areas(c.threads);
    const auto key = std::make_tuple(std::string(policy), areas, c.occupancy);
    auto found = fixtures_.find(key);
    if (found == fixtures_.end()) {
      Result<std::unique_ptr<SearchFixture>> made =
          SearchFixture::create(policy, areas, c.occupancy);
      if (!made) {
        return std::move(made).error();
      }
      found = fixtures_.emplace(key, std::move(*made)).first;
    }
    return found->second.get();
  }

 private:
  std::map<std::tuple<std::string, std::uint32_t, unsigned>, std::unique_ptr<SearchFixture>>
      fixtures_;
};

struct Timed {
  std::string_view policy;
  SearchFixture* fixture = nullptr;
  double occupancy = 0;
  std::uint64_t iterations = 0;
  std::vector<double> ns;
  std::vector<double> cpu_ns;
  std::uint64_t ops = 0;
  std::uint64_t found = 0;
};

// Times `policies` (the baseline first) on one case, rounds interleaved.
Result<std::vector<Timed>> time_case(Fixtures& fixtures, const Case& c,
                                     const std::vector<std::string_view>& policies,
                                     const SearchBenchOptions& options) {
  std::vector<Timed> timed;
  for (std::string_view policy : policies) {
    Result<SearchFixture*> fixture = fixtures.get(policy, c);
    if (!fixture) {
      return std::move(fixture).error();
    }
    Result<std::uint64_t> iterations = calibrate(**fixture, c, options.min_seconds);
    if (!iterations) {
      return std::move(iterations).error();
    }
    timed.push_back({policy, *fixture, (*fixture)->occupancy(), *iterations, {}, {}});
  }
  for (std::uint32_t round = 0; round < options.rounds; ++round) {
    for (Timed& t : timed) {
      Result<Pass> pass = time_ops(*t.fixture, c, t.iterations);
      if (!pass) {
        return std::move(pass).error();
      }
      const double ops = static_cast<double>(t.iterations * c.threads);
      t.ns.push_back(pass->seconds * 1e9 / ops);
      t.cpu_ns.push_back(pass->cpu_seconds * 1e9 / ops);
      t.ops += t.iterations * c.threads;
      t.found += pass->found;
    }
  }
  return timed;
}

}  // namespace

std::vector<std::string> search_bench_names() {
  std::vector<std::string> names;
  for (const Case& c : all_cases()) {
    for (std::string_view policy : kSearchPolicies) {
      names.push_back(case_name(policy, c));
    }
  }
  return names;
}

Result<std::vector<SearchBenchResult>> run_search_bench(
    const SearchBenchOptions& options,
    const std::function<void(const SearchBenchResult&)>& on_row) {
  if (options.rounds == 0 || !(options.min_seconds > 0)) {
    return make_error(Errc::invalid_argument,
                      "search bench: needs at least one round of some time");
  }
  Result<cli::NameFilter> pattern = cli::NameFilter::compile(options.filter);
  if (!pattern) {
    return std::move(pattern).error();
  }
  Fixtures fixtures;
  std::vector<SearchBenchResult> rows;
  for (const Case& c : all_cases()) {
    auto selected = [&](std::string_view policy) { return pattern->matches(case_name(policy, c)); };
    std::vector<std::string_view> policies{kBaselinePolicy};
    std::copy_if(kSearchPolicies.begin(), kSearchPolicies.end(), std::back_inserter(policies),
                 [&](std::string_view p) { return p != kBaselinePolicy && selected(p); });
    if (policies.size() == 1 && !selected(kBaselinePolicy)) {
      continue;
    }
    Result<std::vector<Timed>> timed = time_case(fixtures, c, policies, options);
    if (!timed) {
      return make_error(timed.error().code(), "case {}: {}", case_name(policies.back(), c),
                        timed.error().message());
    }
    const double baseline = median(timed->front().ns);
    const double baseline_cpu = median(timed->front().cpu_ns);
    for (const Timed& t : *timed) {
      if (!selected(t.policy)) {
        continue;
      }
      SearchBenchResult row{case_name(t.policy, c),
                            std::string(t.policy),
                            c.bytes,
                            c.threads,
                            t.occupancy,
                            static_cast<double>(t.found) / static_cast<double>(t.ops),
                            median(t.ns),
                            median(t.cpu_ns),
                            baseline,
                            baseline_cpu,
                            0,
                            0};
      row.ratio = baseline > 0 ? row.ns_per_op / baseline : 0;
      row.cpu_ratio = baseline_cpu > 0 ? row.cpu_ns_per_op / baseline_cpu : 0;
      if (on_row) {
        on_row(row);
      }
      rows.push_back(std::move(row));
    }
  }
  if (rows.empty()) {
    return make_error(Errc::invalid_argument, "filter '{}' matches no search case", options.filter);
  }
  return rows;
}

}  // namespace swiotlb::bench
