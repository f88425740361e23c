// The 6.1.y stable kernel's slot search, reproduced decision for decision,
// including its aligned start and its loop that ends only on returning to the
// starting index.
#include <algorithm>

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

AreaSearch Linux61Policy::search_area(const AreaView& area, const SearchPlan& plan) const {
  AreaSearch result;
  const std::uint32_t first = area.wrap(kernel_align(area.cursor, plan.stride));
  std::uint32_t index = first;
  do {
    // A correct run visits each index at most once before coming back to
    // `first`; one more step means an index repeated, and the kernel's loop
    // would go round that cycle for ever.
    if (++result.steps > area.nslabs) {
      result.outcome = AreaSearch::Outcome::would_spin;
      return result;
    }
    const std::uint64_t slot = area.base + index;
    const std::uint64_t addr = plan.tbl_dma + (slot << kSlotShift);
    if (plan.orig != 0 && (addr & plan.iotlb_align_mask) != (plan.orig & plan.iotlb_align_mask)) {
      index = area.wrap(index + 1ull);
      continue;
    }
    if (!AreaView::crosses_boundary(plan, slot) && area.list[slot] >= plan.nslots) {
      result.outcome = AreaSearch::Outcome::found;
      result.index = index;
      return result;
    }
    index = area.wrap(std::uint64_t{index} + plan.stride);
  } while (index != first);
  return result;
}

}  // namespace swiotlb
