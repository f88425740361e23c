// The 6.1.y stable kernel's slot search, reproduced decision for decision,
// including its aligned start and its loop that ends only on returning to the
// starting index.
#include <algorithm>

#include "free_run_scan.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/pool/linux_policy.h"

namespace swiotlb {

Result<SearchPlan> Linux61Policy::plan(const SlotRequest& request) const {
  const std::uint64_t alloc_size =
      request.alloc_size != 0 ? request.alloc_size : request.mapping_size;
  if (request.mapping_size > alloc_size) {
    return make_error(Errc::invalid_argument,
                      "invalid sizes: mapping {} bytes is larger than the allocation of {} bytes",
                      request.mapping_size, alloc_size);
  }
  const std::uint64_t orig = request.orig.value();
  const std::uint64_t offset = orig & request.min_align_mask & (kSlotSize - 1);

  SearchPlan plan;
  plan.orig = orig;
  plan.search_bytes = alloc_size + offset;
  // Saturates: no pool has 2^32 slots, so such a plan simply finds no room.
  plan.nslots =
      static_cast<std::uint32_t>(std::min<std::uint64_t>(nr_slots(plan.search_bytes), 0xffffffffu));
  plan.tlb_offset = static_cast<std::uint32_t>(offset);
  plan.slot_alloc_offset = offset;
  plan.reported_bytes = alloc_size;

  const std::uint64_t align = request.alloc_align_mask | (kSlotSize - 1);
  const std::uint64_t keep = request.min_align_mask & ~align;
  std::uint64_t stride = (keep >> kSlotShift) + 1;
  // A page or more: step whole pages, so that every candidate after the
  // aligned start is page-aligned too.
  if (plan.search_bytes >= kPageSize) {
    stride = std::max(stride, stride << (kPageShift - kSlotShift));
  }
  stride = std::max(stride, (align >> kSlotShift) + 1);
  plan.alloc_align_mask = align;
  plan.iotlb_align_mask = keep;
  // Capped to stay in 32 bits; see LinuxPolicy::plan.
  plan.stride = static_cast<std::uint32_t>(std::min(stride, kMaxSlotCount));
  return plan;
}

// The 6.1 loop, one candidate per step: a candidate without the kept bits
// moves one slot, an aligned one that fails moves one stride, an index past
// the area's end goes back to 0, and the loop ends when the index comes back
// to where it started. Where the stride keeps the kept bits (as for
// LinuxPolicy), the candidates from an aligned one up to the area's end, the
// start or the step budget are tested together, and counted as the loop
// would count them.
AreaSearch Linux61Policy::search_area(const AreaView& area, const SearchPlan& plan) const {
  AreaSearch result;
  const std::uint64_t stride = plan.stride;
  // 6.1 tests only the kept bits on a candidate; its stride is always above
  // alloc_align_mask, which the shared test also looks at.
  const bool straight = stride_keeps_alignment(plan);
  const std::uint32_t first = area.wrap(kernel_align(area.cursor, plan.stride));
  std::uint32_t index = first;
  do {
    const std::uint64_t slot = area.base + index;
    const std::uint64_t addr = plan.tbl_dma + (slot << kSlotShift);
    if (plan.orig != 0 && (addr & plan.iotlb_align_mask) != (plan.orig & plan.iotlb_align_mask)) {
      // A correct run visits each index at most once before coming back to
      // `first`; one more step means an index repeated, and the kernel's
      // loop would go round that cycle for ever.
      if (++result.steps > area.nslabs) {
        result.outcome = AreaSearch::Outcome::would_spin;
        return result;
      }
      index = area.wrap(index + 1ull);
      continue;
    }
    // Candidates index + j * stride for j < count: before the area's end,
    // before the index comes back to `first`, within the step budget.
    std::uint64_t count = straight ? (area.nslabs - index + stride - 1) / stride : 1;
    if (first > index && (first - index) % stride == 0) {
      count = std::min(count, (first - index) / stride);
    }
    const std::uint64_t budget = area.nslabs - result.steps;
    const bool spins = count > budget;
    count = std::min(count, budget);
    if (const std::uint32_t j =
            first_fitting_candidate(area.list, plan, slot, static_cast<std::uint32_t>(count));
        j != count) {
      result.steps += j + 1;
      result.outcome = AreaSearch::Outcome::found;
      result.index = static_cast<std::uint32_t>(index + j * stride);
      return result;
    }
    result.steps += count;
    if (spins) {
      ++result.steps;
      result.outcome = AreaSearch::Outcome::would_spin;
      return result;
    }
    index = area.wrap(index + count * stride);
  } while (index != first);
  return result;
}

}  // namespace swiotlb
