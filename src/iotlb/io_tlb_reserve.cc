// The reserve: a pool made at creation for maps of the default pool from
// callers that cannot sleep, taken when every pool is full and before a
// transient pool is made on the caller's thread. Its room is never
// searched in turn with the other pools, so that it is there when they are
// full.
#include <fmt/format.h>

#include "io_tlb_internal.h"
#include "io_tlb_worker.h"
#include "swiotlb/core/constants.h"

namespace swiotlb {

Status IoTlb::make_reserve(std::uint64_t nslabs) {
  Result<std::unique_ptr<IoPool>> pool =
      make_dynamic_pool(PoolKind::reserve, 0, nslabs << kSlotShift, nslabs, 1, 0);
  if (!pool) {
    return make_error(pool.error().code(), "the reserve of {} slots: {}", nslabs,
                      pool.error().message());
  }
  (*pool)->accepting.store(false, std::memory_order_relaxed);  // never searched in turn
  IoPool* made = pool->get();
  if (Status added = table_->insert(std::move(*pool)); !added) {
    return added;
  }
  table_->reclaim();  // the snapshot replaced, before anyone reads
  reserve_ = made;
  return {};
}

Result<PhysAddr> IoTlb::map_reserve(const BounceRequest& request, bool copy) {
  PoolTable::ReadGuard reading(dynamic_);
  IoPool& pool = *reserve_;
  const std::optional<DmaAddr> dma_start =
      request.reach != nullptr ? request.reach->pool_dma_start(pool.start, pool.bytes())
                               : std::optional<DmaAddr>(pool.start.value());
  if (!dma_start) {
    return make_error(Errc::unreachable, "{}: the reserve at {:#x} is out of its reach",
                      request.owner_name, pool.start.value());
  }
  SlotRequest slots = slot_request(request);
  slots.pool_dma_start = *dma_start;
  Result<SlotMapping> mapping = pool.slots->map(slots);
  if (request.observer != nullptr) {
    request.observer->searched(pool.start, PoolKind::reserve, mapping ? mapping->area : 0,
                               mapping.has_value());
  }
  if (!mapping) {
    if (mapping.error().code() == Errc::pool_full) {
      counters_->reserve_exhausted.fetch_add(1, std::memory_order_relaxed);
    }
    return std::move(mapping).error();
  }
  fill_mapping(pool, mapping->tlb_addr, request, copy);
  counters_->tiers[0].count_map(*configured_[0], false, mapping->nslots.value());
  counters_->reserve_maps.fetch_add(1, std::memory_order_relaxed);
  return mapping->tlb_addr;
}

}  // namespace swiotlb
