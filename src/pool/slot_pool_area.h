// SlotPool::Area: one area's lock, cursor, counts and policy state (private
// to the pool layer; shared by the files that implement SlotPool).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "run_cache.h"
#include "swiotlb/core/spin_lock.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {

struct alignas(64) SlotPool::Area {
  // A spin lock, as the kernel's area lock is: a map or unmap holds it for
  // a search or a release, and std::mutex would cost a second atomic
  // operation on every one (spin_lock.h).
  mutable SpinLock lock;
  std::uint32_t cursor = 0;  // where the next search starts (area-relative)
  // Slots taken in this area's counters (runs parked in its run cache
  // included: see mapped_slots in slot_pool.cc): written under `lock`, read
  // by anyone (the pool's used() is their sum, less the cached runs).
  std::atomic<std::uint64_t> used{0};
  // While the area's used stays within its gate, its maps need not look at
  // the other areas (see raise_hiwater). Written under `lock` with
  // hiwater_lock_ held as well; read under `lock`, or without it by a map
  // served from the run cache.
  std::atomic<std::uint64_t> gate{0};
  std::uint64_t maps = 0;          // successful searches here
  std::uint64_t search_steps = 0;  // candidates looked at here
  std::uint64_t adopted = 0;       // adopted mappings not yet released; guarded by `lock`
  // The policy's own index of the area, kept in step with `list` (null for
  // the kernel policies, which search the counters alone).
  std::unique_ptr<AreaState> state;
  // Magazines of freed runs (empty unless the pool caches runs); its lock,
  // not `lock`, guards the slot records of this area (see run_cache.h).
  // Held in the area, not behind a pointer: a hit goes from the area to the
  // cache's lock without another dependent load.
  std::optional<RunCache> cache;

  RunCache* run_cache() { return cache ? &*cache : nullptr; }
  const RunCache* run_cache() const { return cache ? &*cache : nullptr; }
};

}  // namespace swiotlb
