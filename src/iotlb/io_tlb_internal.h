// What IoTlb's files share and its users never see: the counters, the
// request translation, and the fill of a new mapping.
//
// Thread safety: the counters are atomics, written by callers' threads and
// the worker and read by stats(); `idle` belongs to the worker (under its
// work lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <vector>

#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb {

struct IoTlb::Counters {
  // Per configured pool, over the pools that serve it: slots in use and
  // the most at once (the kernel's total_used and used_hiwater, kept the
  // same way: one atomic each, the mark raised by compare-and-swap), maps
  // refused and maps that fell through to a later pool. A cache line each.
  struct alignas(64) Tier {
    std::atomic<std::uint64_t> used{0};
    std::atomic<std::uint64_t> hiwater{0};
    std::atomic<std::uint64_t> refused{0};
    std::atomic<std::uint64_t> fall_throughs{0};

    void add_used(std::uint64_t nslots) {
      const std::uint64_t now = used.fetch_add(nslots, std::memory_order_relaxed) + nslots;
      std::uint64_t mark = hiwater.load(std::memory_order_relaxed);
      while (now > mark && !hiwater.compare_exchange_weak(mark, now, std::memory_order_relaxed)) {
      }
    }
    void sub_used(std::uint64_t nslots) { used.fetch_sub(nslots, std::memory_order_relaxed); }
  };

  explicit Counters(std::size_t count) : tiers(count) {}

  std::vector<Tier> tiers;

  std::atomic<std::uint64_t> grow_events{0};
  std::atomic<std::uint64_t> grow_failures{0};
  std::atomic<std::uint64_t> grown_smaller{0};
  std::atomic<std::uint64_t> limit_reached{0};
  std::atomic<std::uint64_t> shrunk_pools{0};
  std::atomic<std::uint64_t> transient_pools{0};
  std::atomic<std::uint64_t> transient_pools_total{0};
  std::atomic<std::uint64_t> transient_nslabs{0};
  std::atomic<std::uint64_t> transient_nslabs_total{0};
  std::atomic<std::uint64_t> transient_failures{0};
  std::atomic<std::uint64_t> reserve_maps{0};
  std::atomic<std::uint64_t> reserve_exhausted{0};
  std::atomic<std::uint64_t> serial{0};  // numbers the names of new pools
  std::atomic<bool> limit_logged{false};

  // Worker only (under its work lock): since when each grown pool has held
  // no mapping, and how many maps it had made then.
  struct Idle {
    std::uint64_t maps = 0;
    IoTlbBackend::Clock::time_point since;
  };
  std::map<const IoPool*, Idle> idle;
};

// Fills a new mapping: from the original (whatever the direction: a device
// that writes only part of the buffer must leave the rest as the original
// had it), or with zeros for an allocation. Nothing without memory.
void fill_mapping(const IoPool& pool, PhysAddr tlb_addr, const BounceRequest& request, bool copy);

}  // namespace swiotlb
