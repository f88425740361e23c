// Coherent allocations (the kernel's swiotlb_alloc and swiotlb_free):
// zeroed slots on the map path, released without a copy.
#include "io_tlb_internal.h"
#include "swiotlb/core/constants.h"

namespace swiotlb {

Result<PhysAddr> IoTlb::alloc(const AllocRequest& request) {
  BounceRequest bounce;
  bounce.pool = request.pool;
  bounce.size = kernel_align(request.size, kPageSize);
  bounce.alloc_align_mask = policy_->coherent_align_mask(bounce.size);
  bounce.pool_dma_start = request.pool_dma_start;
  bounce.owner = request.owner;
  bounce.reach = request.reach;
  bounce.attrs = Attr::no_warn;  // the coherent allocator reports its own failure
  bounce.more_pools = request.more_pools;
  Result<PhysAddr> mapped = map_slots(bounce, false);
  if (mapped) {
    coherent_allocations_.fetch_add(1, std::memory_order_relaxed);
  }
  return mapped;
}

Status IoTlb::free(PhysAddr addr, std::uint64_t size, std::uint32_t owner) {
  const MappingClaim claim{kernel_align(size, kPageSize), Direction::bidirectional, owner};
  Result<BounceMapping> mapping = begin_unmap(addr, 0, claim);
  if (!mapping) {
    return std::move(mapping).error();
  }
  {
    PoolTable::ReadGuard reading(dynamic_);
    mapping->pool->slots->finish_unmap(mapping->info);
    finish_release(mapping->pool, mapping->info.nslots.value());
  }
  coherent_allocations_.fetch_sub(1, std::memory_order_relaxed);
  return {};
}

}  // namespace swiotlb
