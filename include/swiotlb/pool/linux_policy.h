// The kernel's slot searches.
//
// `linux` is the current mainline search (kernel/dma/swiotlb.c,
// swiotlb_search_pool_area): every candidate is tested for alignment, a
// streaming mapping of a page or more is page-aligned when the device keeps
// no address bits, alloc_align_mask is honoured by leading pad slots, and the
// search gives up after looking at a whole area.
//
// `linux-6.1` is the 6.1.y stable search (swiotlb_do_find_slots): alignment
// comes only from an aligned starting index and the stride, and the loop ends
// when the index comes back to where it started. When a +1 step leaves the
// stride grid the real kernel never comes back and spins with the area lock
// held; this model detects that (it can only happen once an index repeats,
// so after nslabs candidates) and reports `would_spin`.
#pragma once

#include <algorithm>

#include "swiotlb/core/constants.h"
#include "swiotlb/pool/slot_policy.h"

namespace swiotlb {

// The mainline kernel's plan for a request (swiotlb_search_pool_area's
// arithmetic before its loop), without the pool's fields (tbl_dma,
// max_slots). Inline: it is also the first step of a map served from a run
// cache (SlotPool::map_streaming), where a virtual call and a Result would cost
// as much as the rest of the hit. Never fails; the pool refuses requests it
// cannot hold before it plans them. Writes every field of `plan` in place:
// a plan built in a temporary and then copied is read back 16 bytes at a
// time right after being written 4 and 8 at a time, and the loads stall.
inline void mainline_plan(const SlotRequest& request, SearchPlan& plan) {
  const std::uint64_t orig = request.orig.value();
  const std::uint64_t min_align = request.min_align_mask;
  std::uint64_t align = request.alloc_align_mask;

  // The kept low bits of orig may reach above one slot when the caller asks
  // for a coarser alignment; those whole slots become leading pad slots.
  const std::uint64_t offset = orig & min_align & (align | (kSlotSize - 1));
  plan.orig = orig;
  plan.search_bytes = kernel_align(request.mapping_size + offset, align + 1);
  // Saturates: no pool has 2^32 slots, so such a plan simply finds no room.
  plan.nslots =
      static_cast<std::uint32_t>(std::min<std::uint64_t>(nr_slots(plan.search_bytes), 0xffffffffu));
  plan.pad_slots = static_cast<std::uint32_t>(offset >> kSlotShift);
  plan.tlb_offset = static_cast<std::uint32_t>(offset & (kSlotSize - 1));
  plan.slot_alloc_offset = orig & min_align & (kSlotSize - 1);
  plan.reported_bytes = plan.search_bytes;

  // Streaming mappings of a page or more stay page-aligned when nothing else
  // constrains them: drivers came to rely on it before alloc_align_mask existed.
  std::uint64_t keep = min_align;
  if (align == 0 && keep == 0 && plan.search_bytes >= kPageSize) {
    align = kPageSize - 1;
  }
  align |= kSlotSize - 1;
  keep &= ~align;
  plan.alloc_align_mask = align;
  plan.iotlb_align_mask = keep;
  // A stride of a whole area or more visits one candidate per area either
  // way; capping it keeps it in 32 bits (an all-ones min_align_mask gives
  // 2^53, which would truncate to 0 and never move the search).
  plan.stride = static_cast<std::uint32_t>(
      std::min((std::max(align, keep) >> kSlotShift) + 1, kMaxSlotCount));
}

class LinuxPolicy final : public SlotPolicy {
 public:
  std::string_view name() const override { return "linux"; }
  Result<SearchPlan> plan(const SlotRequest& request) const override {
    Result<SearchPlan> result{SearchPlan{}};
    mainline_plan(request, *result);
    return result;
  }
  AreaSearch search_area(const AreaView& area, const SearchPlan& plan) const override;
  std::uint64_t coherent_align_mask(std::uint64_t bytes) const override;
};

class Linux61Policy final : public SlotPolicy {
 public:
  std::string_view name() const override { return "linux-6.1"; }
  Result<SearchPlan> plan(const SlotRequest& request) const override;
  AreaSearch search_area(const AreaView& area, const SearchPlan& plan) const override;
  std::uint64_t coherent_align_mask(std::uint64_t) const override { return 0; }
};

}  // namespace swiotlb
