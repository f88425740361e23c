// The slot search alone, timed: SlotPool::map and its unmap with no data
// copied, on the kernel's default pool (64 MiB, 32768 slots), for each slot
// policy, after the pool was fragmented to a given occupancy. `swiotlb
// bench` runs these through run_search_bench(); the Google Benchmark binary
// (bench/slot_search_bench.cc) times the same fixture.
//
// The fragmentation is a seeded random mix of maps and unmaps of 512 B to
// 128 KiB (sizes spread evenly over the octaves, as DMA traffic spans
// packets, pages and storage blocks): maps until the occupancy is reached,
// then rounds of one unmap of a random live mapping followed by maps until
// the occupancy is back. Each policy fragments its own pool from the same
// seed, so each meets the state its own choices lead to.
//
// A timed operation maps `bytes` (a page-aligned original, no
// min_align_mask) from the area of its thread and unmaps it at once. A map
// that finds no run is timed too (that is the search a nearly full pool
// makes its callers wait for) and counted: each row says which fraction of
// the maps found a run. Thread t (one or several, always worker threads,
// never the caller: see run_released in bench_clock.h) runs on CPU t, and
// the pool has an area per thread (search_areas()), so each thread searches
// an area of its own, as each CPU does on a kernel with an area per CPU; ns
// per operation is the wall time divided by the operations of all threads
// (the inverse of the throughput). The baseline of every row is the `linux`
// policy in the same case, timed in the same run, round for round.
//
// Thread safety: a SearchFixture may be used by many threads at once (the
// pool is); run_search_bench() is for one thread.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/core/error.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb::bench {

inline constexpr std::array<std::string_view, 3> kSearchPolicies{"linux", "linux-6.1", "fast"};
inline constexpr std::array<std::uint64_t, 2> kSearchSizes{4096, 64 * 1024};
inline constexpr std::array<unsigned, 3> kSearchOccupancies{0, 50, 90};  // percent of the slots
// The thread counts every machine runs; search_thread_counts() adds the
// machine's own.
inline constexpr std::array<std::uint32_t, 2> kSearchThreads{1, 2};
inline constexpr std::uint64_t kSearchPoolSlots = kDefaultSlotCount;
inline constexpr std::uint64_t kFragmentSeed = 0x5107;

// kSearchThreads and then std::thread::hardware_concurrency() when that is
// larger: a pool shared by every CPU is where the areas earn their keep.
inline std::vector<std::uint32_t> search_thread_counts() {
  std::vector<std::uint32_t> counts(kSearchThreads.begin(), kSearchThreads.end());
  const std::uint32_t machine = std::thread::hardware_concurrency();
  if (machine > counts.back()) {
    counts.push_back(machine);
  }
  return counts;
}

// The areas of the pool that `threads` threads search: one per thread,
// rounded up to the power of two a pool needs (as the kernel rounds its
// area count), and no more than the pool has segments, past which threads
// share areas as CPUs then do in the kernel.
inline std::uint32_t search_areas(std::uint32_t threads) {
  const std::uint64_t areas = round_up_power_of_two(std::max<std::uint32_t>(threads, 1));
  return static_cast<std::uint32_t>(std::min(areas, kSearchPoolSlots / kSegmentSlots));
}

// A pool of kSearchPoolSlots slots with `areas` areas, fragmented to
// `occupancy_percent`, and the one request the timed loop repeats.
class SearchFixture {
 public:
  // Fails for an unknown policy or an impossible geometry.
  static Result<std::unique_ptr<SearchFixture>> create(std::string_view policy, std::uint32_t areas,
                                                       unsigned occupancy_percent,
                                                       std::uint64_t seed = kFragmentSeed) {
    Result<std::shared_ptr<const SlotPolicy>> made_policy = make_slot_policy(policy);
    if (!made_policy) {
      return std::move(made_policy).error();
    }
    Result<std::unique_ptr<SlotPool>> pool =
        SlotPool::create({PhysAddr(kPoolStart), kSearchPoolSlots, areas}, *made_policy);
    if (!pool) {
      return std::move(pool).error();
    }
    auto fixture = std::unique_ptr<SearchFixture>(new SearchFixture(std::move(*pool)));
    fixture->fragment(occupancy_percent, seed);
    return fixture;
  }

  // Maps `bytes` from the area of `cpu` and unmaps it: true when the map
  // found a run, false when the pool had none. Fails with any other error.
  Result<bool> map_unmap(std::uint64_t bytes, unsigned cpu) {
    SlotRequest request = base_request();
    request.mapping_size = bytes;
    request.cpu = cpu;
    Result<SlotMapping> mapping = pool_->map(request);
    if (!mapping) {
      if (mapping.error().code() == Errc::pool_full) {
        return false;
      }
      return std::move(mapping).error();
    }
    Result<MappingInfo> info = pool_->unmap(mapping->tlb_addr, 0);
    if (!info) {
      return std::move(info).error();
    }
    return true;
  }

  const SlotPool& pool() const { return *pool_; }
  double occupancy() const {
    return static_cast<double>(pool_->used()) / static_cast<double>(pool_->slot_count());
  }

 private:
  static constexpr std::uint64_t kPoolStart = 0x80000000;
  static constexpr std::uint64_t kOrig = 0x200000000;
  // Rounds of unmap-then-refill per live mapping once the occupancy is
  // reached: enough for the layout to forget the order of the first fill.
  static constexpr std::size_t kChurnPerMapping = 4;

  explicit SearchFixture(std::unique_ptr<SlotPool> pool) : pool_(std::move(pool)) {}

  SlotRequest base_request() const {
    SlotRequest request;
    request.orig = PhysAddr(kOrig);
    request.pool_dma_start = DmaAddr(kPoolStart);
    request.dir = Direction::to_device;
    return request;
  }

  // 512 B to 128 KiB, each octave as likely as the next.
  static std::uint64_t random_size(std::mt19937_64& random) {
    const unsigned octave = std::uniform_int_distribution<unsigned>(9, 16)(random);
    const std::uint64_t low = std::uint64_t{1} << octave;
    return std::uniform_int_distribution<std::uint64_t>(low, 2 * low - 1)(random);
  }

  bool map_random(std::mt19937_64& random, std::vector<PhysAddr>& live) {
    SlotRequest request = base_request();
    request.mapping_size = random_size(random);
    request.orig = PhysAddr(kOrig + (random() % (1u << 20)) * kPageSize);
    request.cpu = static_cast<unsigned>(random() % pool_->area_count());
    Result<SlotMapping> mapping = pool_->map(request);
    if (mapping) {
      live.push_back(mapping->tlb_addr);
    }
    return mapping.has_value();
  }

  void fragment(unsigned occupancy_percent, std::uint64_t seed) {
    const std::uint64_t target = pool_->slot_count() * occupancy_percent / 100;
    std::mt19937_64 random(seed);
    std::vector<PhysAddr> live;
    auto refill = [&] {
      while (pool_->used() < target && map_random(random, live)) {
      }
    };
    refill();
    const std::size_t rounds = live.size() * kChurnPerMapping;
    for (std::size_t i = 0; i < rounds && !live.empty(); ++i) {
      const std::size_t at = random() % live.size();
      (void)pool_->unmap(live[at], 0);
      live[at] = live.back();
      live.pop_back();
      refill();
    }
  }

  std::unique_ptr<SlotPool> pool_;
};

struct SearchBenchResult {
  std::string name;  // e.g. "search/fast/65536/occ90/t1"
  std::string policy;
  std::uint64_t bytes = 0;  // bytes one map asks for
  std::uint32_t threads = 1;
  double occupancy = 0;           // fraction of the slots in use when timing began
  double found = 0;               // fraction of the timed maps that found a run
  double ns_per_op = 0;           // one map + unmap (several threads: wall time / all ops)
  double cpu_ns_per_op = 0;       // CPU time of all threads / all ops
  double baseline_ns_per_op = 0;  // the `linux` policy's, same case, same run
  double baseline_cpu_ns_per_op = 0;
  double ratio = 0;      // ns_per_op / baseline_ns_per_op (below 1: faster)
  double cpu_ratio = 0;  // the same from CPU times
};

struct SearchBenchOptions {
  double min_seconds = 0.05;  // the least time one round of one policy lasts
  std::uint32_t rounds = 5;   // rounds of every policy of a case, interleaved; medians kept
  std::string filter;         // a NameFilter pattern (cli_name_filter.h); empty: every case
};

// The case names, in the order run_search_bench() reports them.
std::vector<std::string> search_bench_names();

// Times every case the filter selects (the `linux` baseline of a case is
// timed even when the filter leaves its row out) and returns one row per
// case; `on_row`, when given, also gets each row as soon as it is known.
// Fails for an invalid filter, one that matches nothing, or an operation
// that fails (the error names the case).
Result<std::vector<SearchBenchResult>> run_search_bench(
    const SearchBenchOptions& options,
    const std::function<void(const SearchBenchResult&)>& on_row = nullptr);

}  // namespace swiotlb::bench
