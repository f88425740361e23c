// What a caller asks of a SlotPool, and what it gets back.
#pragma once

#include <cstdint>

#include "swiotlb/core/address.h"
#include "swiotlb/core/direction.h"
#include "swiotlb/core/slot.h"

namespace swiotlb {

// One request for bounce slots, in the terms of the kernel's
// swiotlb_tbl_map_single().
struct SlotRequest {
  // The original buffer; 0 for an allocation that has none (alloc_coherent).
  PhysAddr orig;
  // Bytes the caller maps (and later copies).
  std::uint64_t mapping_size = 0;
  // Bytes to reserve. Only the linux-6.1 policy reads it (6.1 callers pass it
  // separately, for example rounded to an IOMMU granule); the mainline
  // policy derives the reservation from mapping_size and alloc_align_mask.
  // 0 means "same as mapping_size".
  std::uint64_t alloc_size = 0;
  // Required alignment of the reserved space, as a mask (0: none).
  std::uint64_t alloc_align_mask = 0;
  // Low address bits the device needs kept from `orig` (dma_get_min_align_mask).
  std::uint64_t min_align_mask = 0;
  // The device's segment boundary (dma_get_seg_boundary); no mapping crosses it.
  std::uint64_t seg_boundary_mask = ~std::uint64_t{0};
  // Where the device sees the pool's first slot. The search tests alignment
  // against device addresses, as the kernel does.
  DmaAddr pool_dma_start;
  // The CPU the request runs on; it picks the first area to search.
  unsigned cpu = 0;
  // Search only that first area (a caller that interleaves the areas of
  // several pools, as the kernel's swiotlb_find_slots does).
  bool one_area = false;

  // Recorded with the mapping so that unmap and sync can be checked.
  Direction dir = Direction::bidirectional;
  std::uint32_t owner = 0;
};

// What the streaming requests of one caller to one pool share (a device's
// min_align_mask, segment boundary and id, and where it sees the pool),
// worked out once by SlotPool::streaming_route(), so that a map from the
// run cache (SlotPool::map_streaming) plans only what its buffer changes.
struct StreamingRoute {
  std::uint64_t min_align_mask = 0;
  std::uint64_t tbl_dma = 0;    // where the device sees slot 0, cut by the boundary mask
  std::uint64_t max_slots = 0;  // the segment boundary, in slots (a power of two)
  std::uint32_t owner = 0;
};

// A mapping the pool handed out.
struct SlotMapping {
  PhysAddr tlb_addr;  // the bounce address: slot start plus the kept offset
  SlotIndex index;    // first slot reserved (including leading pad slots)
  SlotCount nslots;   // slots reserved
  std::uint32_t area = 0;
  std::uint64_t search_steps = 0;  // slots the search looked at, all areas
};

// What a map through a route (SlotPool::map_streaming) hands back: the
// bounce address and the slots reserved, no more, so that it comes back in
// two registers. A miss has no slots. SlotPool::mapping_of() gives the
// rest of a hit's SlotMapping.
struct StreamingMapping {
  PhysAddr tlb_addr;
  SlotCount nslots;  // 0: a miss

  explicit operator bool() const { return nslots.value() != 0; }
};

// What an unmap through a route (SlotPool::unmap_streaming) reports, in two
// registers: the slots of the run it parked in the run cache (none for a
// miss, which changed nothing) and the waiters it counted while the
// cache's lock was held.
struct ParkedRun {
  SlotCount nslots;  // 0: a miss
  std::uint64_t waiting = 0;

  explicit operator bool() const { return nslots.value() != 0; }
};

// What unmap and sync learn about a live mapping.
struct MappingInfo {
  PhysAddr tlb_addr;  // the address the mapping was handed out at
  PhysAddr orig;      // its original buffer (0 when it has none)
  std::uint64_t mapping_size = 0;
  Direction dir = Direction::bidirectional;
  std::uint32_t owner = 0;
  SlotIndex index;  // first reserved slot
  SlotCount nslots;
};

// What an unmap claims about the mapping it gives back; checked before
// anything is released.
struct MappingClaim {
  std::uint64_t mapping_size = 0;
  Direction dir = Direction::bidirectional;
  std::uint32_t owner = 0;
};

}  // namespace swiotlb
