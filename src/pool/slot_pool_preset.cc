// Presetting a SlotPool to a state it had before its first recorded event:
// mappings that were already live, and where each area's search stood.
#include <mutex>

#include "slot_pool_area.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/core/error_format.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {

Result<SlotMapping> SlotPool::occupy(PhysAddr tlb_addr, const SlotRequest& request) {
  Result<SearchPlan> plan = make_plan(request);
  if (!plan) {
    return std::move(plan).error();
  }
  const std::uint64_t offset = plan->tlb_offset;
  if (!contains(tlb_addr) || ((tlb_addr.value() - start_.value()) & (kSlotSize - 1)) != offset) {
    return make_error(Errc::invalid_argument,
                      "address {:#x} is not where this pool [{:#x}, {:#x}) puts a mapping "
                      "of {} bytes with offset {:#x}",
                      tlb_addr.value(), start_.value(), end().value(), request.mapping_size,
                      offset);
  }
  const std::uint64_t head = (tlb_addr.value() - start_.value()) >> kSlotShift;
  if (head < plan->pad_slots) {
    return make_error(Errc::invalid_argument,
                      "a mapping at {:#x} would start {} slots before the pool", tlb_addr.value(),
                      plan->pad_slots - head);
  }
  const std::uint64_t first = head - plan->pad_slots;
  const std::uint64_t last = first + plan->nslots - 1;
  if (last >= slot_count_ || first / area_slots_ != last / area_slots_ ||
      first / kSegmentSlots != last / kSegmentSlots) {
    return make_error(Errc::invalid_argument,
                      "slots [{}, {}] for a mapping at {:#x} cross an area, a segment or the "
                      "end of the pool",
                      first, last, tlb_addr.value());
  }
  const auto area_index = static_cast<std::uint32_t>(first / area_slots_);
  Area& area = areas_[area_index];
  std::unique_lock guard(area.lock);
  for (std::uint64_t k = first; k <= last; ++k) {
    if (list_[k] == 0) {
      return make_error(Errc::busy, "slot {} for a mapping at {:#x} is already in use", k,
                        tlb_addr.value());
    }
  }
  // commit_locked records a map as if a search had found the run; undo what
  // only a search does (the cursor, the map count).
  const std::uint32_t cursor = area.cursor;
  SlotMapping mapping;
  commit_locked(area, area_index,
                static_cast<std::uint32_t>(first - std::uint64_t{area_index} * area_slots_), *plan,
                request, mapping);
  area.cursor = cursor;
  area.maps -= 1;
  const bool past_gate = area.used.load(std::memory_order_relaxed) > area.gate;
  guard.unlock();
  if (past_gate) {
    raise_hiwater();
  }
  return mapping;
}

Status SlotPool::set_area_cursor(std::uint32_t area, std::uint64_t index) {
  if (area >= area_count_) {
    return make_error(Errc::invalid_argument, "area {} is not in a pool of {} areas", area,
                      area_count_);
  }
  Area& a = areas_[area];
  const std::scoped_lock guard(a.lock);
  a.cursor = wrap_area_index(index, area_slots_);
  return {};
}

}  // namespace swiotlb
