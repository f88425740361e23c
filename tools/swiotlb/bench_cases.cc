// The table of `swiotlb bench` cases, and how one case is timed.
//
// Timing: each loop is first calibrated on its own, its iteration count
// grown until one pass lasts at least min_seconds; the last calibration pass
// doubles as the warm-up (caches, the pool's pages, its search cursor having
// gone round). Then `rounds` rounds each time the run loop and then the
// baseline loop with those counts, and the median round of each is kept. A
// burst of noise on a shared machine spoils one round of one loop, which the
// median drops, rather than one whole side of the ratio. Each round reads
// the wall clock and the process's CPU clock (bench_clock.h); the medians
// of both are reported.
#include "bench_cases.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "bench_clock.h"
#include "swiotlb/iova/iova_domain.h"

namespace swiotlb::bench {
namespace {

// How much a calibration pass may grow the iteration count at once, and the
// margin it aims above min_seconds so that rounds do not fall short of it.

struct Timed {
  std::uint64_t iterations = 0;
  double seconds = 0;
  double cpu_seconds = 0;
  double ns_per_op() const { return seconds * 1e9 / static_cast<double>(iterations); }
  double cpu_ns_per_op() const { return cpu_seconds * 1e9 / static_cast<double>(iterations); }
};

Result<Timed> time_loop(const Loop& loop, std::uint64_t iterations) {
  const Stopwatch watch;
  if (Status ok = loop(iterations); !ok) {
    return ok.error();
  }
  const Elapsed took = watch.elapsed();
  return Timed{iterations, took.wall, took.cpu};
}

// The iteration count that makes one pass of `loop` last min_seconds.
Result<std::uint64_t> calibrate(const Loop& loop, double min_seconds) {
  std::uint64_t iterations = 1;
  for (;;) {
    Result<Timed> pass = time_loop(loop, iterations);
    if (!pass) {
      return std::move(pass).error();
    }
    if (pass->seconds >= min_seconds) {
      return iterations;
    }
    iterations = next_iterations(iterations, pass->seconds, min_seconds);
  }
}

// A loop of one fixture operation. The fixture is shared by the run and
// baseline loops, and lives as long as the longer-lived of them.
template <class Op>
Loop repeat(Op op) {
  return [op](std::uint64_t iterations) -> Status {
    for (std::uint64_t i = 0; i < iterations; ++i) {
      if (Status ok = op(); !ok) {
        return ok;
      }
    }
    return {};
  };
}

// The baseline of the copy cases: the fixture's memcpy (there and back
// for a read) alone.
Loop memcpy_loop(const std::shared_ptr<MapUnmapFixture>& fixture) {
  return repeat([fixture] {
    fixture->copy();
    return Status::ok();
  });
}

Result<CaseBody> prepare_map_unmap(const std::string& policy, std::uint64_t bytes,
                                   const MapUnmapSetup& setup) {
  Result<std::unique_ptr<MapUnmapFixture>> made = MapUnmapFixture::create(policy, bytes, setup);
  if (!made) {
    return std::move(made).error();
  }
  std::shared_ptr<MapUnmapFixture> fixture = std::move(*made);
  CaseBody body;
  body.run = repeat([fixture] { return fixture->map_unmap(); });
  body.baseline = memcpy_loop(fixture);
  return body;
}

// map_single + unmap_single to_device on a forced-bounce pool, against a
// memcpy of the same bytes from the same source: `map_unmap` with the
// device's DMA debug checks off (production), `map_unmap_checked` with them
// on, `map_unmap_cold` (checks off) with sources and the baseline's
// destinations rotating over kColdSpan; `map_unmap_read` from_device
// (checks off), copied in at map and back at unmap, against a memcpy there
// and back. The bounce buffers are wherever the pool puts them, which is
// the policy's to choose.
BenchCase map_unmap_case(std::string_view kind, std::string_view policy, std::uint64_t bytes) {
  MapUnmapSetup setup;
  setup.debug = kind == "map_unmap_checked" ? DmaDebugMode::on : DmaDebugMode::off;
  setup.span = kind == "map_unmap_cold" ? kColdSpan : 0;
  setup.dir = kind == "map_unmap_read" ? Direction::from_device : Direction::to_device;
  BenchCase c;
  c.name = fmt::format("{}/{}/{}", kind, policy, bytes);
  c.bytes = bytes;
  c.policy = std::string(policy);
  c.copy = true;
  c.baseline = setup.span != 0                       ? "memcpy, rotating"
               : setup.dir == Direction::from_device ? "memcpy there and back"
                                                     : "memcpy";
  c.prepare = [policy = c.policy, bytes, setup] { return prepare_map_unmap(policy, bytes, setup); };
  return c;
}

// The bounce layer's copy (bounce_copy) against memcpy of the same bytes,
// between the same buffers: how much of a map_unmap row's ratio is its copy
// rather than its mapping.
BenchCase bounce_copy_case(std::uint64_t bytes) {
  BenchCase c;
  c.name = fmt::format("bounce_copy/{}", bytes);
  c.bytes = bytes;
  c.copy = true;
  c.prepare = [bytes]() -> Result<CaseBody> {
    Result<std::unique_ptr<MapUnmapFixture>> made = MapUnmapFixture::create("fast", bytes);
    if (!made) {
      return std::move(made).error();
    }
    std::shared_ptr<MapUnmapFixture> fixture = std::move(*made);
    CaseBody body;
    body.run = repeat([fixture] {
      fixture->bounce_copy_only();
      return Status::ok();
    });
    body.baseline = memcpy_loop(fixture);
    return body;
  };
  return c;
}

// Direct mappings (no bounce, nothing copied) with the DMA debug checks on,
// against the same with them off: what the checks cost where they do work,
// since a bounced mapping is checked by its pool's record either way.
BenchCase direct_checked_case(std::uint64_t bytes) {
  BenchCase c;
  c.name = fmt::format("dma_debug/direct/{}", bytes);
  c.bytes = bytes;
  c.policy = "fast";
  c.baseline = "checks off";
  c.prepare = [bytes]() -> Result<CaseBody> {
    Result<std::unique_ptr<MapUnmapFixture>> checked =
        MapUnmapFixture::create("fast", bytes, {DmaDebugMode::on, false, 0});
    Result<std::unique_ptr<MapUnmapFixture>> unchecked =
        MapUnmapFixture::create("fast", bytes, {DmaDebugMode::off, false, 0});
    if (!checked || !unchecked) {
      return checked ? std::move(unchecked).error() : std::move(checked).error();
    }
    std::shared_ptr<MapUnmapFixture> on = std::move(*checked);
    std::shared_ptr<MapUnmapFixture> off = std::move(*unchecked);
    CaseBody body;
    body.run = repeat([on] { return on->map_unmap(); });
    body.baseline = repeat([off] { return off->map_unmap(); });
    return body;
  };
  return c;
}

Result<CaseResult> time_case(const BenchCase& bench_case, const CaseBody& body,
                             const TimingOptions& options) {
  Result<std::uint64_t> run_iterations = calibrate(body.run, options.min_seconds);
  if (!run_iterations) {
    return std::move(run_iterations).error();
  }
  Result<std::uint64_t> baseline_iterations = calibrate(body.baseline, options.min_seconds);
  if (!baseline_iterations) {
    return std::move(baseline_iterations).error();
  }
  std::vector<double> run_ns;
  std::vector<double> run_cpu_ns;
  std::vector<double> baseline_ns;
  std::vector<double> baseline_cpu_ns;
  for (std::uint32_t round = 0; round < options.rounds; ++round) {
    Result<Timed> run = time_loop(body.run, *run_iterations);
    if (!run) {
      return std::move(run).error();
    }
    Result<Timed> baseline = time_loop(body.baseline, *baseline_iterations);
    if (!baseline) {
      return std::move(baseline).error();
    }
    run_ns.push_back(run->ns_per_op());
    run_cpu_ns.push_back(run->cpu_ns_per_op());
    baseline_ns.push_back(baseline->ns_per_op());
    baseline_cpu_ns.push_back(baseline->cpu_ns_per_op());
  }
  CaseResult result{bench_case.name,   bench_case.bytes, bench_case.threads,
                    bench_case.policy, bench_case.copy,  bench_case.baseline};
  result.ns_per_op = median(run_ns);
  result.cpu_ns_per_op = median(run_cpu_ns);
  result.baseline_ns_per_op = median(baseline_ns);
  result.baseline_cpu_ns_per_op = median(baseline_cpu_ns);
  return result;
}

// IOVA allocation: one alloc + free of `granules` on a domain that already
// holds 1 M live IOVAs of that size, through the magazines (what the DMA
// layer uses), against the tree alone on a twin domain as the baseline.
// `iova_alloc_free` runs both domains in production mode (no record of
// handed-out IOVAs), `iova_alloc_free_checked` both in checked mode.
constexpr std::uint64_t kLiveIovas = std::uint64_t{1} << 20;
constexpr std::uint64_t kIovaLimitPfn = (std::uint64_t{1} << 36) - 1;  // a 48-bit device

Result<std::shared_ptr<iova::IovaDomain>> busy_iova_domain(std::uint64_t granules,
                                                           iova::IovaChecks checks) {
  Result<std::unique_ptr<iova::IovaDomain>> domain = iova::IovaDomain::create(4096, 1, 1, checks);
  if (!domain) {
    return std::move(domain).error();
  }
  for (std::uint64_t i = 0; i < kLiveIovas; ++i) {
    if (Result<std::uint64_t> pfn = (*domain)->alloc_fast(0, granules, kIovaLimitPfn, false);
        !pfn) {
      return std::move(pfn).error();
    }
  }
  return std::shared_ptr<iova::IovaDomain>(std::move(*domain));
}

BenchCase iova_case(std::uint64_t granules, iova::IovaChecks checks) {
  BenchCase c;
  c.name = fmt::format(
      "{}/{}", checks == iova::IovaChecks::on ? "iova_alloc_free_checked" : "iova_alloc_free",
      granules);
  c.bytes = granules * 4096;
  c.policy = "magazines";
  c.baseline = "tree";
  c.prepare = [granules, checks]() -> Result<CaseBody> {
    Result<std::shared_ptr<iova::IovaDomain>> fast = busy_iova_domain(granules, checks);
    Result<std::shared_ptr<iova::IovaDomain>> tree = busy_iova_domain(granules, checks);
    if (!fast || !tree) {
      return fast ? std::move(tree).error() : std::move(fast).error();
    }
    CaseBody body;
    body.run = [domain = *fast, granules](std::uint64_t n) -> Status {
      for (std::uint64_t i = 0; i < n; ++i) {
        Result<std::uint64_t> pfn = domain->alloc_fast(0, granules, kIovaLimitPfn, true);
        if (!pfn) {
          return std::move(pfn).error();
        }
        if (Status freed = domain->free_fast(0, *pfn, granules); !freed) {
          return freed;
        }
      }
      return {};
    };
    body.baseline = [domain = *tree, granules](std::uint64_t n) -> Status {
      for (std::uint64_t i = 0; i < n; ++i) {
        Result<iova::IovaRange> range = domain->alloc(granules, kIovaLimitPfn, true);
        if (!range) {
          return std::move(range).error();
        }
        if (Status freed = domain->free(range->pfn_lo); !freed) {
          return freed;
        }
      }
      return {};
    };
    return body;
  };
  return c;
}

}  // namespace

std::vector<BenchCase> bench_cases() {
  std::vector<BenchCase> cases;
  for (std::string_view policy : kCopyPolicies) {
    for (std::uint64_t bytes : kCopySizes) {
      cases.push_back(map_unmap_case("map_unmap", policy, bytes));
    }
  }
  for (std::uint64_t bytes : kCopySizes) {
    cases.push_back(map_unmap_case("map_unmap_checked", "fast", bytes));
  }
  for (std::uint64_t bytes : kColdCopySizes) {
    cases.push_back(map_unmap_case("map_unmap_read", "fast", bytes));
  }
  for (std::string_view policy : {"fast", "linux"}) {
    for (std::uint64_t bytes : kColdCopySizes) {
      cases.push_back(map_unmap_case("map_unmap_cold", policy, bytes));
    }
  }
  for (std::uint64_t bytes : kCopySizes) {
    cases.push_back(bounce_copy_case(bytes));
  }
  cases.push_back(direct_checked_case(4096));
  for (iova::IovaChecks checks : {iova::IovaChecks::off, iova::IovaChecks::on}) {
    for (std::uint64_t granules : {std::uint64_t{1}, std::uint64_t{8}, std::uint64_t{32}}) {
      cases.push_back(iova_case(granules, checks));
    }
  }
  return cases;
}

Result<CaseResult> run_case(const BenchCase& bench_case, const TimingOptions& options) {
  if (options.rounds == 0 || !(options.min_seconds > 0)) {
    return make_error(Errc::invalid_argument, "case {}: needs at least one round of some time",
                      bench_case.name);
  }
  Result<CaseBody> body = bench_case.prepare();
  if (!body) {
    return make_error(body.error().code(), "case {}: {}", bench_case.name, body.error().message());
  }
  Result<CaseResult> result = time_case(bench_case, *body, options);
  if (!result) {
    return make_error(result.error().code(), "case {}: {}", bench_case.name,
                      result.error().message());
  }
  return result;
}

}  // namespace swiotlb::bench
