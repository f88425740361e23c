// Google Benchmark cases for IOVA allocation: one alloc + free pair of 1, 8
// or 32 granules on a domain already holding 1 M live IOVAs of that size,
// through the magazines (alloc_fast/free_fast, what the kernel's DMA layer
// uses) and through the tree alone (alloc/free), the baseline the magazines
// are read against.
//
// Both run in production mode (IovaChecks::off: no record of handed-out
// IOVAs), as a kernel's DMA layer runs.
//
// Names: BM_IovaAllocFree/<magazines|tree>/<granules>. The 1 M live IOVAs
// are made once per case, outside the timed loop.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <utility>

#include "swiotlb/iova/iova_domain.h"

namespace {

using swiotlb::Result;
using swiotlb::iova::IovaChecks;
using swiotlb::iova::IovaDomain;
using swiotlb::iova::IovaRange;

constexpr std::uint64_t kLiveIovas = 1 << 20;
constexpr std::uint64_t kLimitPfn = (std::uint64_t{1} << 36) - 1;  // a 48-bit device

enum class Mode { magazines, tree };

// The domain of the last case, kept while the benchmark library calls the
// same case again with more iterations.
struct Prepared {
  Mode mode;
  std::uint64_t granules;
  std::unique_ptr<IovaDomain> domain;
};

IovaDomain* prepared_domain(benchmark::State& state, Mode mode, std::uint64_t granules) {
  static Prepared prepared{Mode::tree, 0, nullptr};
  if (prepared.domain && prepared.mode == mode && prepared.granules == granules) {
    return prepared.domain.get();
  }
  prepared.domain.reset();
  Result<std::unique_ptr<IovaDomain>> domain = IovaDomain::create(4096, 1, 1, IovaChecks::off);
  if (!domain) {
    state.SkipWithError(domain.error().message().c_str());
    return nullptr;
  }
  for (std::uint64_t i = 0; i < kLiveIovas; ++i) {
    if (!(*domain)->alloc_fast(0, granules, kLimitPfn, false)) {
      state.SkipWithError("could not make the live IOVAs");
      return nullptr;
    }
  }
  prepared = {mode, granules, std::move(*domain)};
  return prepared.domain.get();
}

void alloc_free(benchmark::State& state, Mode mode) {
  const auto granules = static_cast<std::uint64_t>(state.range(0));
  IovaDomain* domain = prepared_domain(state, mode, granules);
  if (domain == nullptr) {
    return;
  }
  for (auto _ : state) {
    if (mode == Mode::magazines) {
      Result<std::uint64_t> pfn = domain->alloc_fast(0, granules, kLimitPfn, true);
      benchmark::DoNotOptimize(pfn);
      if (!pfn || !domain->free_fast(0, *pfn, granules)) {
        state.SkipWithError("alloc_fast/free_fast failed");
        break;
      }
    } else {
      Result<IovaRange> range = domain->alloc(granules, kLimitPfn, true);
      benchmark::DoNotOptimize(range);
      if (!range || !domain->free(range->pfn_lo)) {
        state.SkipWithError("alloc/free failed");
        break;
      }
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["live"] = static_cast<double>(domain->live_count());
}

void magazines(benchmark::State& state) {
  alloc_free(state, Mode::magazines);
}
void tree(benchmark::State& state) {
  alloc_free(state, Mode::tree);
}

BENCHMARK(magazines)->Name("BM_IovaAllocFree/magazines")->Arg(1)->Arg(8)->Arg(32);
BENCHMARK(tree)->Name("BM_IovaAllocFree/tree")->Arg(1)->Arg(8)->Arg(32);

}  // namespace

BENCHMARK_MAIN();
