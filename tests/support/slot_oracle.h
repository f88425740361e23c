// A brute-force oracle for slot searches: which slots are in use, and
// whether a run of slots that the kernel's rules accept exists. Shared by
// the fast policy's property test and the op-sequence fuzzer, so that both
// judge the pool by the same rules, written once and plainly.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/pool/slot_policy.h"
#include "swiotlb/pool/slot_request.h"

namespace swiotlb::oracle {

// The kernel's tests for a run of plan.nslots slots from global slot `slot`,
// given which slots are in use: within one 128-slot segment, all free, the
// first slot's device address aligned and keeping orig's bits, no segment
// boundary crossed.
inline bool run_fits(const SearchPlan& plan, const std::vector<bool>& in_use, std::uint64_t slot) {
  if ((slot % kSegmentSlots) + plan.nslots > kSegmentSlots || slot + plan.nslots > in_use.size()) {
    return false;
  }
  for (std::uint64_t i = slot; i < slot + plan.nslots; ++i) {
    if (in_use[i]) {
      return false;
    }
  }
  const std::uint64_t addr = plan.tbl_dma + (slot << kSlotShift);
  if ((addr & plan.alloc_align_mask) != 0 ||
      (plan.orig != 0 && (addr & plan.iotlb_align_mask) != (plan.orig & plan.iotlb_align_mask))) {
    return false;
  }
  return !AreaView::crosses_boundary(plan, slot);
}

// Which slots of one pool are in use.
struct Shadow {
  std::uint64_t slots = 0;
  std::uint32_t areas = 1;
  std::vector<bool> in_use;

  Shadow() = default;
  Shadow(std::uint64_t slot_count, std::uint32_t area_count)
      : slots(slot_count), areas(area_count), in_use(slot_count, false) {}

  // The first area, in the pool's order for `cpu`, that holds a run.
  std::optional<std::uint32_t> first_area_with_run(const SearchPlan& plan, unsigned cpu) const {
    const std::uint64_t area_slots = slots / areas;
    for (std::uint32_t i = 0; i < areas; ++i) {
      const std::uint32_t a = (cpu + i) & (areas - 1);
      for (std::uint64_t s = a * area_slots; s < (a + 1) * area_slots; ++s) {
        if (run_fits(plan, in_use, s)) {
          return a;
        }
      }
    }
    return std::nullopt;
  }
  void mark(std::uint64_t first, std::uint64_t n, bool used) {
    for (std::uint64_t i = first; i < first + n; ++i) {
      in_use[i] = used;
    }
  }
};

// The plan a pool makes for the request (SlotPool::make_plan), by `policy`.
inline std::optional<SearchPlan> plan_for(const SlotPolicy& policy, const SlotRequest& r) {
  Result<SearchPlan> plan = policy.plan(r);
  if (!plan) {
    return std::nullopt;
  }
  plan->tbl_dma = r.pool_dma_start.value() & r.seg_boundary_mask;
  plan->max_slots = (r.seg_boundary_mask >> kSlotShift) + 1;
  return *plan;
}

}  // namespace swiotlb::oracle
