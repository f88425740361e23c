// apply(op, SlotPool): the op vocabulary (ops/op.h) on one pool of slots.
//
//   map       SlotPool::map at the pool's own address as the device's
//             (pool_dma_start = start()); gives the bounce address
//   unmap     SlotPool::unmap with the op's claim (none when its size is 0)
//   sync_*    finds the live mapping that holds the range (a pool keeps no
//             data, so there is nothing to copy); refuses a range in none
//   tick      changes nothing: nothing in a pool waits on time
//   grow, iova_*  refused (Errc::invalid_argument): a SlotPool is one
//             fixed run of slots and allocates no IOVAs
//
// Errors are the pool's own (pool_full, not_mapped, mapping_mismatch, ...),
// the pool changed by none of them. Thread safety: as the SlotPool call it
// makes.
#pragma once

#include "swiotlb/core/export.h"
#include "swiotlb/ops/op.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb::ops {

SWIOTLB_API Applied apply(const Op& op, SlotPool& pool);

}  // namespace swiotlb::ops
