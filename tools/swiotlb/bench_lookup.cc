// run_lookup_bench(): the lookup-by-address cases of bench_lookup.h, timed.
//
// Timing, as for the slot-search cases: each scheme's loop is calibrated on
// its own until one pass lasts min_seconds (the last pass is the warm-up),
// then `rounds` rounds time every scheme of the case in turn with those
// counts, and the median round of each is kept. Fixtures are built once per
// pool count and shared by the thread counts: a lookup changes nothing.
#include "bench_lookup.h"

#include <fmt/format.h>

#include <cmath>
#include <map>
#include <thread>

#include "bench_clock.h"
#include "cli_name_filter.h"

namespace swiotlb::bench {
namespace {

struct Case {
  std::uint32_t threads = 1;
  std::uint32_t pools = 1;
};

std::string case_name(LookupScheme scheme, const Case& c) {
  return fmt::format("lookup/{}/{}/t{}", lookup_scheme_name(scheme), c.pools, c.threads);
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (std::uint32_t threads : kLookupThreads) {
    for (std::uint32_t pools : kLookupPoolCounts) {
      cases.push_back({threads, pools});
    }
  }
  return cases;
}

// Where thread t starts in the fixture's addresses: far from the others.
std::uint64_t first_address(unsigned t, std::uint32_t threads) {
  return static_cast<std::uint64_t>(t) * (kLookupAddresses / threads);
}

// The threads are released together (bench_clock.h), with a setup step
// outside the timed part: a thread's first read-side critical section
// registers it with liburcu-bp, which takes a global lock and may map
// memory, a cost a long-lived reader pays once and a timed pass on a new
// thread must not.

// Runs `iterations` lookups on each of the case's threads; returns the
// time they took. The hits are kept (and written once per thread) so
// that no lookup's result goes unused.
Elapsed time_ops(const LookupFixture& fixture, LookupScheme scheme, const Case& c,
                 std::uint64_t iterations, std::vector<std::uint64_t>& hits) {
  hits.assign(c.threads, 0);
  return run_released(
      c.threads, [&](unsigned t) { (void)fixture.lookup(scheme, first_address(t, c.threads), 1); },
      [&](unsigned t) {
        hits[t] = fixture.lookup(scheme, first_address(t, c.threads), iterations);
      });
}

std::uint64_t calibrate(const LookupFixture& fixture, LookupScheme scheme, const Case& c,
                        double min_seconds) {
  std::vector<std::uint64_t> hits;
  std::uint64_t iterations = 1;
  for (;;) {
    const double seconds = time_ops(fixture, scheme, c, iterations, hits).wall;
    if (seconds >= min_seconds) {
      return iterations;
    }
    iterations = next_iterations(iterations, seconds, min_seconds);
  }
}

// Fixtures by pool count, built on first use.
class Fixtures {
 public:
  Result<const LookupFixture*> get(std::uint32_t pools) {
    auto found = fixtures_.find(pools);
    if (found == fixtures_.end()) {
      Result<std::unique_ptr<LookupFixture>> made = LookupFixture::create(pools);
      if (!made) {
        return std::move(made).error();
      }
      found = fixtures_.emplace(pools, std::move(*made)).first;
    }
    return found->second.get();
  }

 private:
  std::map<std::uint32_t, std::unique_ptr<LookupFixture>> fixtures_;
};

struct Timed {
  LookupScheme scheme = LookupScheme::rcu;
  std::uint64_t iterations = 0;
  std::vector<double> ns;
  std::vector<double> cpu_ns;
};

// Times every scheme of one case, rounds interleaved.
std::vector<Timed> time_case(const LookupFixture& fixture, const Case& c,
                             const LookupBenchOptions& options) {
  std::vector<Timed> timed;
  timed.reserve(kLookupSchemes.size());
  for (LookupScheme scheme : kLookupSchemes) {
    timed.push_back({scheme, calibrate(fixture, scheme, c, options.min_seconds), {}, {}});
  }
  std::vector<std::uint64_t> hits;
  for (std::uint32_t round = 0; round < options.rounds; ++round) {
    for (Timed& t : timed) {
      const Elapsed took = time_ops(fixture, t.scheme, c, t.iterations, hits);
      const double ops = static_cast<double>(t.iterations * c.threads);
      t.ns.push_back(took.wall * 1e9 / ops);
      t.cpu_ns.push_back(took.cpu * 1e9 / ops);
    }
  }
  return timed;
}

double ns_of(const std::vector<Timed>& timed, LookupScheme scheme) {
  for (const Timed& t : timed) {
    if (t.scheme == scheme) {
      return median(t.ns);
    }
  }
  return 0;
}

}  // namespace

std::vector<std::string> lookup_bench_names() {
  std::vector<std::string> names;
  for (const Case& c : all_cases()) {
    for (LookupScheme scheme : kLookupSchemes) {
      names.push_back(case_name(scheme, c));
    }
  }
  return names;
}

Result<std::vector<LookupBenchResult>> run_lookup_bench(
    const LookupBenchOptions& options,
    const std::function<void(const LookupBenchResult&)>& on_row) {
  if (options.rounds == 0 || !(options.min_seconds > 0)) {
    return make_error(Errc::invalid_argument,
                      "lookup bench: needs at least one round of some time");
  }
  Result<cli::NameFilter> pattern = cli::NameFilter::compile(options.filter);
  if (!pattern) {
    return std::move(pattern).error();
  }
  Fixtures fixtures;
  std::vector<LookupBenchResult> rows;
  for (const Case& c : all_cases()) {
    auto selected = [&](LookupScheme scheme) { return pattern->matches(case_name(scheme, c)); };
    if (std::none_of(kLookupSchemes.begin(), kLookupSchemes.end(), selected)) {
      continue;
    }
    Result<const LookupFixture*> fixture = fixtures.get(c.pools);
    if (!fixture) {
      return make_error(fixture.error().code(), "case {}: {}", case_name(LookupScheme::rcu, c),
                        fixture.error().message());
    }
    const std::vector<Timed> timed = time_case(**fixture, c, options);
    const double linear = ns_of(timed, LookupScheme::linear);
    const double rwlock = ns_of(timed, LookupScheme::rwlock);
    for (const Timed& t : timed) {
      if (!selected(t.scheme)) {
        continue;
      }
      LookupBenchResult row{case_name(t.scheme, c),
                            std::string(lookup_scheme_name(t.scheme)),
                            c.pools,
                            c.threads,
                            (*fixture)->misses(),
                            median(t.ns),
                            median(t.cpu_ns),
                            linear,
                            0,
                            rwlock,
                            0};
      row.ratio = linear > 0 ? row.ns_per_op / linear : 0;
      row.rwlock_ratio = rwlock > 0 ? row.ns_per_op / rwlock : 0;
      if (on_row) {
        on_row(row);
      }
      rows.push_back(std::move(row));
    }
  }
  if (rows.empty()) {
    return make_error(Errc::invalid_argument, "filter '{}' matches no lookup case", options.filter);
  }
  return rows;
}

}  // namespace swiotlb::bench
