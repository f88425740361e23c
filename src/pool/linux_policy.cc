// The mainline kernel's slot search, reproduced decision for decision.
#include "swiotlb/pool/linux_policy.h"

#include <algorithm>

#include "swiotlb/core/constants.h"

namespace swiotlb {

Result<SearchPlan> LinuxPolicy::plan(const SlotRequest& request) const {
  const std::uint64_t orig = request.orig.value();
  const std::uint64_t min_align = request.min_align_mask;
  std::uint64_t align = request.alloc_align_mask;

  // The kept low bits of orig may reach above one slot when the caller asks
  // for a coarser alignment; those whole slots become leading pad slots.
  const std::uint64_t offset = orig & min_align & (align | (kSlotSize - 1));
  // Filled where it is returned (see SlotPool::make_plan).
  Result<SearchPlan> result{SearchPlan{}};
  SearchPlan& plan = *result;
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
  return result;
}

AreaSearch LinuxPolicy::search_area(const AreaView& area, const SearchPlan& plan) const {
  AreaSearch result;
  std::uint32_t index = area.cursor;
  for (std::uint64_t checked = 0; checked < area.nslabs;) {
    ++result.steps;
    const std::uint64_t slot = area.base + index;
    const std::uint64_t addr = plan.tbl_dma + (slot << kSlotShift);
    // A misaligned candidate moves one slot, to find the aligned grid again.
    if ((addr & plan.alloc_align_mask) != 0 ||
        (plan.orig != 0 && (addr & plan.iotlb_align_mask) != (plan.orig & plan.iotlb_align_mask))) {
      index = area.wrap(index + 1ull);
      ++checked;
      continue;
    }
    if (!AreaView::crosses_boundary(plan, slot) && area.list[slot] >= plan.nslots) {
      result.outcome = AreaSearch::Outcome::found;
      result.index = index;
      return result;
    }
    index = area.wrap(std::uint64_t{index} + plan.stride);
    checked += plan.stride;
  }
  return result;
}

std::uint64_t LinuxPolicy::coherent_align_mask(std::uint64_t bytes) const {
  // (1 << (get_order(bytes) + PAGE_SHIFT)) - 1: the allocation's size
  // rounded up to a power-of-two number of pages.
  return round_up_power_of_two(std::max(nr_pages(bytes), std::uint64_t{1})) * kPageSize - 1;
}

}  // namespace swiotlb
