// Transient pools: a pool of its own for a mapping that found every pool
// full when its caller could not wait, freed with that mapping's unmap.
#include <fmt/format.h>

#include <algorithm>

#include "io_tlb_internal.h"
#include "io_tlb_worker.h"
#include "swiotlb/core/constants.h"

namespace swiotlb {

namespace {

// The bytes of a transient pool sized with room for any alignment: the
// data, the offset the device keeps from the original, and an alignment
// the region's page alignment does not give by itself, in whole pages.
//
// The room stops at a segment. A larger alignment no search needs: the
// mainline plan rounds the run up to it, and a run past a segment is
// refused before any transient pool; the 6.1 search takes the pool's first
// slot without testing the address. Kept address bits above a segment,
// which no device asks for, would need as much room again. Without the
// bound a mask of 2^35 - 1 (a trace may hold one) made a 32 GiB pool, most
// of it bookkeeping for one mapping; with it, such a mapping that truly
// needs the room finds none in its pool and is refused.
std::uint64_t bytes_with_room(const BounceRequest& request) {
  const std::uint64_t kept = request.orig.value() & request.min_align_mask & (kSegmentBytes - 1);
  const std::uint64_t slack =
      std::clamp<std::uint64_t>(request.alloc_align_mask, kSlotSize - 1, kSegmentBytes - 1);
  return kernel_align(request.size + kept + slack + 1, kPageSize);
}

}  // namespace

Result<PhysAddr> IoTlb::map_transient(const BounceRequest& request, bool copy) {
  std::uint64_t bytes = 0;
  if (transient_size_ == IoTlbOptions::TransientSize::exact_slots) {
    // The kernel's: nr_slots of the size searched for, leading offset and
    // padding included (the policy's plan is that count).
    Result<SearchPlan> plan = policy_->plan(slot_request(request));
    if (!plan) {
      return std::move(plan).error();
    }
    bytes = std::uint64_t{plan->nslots} << kSlotShift;
  } else {
    bytes = bytes_with_room(request);
  }
  const std::uint64_t nslabs = bytes >> kSlotShift;
  // The slots are reserved before the pool is made, so that callers making
  // transient pools at once cannot pass the bound together; a pool that is
  // not made gives its reservation back.
  std::uint64_t reserved = counters_->transient_nslabs.load(std::memory_order_relaxed);
  do {
    if (transient_max_nslabs_ != 0 && reserved + nslabs > transient_max_nslabs_) {
      counters_->transient_failures.fetch_add(1, std::memory_order_relaxed);
      return make_error(Errc::limit_reached, "transient pools would pass {} slots",
                        transient_max_nslabs_);
    }
  } while (!counters_->transient_nslabs.compare_exchange_weak(reserved, reserved + nslabs,
                                                              std::memory_order_relaxed));
  auto refuse = [&] {
    counters_->transient_nslabs.fetch_sub(nslabs, std::memory_order_relaxed);
    counters_->transient_failures.fetch_add(1, std::memory_order_relaxed);
  };
  // The SlotPool spans whole segments; only the memory's part is ever used,
  // since a transient pool is searched once, for the mapping it is made for.
  Result<std::unique_ptr<IoPool>> made =
      make_dynamic_pool(PoolKind::transient, request.pool, bytes,
                        kernel_align(nslabs, kSegmentSlots), 1, request.owner);
  if (!made) {
    refuse();
    return std::move(made).error();
  }
  std::unique_ptr<IoPool>& pool = *made;
  pool->accepting.store(false, std::memory_order_relaxed);

  SlotRequest slot_req = slot_request(request);
  const std::optional<DmaAddr> dma_start = request.reach != nullptr
                                               ? request.reach->pool_dma_start(pool->start, bytes)
                                               : std::optional<DmaAddr>(pool->start.value());
  if (!dma_start) {
    refuse();
    return make_error(Errc::unreachable, "{}: a transient pool at {:#x} is out of its reach",
                      request.owner_name, pool->start.value());
  }
  slot_req.pool_dma_start = *dma_start;
  slot_req.cpu = 0;
  Result<SlotMapping> mapping = pool->slots->map(slot_req);
  // The SlotPool is longer than the memory: a run that starts past the
  // first slots of an exact pool (its first slot lacked the alignment)
  // ends outside it, which the kernel's search of the pool's own slots
  // never finds.
  const bool exact = transient_size_ == IoTlbOptions::TransientSize::exact_slots;
  const bool fits =
      mapping.has_value() && mapping->tlb_addr + request.size <= pool->end &&
      (!exact || std::uint64_t{mapping->index.value()} + mapping->nslots.value() <= nslabs);
  if (request.observer != nullptr) {
    request.observer->searched(pool->start, PoolKind::transient, 0, fits);
  }
  if (!fits) {
    refuse();
    return make_error(Errc::pool_full, "{}: {} bytes do not fit a transient pool of {} bytes",
                      request.owner_name, request.size, bytes);
  }
  fill_mapping(*pool, mapping->tlb_addr, request, copy);
  if (Status added = table_->insert(std::move(pool)); !added) {
    refuse();
    return added.error();
  }
  counters_->tiers[request.pool].count_map(*configured_[request.pool], false,
                                           mapping->nslots.value());
  counters_->transient_pools.fetch_add(1, std::memory_order_relaxed);
  counters_->transient_pools_total.fetch_add(1, std::memory_order_relaxed);
  counters_->transient_nslabs_total.fetch_add(nslabs, std::memory_order_relaxed);
  worker_->wake();  // the replaced snapshot waits for reclaim
  return mapping->tlb_addr;
}

}  // namespace swiotlb
