// Google Benchmark cases for the slot search alone: SlotPool::map and its
// unmap, no data copied, on a 64 MiB pool fragmented to 0%, 50% and 90%
// occupancy, for every slot policy, 4 KiB and 64 KiB requests, one thread
// on a one-area pool and two threads on a two-area pool (each thread in an
// area of its own). The fixture is the one `swiotlb bench` times
// (tools/swiotlb/bench_search.h).
//
// Names: search/<policy>/<bytes>/occ<percent>/t<threads>. Throughput is
// reported as items per second over wall time (all threads together); after
// the runs a table gives ns per map+unmap (1e9 / items per second) and the
// ratio against the `linux` policy in the same case.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "../tools/swiotlb/bench_search.h"

namespace {

using swiotlb::Result;
using swiotlb::bench::SearchFixture;

struct CaseInfo {
  std::string policy;
  std::uint64_t bytes = 0;
  unsigned occupancy = 0;
  std::uint32_t threads = 1;
};

std::string case_name(const CaseInfo& c) {
  return fmt::format("search/{}/{}/occ{}/t{}", c.policy, c.bytes, c.occupancy, c.threads);
}

// Fixtures are expensive to fragment and are kept for the whole run, keyed
// by what shapes them; only thread 0 of a benchmark builds one, before the
// loop's start barrier publishes it to the others.
SearchFixture* fixture_for(const CaseInfo& c) {
  static std::mutex lock;
  static std::map<std::tuple<std::string, std::uint32_t, unsigned>, std::unique_ptr<SearchFixture>>
      fixtures;
  std::lock_guard guard(lock);
  auto key = std::make_tuple(c.policy, c.threads, c.occupancy);
  auto found = fixtures.find(key);
  if (found == fixtures.end()) {
    Result<std::unique_ptr<SearchFixture>> made =
        SearchFixture::create(c.policy, c.threads, c.occupancy);
    if (!made) {
      return nullptr;
    }
    found = fixtures.emplace(key, std::move(*made)).first;
  }
  return found->second.get();
}

void map_unmap(benchmark::State& state, const CaseInfo& c) {
  static SearchFixture* shared = nullptr;  // set by thread 0 before the start barrier
  if (state.thread_index() == 0) {
    shared = fixture_for(c);
  }
  SearchFixture* fixture = nullptr;
  std::int64_t found = 0;
  for (auto _ : state) {
    if (fixture == nullptr) {
      fixture = shared;
      if (fixture == nullptr) {
        state.SkipWithError("cannot build the fixture");
        break;
      }
    }
    Result<bool> ok = fixture->map_unmap(c.bytes, static_cast<unsigned>(state.thread_index()));
    if (!ok) {
      state.SkipWithError(ok.error().message().c_str());
      break;
    }
    found += *ok ? 1 : 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  // Averaged over the threads, each of which reports its own share.
  state.counters["found"] = benchmark::Counter(
      state.iterations() > 0 ? static_cast<double>(found) / static_cast<double>(state.iterations())
                             : 0,
      benchmark::Counter::kAvgThreads);
  if (fixture != nullptr) {
    state.counters["occupancy"] =
        benchmark::Counter(fixture->occupancy(), benchmark::Counter::kAvgThreads);
  }
}

std::map<std::string, CaseInfo>& registered() {
  static std::map<std::string, CaseInfo> cases;
  return cases;
}

void register_benchmarks() {
  for (std::uint32_t threads : swiotlb::bench::kSearchThreads) {
    for (unsigned occupancy : swiotlb::bench::kSearchOccupancies) {
      for (std::uint64_t bytes : swiotlb::bench::kSearchSizes) {
        for (std::string_view policy : swiotlb::bench::kSearchPolicies) {
          const CaseInfo c{std::string(policy), bytes, occupancy, threads};
          const std::string name = case_name(c);
          registered().emplace(name, c);
          benchmark::RegisterBenchmark(name.c_str(),
                                       [c](benchmark::State& state) { map_unmap(state, c); })
              ->Threads(static_cast<int>(threads))
              ->UseRealTime();
        }
      }
    }
  }
}

// The console output, then a table of ns per operation and the ratio
// against `linux` in the same case.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      auto rate = run.counters.find("items_per_second");
      if (run.run_type != Run::RT_Iteration || run.error_occurred || rate == run.counters.end()) {
        continue;
      }
      auto info = registered().find(run.run_name.function_name);
      auto found = run.counters.find("found");
      if (info != registered().end() && rate->second.value > 0) {
        ns_per_op_[info->first] = 1e9 / rate->second.value;
        found_[info->first] = found != run.counters.end() ? found->second.value : 0;
      }
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    fmt::print("\n{:<10} {:>6} {:>4} {:>7}  {:>6}  {:>10}  {:>10}  {:>8}\n", "policy", "bytes",
               "occ%", "threads", "found", "ns/op", "linux ns", "speedup");
    for (const auto& [name, c] : registered()) {
      auto own = ns_per_op_.find(name);
      CaseInfo baseline = c;
      baseline.policy = "linux";
      auto base = ns_per_op_.find(case_name(baseline));
      if (own == ns_per_op_.end() || base == ns_per_op_.end()) {
        continue;
      }
      fmt::print("{:<10} {:>6} {:>4} {:>7}  {:>5.0f}%  {:>10.1f}  {:>10.1f}  {:>7.2f}x\n", c.policy,
                 c.bytes, c.occupancy, c.threads, 100 * found_[name], own->second, base->second,
                 base->second / own->second);
    }
  }

 private:
  std::map<std::string, double> ns_per_op_;
  std::map<std::string, double> found_;
};

}  // namespace

int main(int argc, char** argv) {
  // glibc takes locks with plain instructions until a process starts its
  // first thread, and with atomic ones from then on; start one now, so that
  // the one-thread cases pay what a library user with threads pays, as the
  // two-thread cases do.
  std::thread([] {}).join();
  register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
