// SlotPool: one contiguous run of 2 KiB slots over one address range.
//
// The pool hands out runs of slots for bounce buffers and takes them back,
// exactly as the kernel's io_tlb_pool does. It keeps no data: the bytes live
// in whatever region the pool's addresses name, and copying them is the
// caller's business. This makes the same pool serve live mappings and trace
// replays of a kernel's pool (whose addresses are physical).
//
// Layout: `slot_count` slots in segments of 128, split into `area_count`
// areas of equal size, each with its own lock, search cursor and used count.
// A request starts in the area of its CPU and moves on to the next areas in
// turn, as the kernel does.
//
// Per slot the pool keeps the kernel's fields (free-run counter `list`,
// original address, remaining allocation size, pad slots) and, on the first
// data slot of each mapping, what unmap and sync need to check their caller:
// the address handed out, the mapping size, the direction and the owner.
//
// Thread safety: every public method may be called from any thread. A slot's
// fields are guarded by the lock of the area that holds the slot. Each area
// counts its slots in use; used() adds them up and hiwater() is kept
// without a pool-wide counter (see raise_hiwater in slot_pool.cc), so maps
// and unmaps in different areas write no shared cache line.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"
#include "swiotlb/core/slot.h"
#include "swiotlb/pool/slot_policy.h"
#include "swiotlb/pool/slot_request.h"

namespace swiotlb {

struct PoolGeometry {
  PhysAddr start;            // address of slot 0
  std::uint64_t slot_count;  // a multiple of 128, at most kMaxSlotCount
  std::uint32_t area_count;  // a power of two; every area holds whole segments
};

struct AreaStats {
  std::uint64_t used = 0;
  std::uint32_t cursor = 0;
  std::uint64_t maps = 0;
  std::uint64_t search_steps = 0;
};

struct PoolStats {
  std::uint64_t nslabs = 0;
  std::uint32_t nareas = 0;
  std::uint64_t used = 0;          // slots in use now
  std::uint64_t hiwater = 0;       // most slots in use at once since the last reset
  std::uint64_t maps = 0;          // successful maps
  std::uint64_t failures = 0;      // maps refused for want of slots
  std::uint64_t search_steps = 0;  // candidates looked at by all searches
  std::vector<AreaStats> areas;
};

class SlotPool {
 public:
  // Fails for an impossible geometry (see validate_geometry in core/config.h).
  static Result<std::unique_ptr<SlotPool>> create(const PoolGeometry& geometry,
                                                  std::shared_ptr<const SlotPolicy> policy);
  ~SlotPool();
  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;

  // Reserves slots for a request. Fails with Errc::pool_full when no area
  // has a run that fits (counted in failures), Errc::invalid_argument for a
  // request no pool can serve (zero size, a boundary mask that is not
  // 2^n - 1), Errc::search_would_spin when the modelled kernel would hang.
  Result<SlotMapping> map(const SlotRequest& request);

  // Gives back the mapping handed out at `tlb_addr`. The device's
  // min_align_mask locates the mapping's first slot, as in the kernel.
  // Fails, changing nothing, when no mapping was handed out at that address.
  Result<MappingInfo> unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask);

  // The two halves of unmap, for callers that copy data out in between:
  // begin_unmap checks the address (and, given a claim, that the caller's
  // size, direction and owner match the map: Errc::mapping_mismatch
  // otherwise, the mapping left live) and marks the mapping as going, so
  // that a second unmap or a sync of it fails; finish_unmap frees its slots.
  Result<MappingInfo> begin_unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask,
                                  const MappingClaim* claim = nullptr);
  // REQUIRES: `mapping` came from begin_unmap and was not finished yet.
  void finish_unmap(const MappingInfo& mapping);

  // The live mapping that holds [addr, addr + size), for sync and checks.
  // Fails with Errc::not_mapped when the range is not inside one live mapping.
  Result<MappingInfo> find_mapping(PhysAddr addr, std::uint64_t size) const;

  // The original address that backs bounce address `addr` of a live mapping
  // (the kernel's per-slot orig_addr, plus the offset into the slot).
  PhysAddr orig_of(const MappingInfo& mapping, PhysAddr addr) const;

  PhysAddr start() const { return start_; }
  PhysAddr end() const { return start_ + (slot_count_ << 11); }
  bool contains(PhysAddr addr) const { return addr >= start_ && addr < end(); }
  std::uint64_t slot_count() const { return slot_count_; }
  std::uint32_t area_count() const { return area_count_; }
  std::uint32_t area_slot_count() const { return area_slots_; }
  const SlotPolicy& policy() const { return *policy_; }

  // Slots in use: the sum of the areas' counts (exact when no map or unmap
  // is in flight). O(areas).
  std::uint64_t used() const;
  std::uint64_t hiwater() const { return hiwater_.load(std::memory_order_relaxed); }
  // The kernel lets debugfs write 0 to io_tlb_used_hiwater and nothing else;
  // the next map sets it to the slots then in use.
  void reset_hiwater();
  PoolStats stats() const;

  // Live mappings whose owner is `owner` (a scan of every slot: for
  // teardown checks, not for hot paths).
  std::uint64_t count_owned(std::uint32_t owner) const;

  // The longest run of free slots anywhere in the pool (a fragmentation measure).
  std::uint64_t largest_free_run() const;

  // Walks every slot and area and checks the pool's invariants: free-run
  // counters consistent with the slots in use, used counts equal to the
  // slots in use, the policy's per-area state (if it keeps one)
  // consistent with the free-run counters, and the high-water gates
  // within the high-water mark. Returns the first violation. Takes every
  // area lock.
  Status check_invariants() const;

 private:
  struct Area;
  struct Slot;

  SlotPool(const PoolGeometry& geometry, std::shared_ptr<const SlotPolicy> policy);

  Result<SearchPlan> make_plan(const SlotRequest& request) const;
  [[gnu::cold]] static Error invalid_request(const SlotRequest& request);
  void commit_locked(Area& area, std::uint32_t area_index, std::uint32_t found,
                     const SearchPlan& plan, const SlotRequest& request, SlotMapping& mapping);
  Result<MappingInfo> take_mapping(PhysAddr tlb_addr, std::uint64_t min_align_mask,
                                   const MappingClaim* claim, bool release);
  Result<std::uint32_t> head_of_locked(PhysAddr tlb_addr, std::uint64_t min_align_mask) const;
  MappingInfo info_locked(std::uint32_t head) const;
  static Status check_claim(const MappingInfo& info, const MappingClaim& claim);
  void release_locked(Area& area, std::uint32_t first, std::uint32_t nslots);
  Area& area_of(std::uint64_t slot) const;
  [[gnu::cold]] void raise_hiwater();
  [[gnu::cold]] Error full_error(const SearchPlan& plan) const;

  const PhysAddr start_;
  const std::uint64_t slot_count_;
  const std::uint32_t area_count_;
  const std::uint32_t area_slots_;
  const std::shared_ptr<const SlotPolicy> policy_;

  std::unique_ptr<Area[]> areas_;
  // Free-run counters apart from the other slot fields: the search reads
  // only these, so they are packed for the cache. Guarded by the area locks.
  std::unique_ptr<std::uint16_t[]> list_;
  std::unique_ptr<Slot[]> slots_;  // guarded by the area locks

  // The kernel's used_hiwater, on a cache line away from the read-mostly
  // fields above: only maps that pass their area's gate write it. Written
  // with hiwater_lock_ held; read without locks.
  alignas(64) std::atomic<std::uint64_t> hiwater_{0};
  mutable std::mutex hiwater_lock_;  // taken before any area lock, never after one
  std::uint64_t gated_ = 0;          // the sum of the areas' gates; guarded by hiwater_lock_
  std::atomic<std::uint64_t> failures_{0};
};

}  // namespace swiotlb
