// What IoTlb's files share and its users never see: the counters, the
// request translation, and the fill of a new mapping.
//
// Thread safety: the counters are atomics, written by callers' threads and
// the worker and read by stats(); `idle` belongs to the worker (under its
// work lock).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <vector>

#include "swiotlb/iotlb/io_pool.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/platform/bounce_copy.h"

namespace swiotlb {

struct IoTlb::Counters {
  // Per configured pool, over the pools that serve it (a tier): slots in
  // use and the most at once (the kernel's total_used and used_hiwater),
  // maps refused and maps that fell through to a later pool. A cache line
  // each.
  //
  // The kernel keeps total_used in one atomic that every map and unmap
  // writes; a line every CPU writes is what stops a pool from scaling with
  // its areas. Here the configured pool counts its own slots, per area,
  // with its own exact high-water mark (SlotPool::hiwater), and the tier
  // counts only the slots of its other pools (grown, transient, the
  // reserve). So the tier's total is the configured pool's used() plus
  // `other_used`, and while the other pools hold nothing the configured
  // pool's mark is the tier's. `mark` covers the rest: every map into
  // another pool, and every map into the configured pool while another
  // holds slots, raises it to the total. A peak is the moment of some map;
  // either the configured pool's mark or `mark` saw it, so the maximum of
  // the two is the kernel's used_hiwater (with one thread at a time; under
  // concurrency the totals are summed as the kernel's mem_used() does).
  struct alignas(64) Tier {
    std::atomic<std::uint64_t> other_used{0};
    std::atomic<std::uint64_t> mark{0};
    std::atomic<std::uint64_t> refused{0};
    std::atomic<std::uint64_t> fall_throughs{0};

    // A map of `nslots` into `configured`, the tier's configured pool, or
    // (into_configured false) into another of its pools.
    void count_map(const IoPool& configured, bool into_configured, std::uint64_t nslots) {
      if (!into_configured) {
        other_used.fetch_add(nslots, std::memory_order_relaxed);
      } else if (other_used.load(std::memory_order_relaxed) == 0) {
        return;  // the configured pool's own mark follows the total
      }
      raise_mark(used(configured));
    }
    void count_unmap(bool from_configured, std::uint64_t nslots) {
      if (!from_configured) {
        other_used.fetch_sub(nslots, std::memory_order_relaxed);
      }
    }
    std::uint64_t used(const IoPool& configured) const {
      return configured.slots->used() + other_used.load(std::memory_order_relaxed);
    }
    std::uint64_t hiwater(const IoPool& configured) const {
      return std::max(mark.load(std::memory_order_relaxed), configured.slots->hiwater());
    }
    void raise_mark(std::uint64_t total) {
      std::uint64_t seen = mark.load(std::memory_order_relaxed);
      while (total > seen && !mark.compare_exchange_weak(seen, total, std::memory_order_relaxed)) {
      }
    }
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
// Inline: it is half of the IoTlb's part of a streaming hit
// (streaming_hit.h), in whichever layer that is inlined.
inline void fill_mapping(const IoPool& pool, PhysAddr tlb_addr, PhysAddr orig, std::uint64_t size,
                         bool copy) {
  std::byte* bounce = pool.data_at(tlb_addr);
  if (bounce == nullptr) {
    return;  // no memory behind the pool: nothing to copy
  }
  if (copy) {
    bounce_copy(bounce, orig.to_pointer(), size);
  } else {
    std::memset(bounce, 0, size);
  }
}
inline void fill_mapping(const IoPool& pool, PhysAddr tlb_addr, const BounceRequest& request,
                         bool copy) {
  fill_mapping(pool, tlb_addr, request.orig, request.size, copy);
}

}  // namespace swiotlb
