// The mainline kernel's slot search, reproduced decision for decision.
#include "swiotlb/pool/linux_policy.h"

#include <algorithm>

#include "free_run_scan.h"
#include "swiotlb/core/constants.h"

namespace swiotlb {
namespace {

bool misaligned(const SearchPlan& plan, std::uint64_t addr) {
  return (addr & plan.alloc_align_mask) != 0 ||
         (plan.orig != 0 && (addr & plan.iotlb_align_mask) != (plan.orig & plan.iotlb_align_mask));
}

}  // namespace

// The kernel's loop, one candidate per step: a misaligned candidate moves
// one slot, to find the aligned grid again; an aligned one that fails moves
// one stride; an index past the area's end goes back to 0; the search ends
// once it has moved nslabs slots in all. Where the stride keeps alignment,
// the aligned candidates from one up to the area's end (or the end of the
// search) are tested together by first_fitting_candidate(), and counted as
// the kernel's steps would be.
AreaSearch LinuxPolicy::search_area(const AreaView& area, const SearchPlan& plan) const {
  AreaSearch result;
  const bool straight = stride_keeps_alignment(plan);
  std::uint32_t index = area.cursor;
  for (std::uint64_t checked = 0; checked < area.nslabs;) {
    const std::uint64_t slot = area.base + index;
    if (misaligned(plan, plan.tbl_dma + (slot << kSlotShift))) {
      ++result.steps;
      index = area.wrap(index + 1ull);
      ++checked;
      continue;
    }
    // Candidates index + j * stride for j < count: those before the area's
    // end and before the search has moved nslabs slots.
    const std::uint64_t stride = plan.stride;
    const std::uint64_t count = straight ? std::min((area.nslabs - index + stride - 1) / stride,
                                                    (area.nslabs - checked + stride - 1) / stride)
                                         : 1;
    if (const std::uint32_t j =
            first_fitting_candidate(area.list, plan, slot, static_cast<std::uint32_t>(count));
        j != count) {
      result.steps += j + 1;
      result.outcome = AreaSearch::Outcome::found;
      result.index = static_cast<std::uint32_t>(index + j * stride);
      return result;
    }
    result.steps += count;
    index = area.wrap(index + count * stride);
    checked += count * stride;
  }
  return result;
}

std::uint64_t LinuxPolicy::coherent_align_mask(std::uint64_t bytes) const {
  // (1 << (get_order(bytes) + PAGE_SHIFT)) - 1: the allocation's size
  // rounded up to a power-of-two number of pages.
  return round_up_power_of_two(std::max(nr_pages(bytes), std::uint64_t{1})) * kPageSize - 1;
}

}  // namespace swiotlb
