// Google Benchmark cases for lookup by address: finding the pool that holds
// a bounce address with 1, 16 and 256 pools, on 1 and 2 threads, by the
// library's PoolTable (rcu: a binary search in an RCU read-side critical
// section), by the kernel's list walk in the same critical section
// (linear, the baseline) and by that walk under a reader lock (rwlock). The
// fixture is the one `swiotlb bench` times (tools/swiotlb/bench_lookup.h).
//
// Names: lookup/<scheme>/<pools>/t<threads>. Throughput is reported as
// items per second over wall time (all threads together); after the runs a
// table gives ns per lookup (1e9 / items per second) and the ratios against
// `linear` and `rwlock` in the same case.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../tools/swiotlb/bench_lookup.h"

namespace {

using swiotlb::PhysAddr;
using swiotlb::Result;
using swiotlb::bench::LookupFixture;
using swiotlb::bench::LookupScheme;

struct CaseInfo {
  LookupScheme scheme = LookupScheme::rcu;
  std::uint32_t pools = 1;
  std::uint32_t threads = 1;
};

std::string case_name(const CaseInfo& c) {
  return fmt::format("lookup/{}/{}/t{}", swiotlb::bench::lookup_scheme_name(c.scheme), c.pools,
                     c.threads);
}

// One fixture per pool count, kept for the whole run; only thread 0 of a
// benchmark builds one, before the loop's start barrier publishes it to the
// others.
const LookupFixture* fixture_for(std::uint32_t pools) {
  static std::mutex lock;
  static std::map<std::uint32_t, std::unique_ptr<LookupFixture>> fixtures;
  std::lock_guard guard(lock);
  auto found = fixtures.find(pools);
  if (found == fixtures.end()) {
    Result<std::unique_ptr<LookupFixture>> made = LookupFixture::create(pools);
    if (!made) {
      return nullptr;
    }
    found = fixtures.emplace(pools, std::move(*made)).first;
  }
  return found->second.get();
}

template <LookupScheme Scheme>
void lookup(benchmark::State& state, const CaseInfo& c) {
  static const LookupFixture* shared = nullptr;  // set by thread 0 before the start barrier
  if (state.thread_index() == 0) {
    shared = fixture_for(c.pools);
  }
  // A thread's first read-side critical section registers it with
  // liburcu-bp (a global lock, perhaps a mapping): done here, untimed.
  { const swiotlb::PoolTable::ReadGuard warm; }
  const LookupFixture* fixture = nullptr;
  // Each thread starts at its own place in the addresses.
  std::uint64_t next = static_cast<std::uint64_t>(state.thread_index()) *
                       (swiotlb::bench::kLookupAddresses / c.threads);
  std::int64_t hits = 0;
  for (auto _ : state) {
    if (fixture == nullptr) {
      fixture = shared;
      if (fixture == nullptr) {
        state.SkipWithError("cannot build the fixture");
        break;
      }
    }
    const PhysAddr addr = fixture->addresses()[next++ & (swiotlb::bench::kLookupAddresses - 1)];
    const bool hit = fixture->found<Scheme>(addr);
    benchmark::DoNotOptimize(hit);
    hits += hit ? 1 : 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["hits"] = benchmark::Counter(
      state.iterations() > 0 ? static_cast<double>(hits) / static_cast<double>(state.iterations())
                             : 0,
      benchmark::Counter::kAvgThreads);
}

std::map<std::string, CaseInfo>& registered() {
  static std::map<std::string, CaseInfo> cases;
  return cases;
}

void register_benchmarks() {
  for (std::uint32_t threads : swiotlb::bench::kLookupThreads) {
    for (std::uint32_t pools : swiotlb::bench::kLookupPoolCounts) {
      for (LookupScheme scheme : swiotlb::bench::kLookupSchemes) {
        const CaseInfo c{scheme, pools, threads};
        const std::string name = case_name(c);
        registered().emplace(name, c);
        auto run = [c](benchmark::State& state) {
          switch (c.scheme) {
            case LookupScheme::rcu:
              lookup<LookupScheme::rcu>(state, c);
              break;
            case LookupScheme::linear:
              lookup<LookupScheme::linear>(state, c);
              break;
            case LookupScheme::rwlock:
              lookup<LookupScheme::rwlock>(state, c);
              break;
          }
        };
        benchmark::RegisterBenchmark(name.c_str(), run)
            ->Threads(static_cast<int>(threads))
            ->UseRealTime();
      }
    }
  }
}

// The console output, then a table of ns per lookup and the ratios against
// `linear` and `rwlock` in the same case.
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
      if (info != registered().end() && rate->second.value > 0) {
        ns_per_op_[info->first] = 1e9 / rate->second.value;
      }
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    fmt::print("\n{:<7} {:>5} {:>7}  {:>8}  {:>10}  {:>8}  {:>10}  {:>8}\n", "scheme", "pools",
               "threads", "ns/op", "linear ns", "speedup", "rwlock ns", "speedup");
    for (const auto& [name, c] : registered()) {
      auto own = ns_per_op_.find(name);
      CaseInfo linear = c;
      linear.scheme = LookupScheme::linear;
      CaseInfo rwlock = c;
      rwlock.scheme = LookupScheme::rwlock;
      auto base = ns_per_op_.find(case_name(linear));
      auto locked = ns_per_op_.find(case_name(rwlock));
      if (own == ns_per_op_.end() || base == ns_per_op_.end() || locked == ns_per_op_.end()) {
        continue;
      }
      fmt::print("{:<7} {:>5} {:>7}  {:>8.1f}  {:>10.1f}  {:>7.2f}x  {:>10.1f}  {:>7.2f}x\n",
                 swiotlb::bench::lookup_scheme_name(c.scheme), c.pools, c.threads, own->second,
                 base->second, base->second / own->second, locked->second,
                 locked->second / own->second);
    }
  }

 private:
  std::map<std::string, double> ns_per_op_;
};

}  // namespace

int main(int argc, char** argv) {
  // As in slot_search_bench.cc: start a thread now, so that the one-thread
  // cases pay for locks what a library user with threads pays.
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
