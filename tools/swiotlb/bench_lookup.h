// Lookup by address, timed: finding the pool that holds a bounce address
// (what unmap, sync and is_swiotlb_buffer do on every call), with 1, 16 and
// 256 pools. `swiotlb bench` runs these through run_lookup_bench(); the
// Google Benchmark binary (bench/pool_lookup_bench.cc) times the same
// fixture.
//
// Three schemes look up the same addresses in the same pools:
//  - rcu: what the library does. A PoolTable::ReadGuard (an RCU read-side
//    critical section) and PoolTable::find, a binary search of the pools by
//    address: O(log n), no lock, no write to shared memory. The guard is
//    always entered, as by an IoTlb whose pools come and go (growth or
//    transient pools on), the only kind that ever has 16 or 256 pools; an
//    IoTlb whose pools never change skips it (ReadGuard's `active`).
//  - linear: the kernel's scheme. swiotlb_find_pool() walks the list of
//    pools under rcu_read_lock(), newest first (list_add_rcu puts a new pool
//    at the head). Modelled as a std::vector<IoPool*> in that order, walked
//    under the same ReadGuard, so that only the search differs from rcu: the
//    baseline of every row, and what `ratio` compares against.
//  - rwlock: a linear walk under a std::shared_mutex held for reading, which
//    is what a user-space port without RCU would do. Every lookup writes the
//    lock's reader count, a cache line the threads then share. Each row also
//    carries its ratio against this scheme (see LookupBenchResult): `linear`
//    is the baseline because it isolates the search, which is what the
//    O(log n) claim is about; `rwlock` is there to show what the lock-free
//    read side is worth when threads look up at once.
//
// The pools are small (128 slots, 256 KiB each), each in an anonymous region
// of its own, as grown pools are; their addresses are wherever the system
// maps them. The addresses looked up are a seeded, pre-generated array: 90%
// at a random byte of a random pool, 10% in no pool (a buffer that was not
// bounced, which is what is_swiotlb_buffer mostly sees on a system that
// bounces little), drawn around the pools' span so that they fall between,
// below and above them. A miss is the linear walk's worst case (it visits
// every pool) and costs the binary search what a hit does.
//
// A timed operation is one critical section (or one reader lock) and one
// lookup. Thread t (always worker threads, as for the search cases) starts
// at its own place in the array; ns per operation is the wall time divided
// by the operations of all threads (the inverse of the throughput), so with
// 2 threads a scheme whose readers do not disturb each other halves it.
//
// Thread safety: a LookupFixture may be used by many threads at once (only
// read); run_lookup_bench() is for one thread.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "swiotlb/core/address.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/core/error.h"
#include "swiotlb/iotlb/io_pool.h"
#include "swiotlb/iotlb/pool_table.h"
#include "swiotlb/platform/region.h"
#include "swiotlb/pool/slot_policy.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb::bench {

enum class LookupScheme : std::uint8_t { rcu, linear, rwlock };

// In the order a case's rows are reported.
inline constexpr std::array<LookupScheme, 3> kLookupSchemes{LookupScheme::rcu, LookupScheme::linear,
                                                            LookupScheme::rwlock};
inline constexpr std::array<std::uint32_t, 3> kLookupPoolCounts{1, 16, 256};
inline constexpr std::array<std::uint32_t, 2> kLookupThreads{1, 2};
inline constexpr std::uint64_t kLookupPoolSlots = kSegmentSlots;
// A power of two, so that a thread's index wraps with a mask; 128 KiB of
// addresses, more than a branch predictor learns.
inline constexpr std::size_t kLookupAddresses = std::size_t{1} << 14;
inline constexpr unsigned kLookupMissPercent = 10;
inline constexpr std::uint64_t kLookupSeed = 0x100c;

inline constexpr std::string_view lookup_scheme_name(LookupScheme scheme) {
  switch (scheme) {
    case LookupScheme::rcu:
      return "rcu";
    case LookupScheme::linear:
      return "linear";
    case LookupScheme::rwlock:
      return "rwlock";
  }
  return "?";
}

// `pools` pools in a PoolTable and in a newest-first list, and the
// addresses the timed loops look up.
class LookupFixture {
 public:
  // Fails when a region or a pool cannot be made, or when the schemes
  // disagree on where an address is (a broken fixture, not a slow one).
  static Result<std::unique_ptr<LookupFixture>> create(std::uint32_t pools,
                                                       std::uint64_t seed = kLookupSeed) {
    if (pools == 0) {
      return make_error(Errc::invalid_argument, "lookup fixture: needs at least one pool");
    }
    Result<std::shared_ptr<const SlotPolicy>> policy = make_slot_policy("fast");
    if (!policy) {
      return std::move(policy).error();
    }
    auto fixture = std::unique_ptr<LookupFixture>(new LookupFixture());
    for (std::uint32_t i = 0; i < pools; ++i) {
      Result<std::unique_ptr<Region>> region =
          Region::anonymous(kLookupPoolSlots << kSlotShift, RegionPlacement::anywhere);
      if (!region) {
        return std::move(region).error();
      }
      Result<std::unique_ptr<SlotPool>> slots =
          SlotPool::create({(*region)->start(), kLookupPoolSlots, 1}, *policy);
      if (!slots) {
        return std::move(slots).error();
      }
      auto pool = std::make_unique<IoPool>();
      pool->name = "lookup-" + std::to_string(i);
      pool->kind = PoolKind::grown;
      pool->tier = 0;
      pool->start = (*slots)->start();
      pool->end = (*slots)->end();
      pool->memory.region = std::move(*region);
      pool->slots = std::move(*slots);
      IoPool* added = pool.get();
      if (Status inserted = fixture->table_.insert(std::move(pool)); !inserted) {
        return inserted.error();
      }
      fixture->newest_first_.insert(fixture->newest_first_.begin(), added);
    }
    fixture->generate(seed);
    if (Status agree = fixture->check(); !agree) {
      return agree.error();
    }
    return fixture;
  }

  LookupFixture(const LookupFixture&) = delete;
  LookupFixture& operator=(const LookupFixture&) = delete;

  // One operation: whether `addr` is in a pool, as `Scheme` finds it.
  template <LookupScheme Scheme>
  bool found(PhysAddr addr) const {
    if constexpr (Scheme == LookupScheme::rcu) {
      PoolTable::ReadGuard guard;
      return table_.find(addr) != nullptr;
    } else if constexpr (Scheme == LookupScheme::linear) {
      PoolTable::ReadGuard guard;
      return walk(addr) != nullptr;
    } else {
      std::shared_lock lock(list_lock_);
      return walk(addr) != nullptr;
    }
  }

  // `count` operations on the addresses from index `first` on (wrapping
  // round); returns how many were in a pool.
  std::uint64_t lookup(LookupScheme scheme, std::uint64_t first, std::uint64_t count) const {
    switch (scheme) {
      case LookupScheme::rcu:
        return repeat<LookupScheme::rcu>(first, count);
      case LookupScheme::linear:
        return repeat<LookupScheme::linear>(first, count);
      case LookupScheme::rwlock:
        return repeat<LookupScheme::rwlock>(first, count);
    }
    return 0;
  }

  std::span<const PhysAddr> addresses() const { return addresses_; }
  std::uint32_t pool_count() const { return static_cast<std::uint32_t>(newest_first_.size()); }
  // The fraction of the addresses that are in no pool.
  double misses() const {
    return static_cast<double>(misses_) / static_cast<double>(addresses_.size());
  }

 private:
  LookupFixture() = default;

  // The kernel's swiotlb_find_pool(): the first pool of the list that holds
  // the address.
  const IoPool* walk(PhysAddr addr) const {
    for (const IoPool* pool : newest_first_) {
      if (pool->contains(addr)) {
        return pool;
      }
    }
    return nullptr;
  }

  template <LookupScheme Scheme>
  std::uint64_t repeat(std::uint64_t first, std::uint64_t count) const {
    std::uint64_t hits = 0;
    for (std::uint64_t i = 0; i < count; ++i) {
      hits += found<Scheme>(addresses_[(first + i) & (kLookupAddresses - 1)]) ? 1u : 0u;
    }
    return hits;
  }

  bool in_any_pool(PhysAddr addr) const { return walk(addr) != nullptr; }

  void generate(std::uint64_t seed) {
    std::mt19937_64 random(seed);
    PhysAddr low = newest_first_.front()->start;
    PhysAddr high = newest_first_.front()->end;
    for (const IoPool* pool : newest_first_) {
      low = std::min(low, pool->start);
      high = std::max(high, pool->end);
    }
    // Misses come from the pools' span and as much again on either side
    // (clamped to the address space), so some fall below, some above and,
    // where the pools are not adjacent, some between them.
    const std::uint64_t span = high - low;
    const std::uint64_t from = low.value() > span ? low.value() - span : 0;
    const std::uint64_t to =
        ~std::uint64_t{0} - high.value() > span ? high.value() + span : ~std::uint64_t{0};
    addresses_.reserve(kLookupAddresses);
    for (std::size_t i = 0; i < kLookupAddresses; ++i) {
      if (random() % 100 < kLookupMissPercent) {
        PhysAddr miss;
        do {
          miss = PhysAddr(std::uniform_int_distribution<std::uint64_t>(from, to - 1)(random));
        } while (in_any_pool(miss));
        addresses_.push_back(miss);
        ++misses_;
        continue;
      }
      const IoPool* pool = newest_first_[random() % newest_first_.size()];
      addresses_.push_back(pool->start + random() % pool->bytes());
    }
  }

  // Every scheme finds every address where the others do.
  Status check() const {
    for (PhysAddr addr : addresses_) {
      const IoPool* by_list = walk(addr);
      const IoPool* by_table = nullptr;
      {
        PoolTable::ReadGuard guard;
        by_table = table_.find(addr);
      }
      if (by_list != by_table) {
        return make_error(Errc::invalid_argument,
                          "lookup fixture: {:#x} is in pool {} by the list, {} by the table",
                          addr.value(), by_list != nullptr ? by_list->name : "none",
                          by_table != nullptr ? by_table->name : "none");
      }
    }
    return {};
  }

  PoolTable table_{1};
  std::vector<IoPool*> newest_first_;  // the pools table_ owns, newest first
  // Never taken for writing: the rwlock scheme's readers only pay for it.
  mutable std::shared_mutex list_lock_;
  std::vector<PhysAddr> addresses_;
  std::size_t misses_ = 0;
};

struct LookupBenchResult {
  std::string name;  // e.g. "lookup/rcu/16/t1"
  std::string scheme;
  std::uint32_t pools = 0;
  std::uint32_t threads = 1;
  double misses = 0;              // fraction of the addresses looked up that are in no pool
  double ns_per_op = 0;           // one lookup (several threads: wall time / all ops)
  double cpu_ns_per_op = 0;       // CPU time of all threads / all ops
  double baseline_ns_per_op = 0;  // the `linear` scheme's, same case, same run
  double ratio = 0;               // ns_per_op / baseline_ns_per_op (below 1: faster)
  double rwlock_ns_per_op = 0;    // the `rwlock` scheme's, same case, same run
  double rwlock_ratio = 0;        // ns_per_op / rwlock_ns_per_op
};

struct LookupBenchOptions {
  double min_seconds = 0.05;  // the least time one round of one scheme lasts
  std::uint32_t rounds = 5;   // rounds of every scheme of a case, interleaved; medians kept
  std::string filter;         // a NameFilter pattern (cli_name_filter.h); empty: every case
};

// The case names, in the order run_lookup_bench() reports them.
std::vector<std::string> lookup_bench_names();

// Times every case the filter selects (both baselines of a case are timed
// even when the filter leaves their rows out) and returns one row per case;
// `on_row`, when given, also gets each row as soon as it is known. Fails for
// an invalid filter, one that matches nothing, or a fixture that cannot be
// built (the error names the case).
Result<std::vector<LookupBenchResult>> run_lookup_bench(
    const LookupBenchOptions& options,
    const std::function<void(const LookupBenchResult&)>& on_row = nullptr);

}  // namespace swiotlb::bench
