// The mainline kernel's slot search, reproduced decision for decision.
#include "swiotlb/pool/linux_policy.h"

#include <algorithm>

#include "swiotlb/core/constants.h"

namespace swiotlb {

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
