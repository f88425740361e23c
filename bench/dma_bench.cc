// Google Benchmark cases for the DMA API's bounce path: map_single +
// unmap_single to_device with the copy into the bounce buffer, on the
// kernel's default pool with forced bouncing, once per kernel slot policy;
// and a plain memcpy of the same bytes from the same kind of source, the
// baseline they are read against. The fixture is the one `swiotlb bench`
// times (tools/swiotlb/bench_cases.h), so both tools measure the same thing,
// with the device's DMA debug checks off, as in production.
//
// Names: BM_MapUnmapToDevice/<policy>/<bytes> and BM_Memcpy/<bytes>.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>

#include "../tools/swiotlb/bench_cases.h"

namespace {

using swiotlb::Result;
using swiotlb::Status;
using swiotlb::bench::MapUnmapFixture;

// Builds the fixture, or marks the benchmark as failed and returns null.
std::unique_ptr<MapUnmapFixture> make_fixture(benchmark::State& state, const std::string& policy) {
  const auto bytes = static_cast<std::uint64_t>(state.range(0));
  Result<std::unique_ptr<MapUnmapFixture>> fixture = MapUnmapFixture::create(policy, bytes);
  if (!fixture) {
    state.SkipWithError(fixture.error().message().c_str());
    return nullptr;
  }
  return std::move(*fixture);
}

void count_bytes(benchmark::State& state) {
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

void map_unmap_to_device(benchmark::State& state, const std::string& policy) {
  std::unique_ptr<MapUnmapFixture> fixture = make_fixture(state, policy);
  if (!fixture) {
    return;
  }
  for (auto _ : state) {
    if (Status ok = fixture->map_unmap(); !ok) {
      state.SkipWithError(ok.error().message().c_str());
      break;
    }
  }
  count_bytes(state);
}

void memcpy_baseline(benchmark::State& state) {
  // Any policy: only the fixture's buffers are used.
  std::unique_ptr<MapUnmapFixture> fixture = make_fixture(state, "linux");
  if (!fixture) {
    return;
  }
  for (auto _ : state) {
    fixture->copy();
  }
  count_bytes(state);
}

void register_benchmarks() {
  for (std::string_view policy : swiotlb::bench::kCopyPolicies) {
    const std::string name = "BM_MapUnmapToDevice/" + std::string(policy);
    benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(
        name.c_str(), [policy = std::string(policy)](benchmark::State& state) {
          map_unmap_to_device(state, policy);
        });
    for (std::uint64_t bytes : swiotlb::bench::kCopySizes) {
      b->Arg(static_cast<std::int64_t>(bytes));
    }
  }
  benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark("BM_Memcpy", memcpy_baseline);
  for (std::uint64_t bytes : swiotlb::bench::kCopySizes) {
    b->Arg(static_cast<std::int64_t>(bytes));
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
