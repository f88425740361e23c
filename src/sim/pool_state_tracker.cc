#include "pool_state_tracker.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace swiotlb::sim {

PoolStateTracker::PoolStateTracker(SlotPool& pool, std::vector<TraceState> states)
    : pool_(pool),
      states_(std::move(states)),
      cursor_known_(pool.area_count(), states_.empty()),
      area_used_ok_(pool.area_count(), true),
      known_(states_.empty()) {
  report_.state_recorded = !states_.empty();
}

bool PoolStateTracker::occupy(const EarlierMapping& mapping, const SlotRequest& request) {
  Result<SlotMapping> taken = pool_.occupy(PhysAddr(mapping.tlb), request);
  if (!taken) {
    ++report_.earlier_not_placed;
    return false;
  }
  ++report_.earlier_mappings;
  report_.earlier_slots += taken->nslots.value();
  return true;
}

void PoolStateTracker::apply_until(std::uint32_t line) {
  while (next_ < states_.size() && states_[next_].line < line) {
    apply(states_[next_]);
    ++next_;
  }
  update_known();
}

void PoolStateTracker::check(bool same, std::uint32_t line) {
  ++report_.state_values_checked;
  if (!same) {
    ++report_.state_values_differing;
    if (!report_.first_differing_line) {
      report_.first_differing_line = line;
    }
  }
}

void PoolStateTracker::apply(const TraceState& state) {
  const PoolStats now = pool_.stats();
  if (!state.area) {
    if (state.total_used) {
      pool_used_ok_ = *state.total_used == now.used;
      pool_used_line_ = state.line;
      pool_used_recorded_ = *state.total_used;
      pool_used_here_ = now.used;
      check(pool_used_ok_, state.line);
    }
    return;
  }
  const std::uint32_t area = *state.area;
  if (area >= cursor_known_.size()) {
    // The trace's pool has more areas than the replay's: nothing of it can
    // be checked here.
    check(false, state.line);
    return;
  }
  if (state.index) {
    if (!cursor_known_[area]) {
      (void)pool_.set_area_cursor(area, *state.index);
      cursor_known_[area] = true;
      ++report_.cursors_set;
    } else {
      check(wrap_area_index(*state.index, pool_.area_slot_count()) == now.areas[area].cursor,
            state.line);
    }
  }
  if (state.used) {
    area_used_ok_[area] = *state.used == now.areas[area].used;
    check(area_used_ok_[area], state.line);
  }
}

void PoolStateTracker::update_known() {
  known_ = pool_used_ok_ &&
           std::all_of(cursor_known_.begin(), cursor_known_.end(), [](bool b) { return b; }) &&
           std::all_of(area_used_ok_.begin(), area_used_ok_.end(), [](bool b) { return b; });
}

PoolStateReport PoolStateTracker::finish(std::uint64_t left_out) {
  if (left_out != 0) {
    const auto unknown = std::count(cursor_known_.begin(), cursor_known_.end(), false);
    if (unknown != 0) {
      report_.unknown_reason =
          fmt::format("no '# state' line gives the search cursor of {} of the {} areas", unknown,
                      cursor_known_.size());
    } else if (!pool_used_ok_) {
      report_.unknown_reason = fmt::format(
          "'# state' at line {} says the pool held {} slots where the replay holds {}: mappings "
          "made before the capture and never unmapped in it hold slots the replay cannot place",
          pool_used_line_, pool_used_recorded_, pool_used_here_);
    } else {
      report_.unknown_reason =
          "an area's recorded 'used' differs from the replay's: the trace does not show every "
          "mapping made before its first event";
    }
  }
  return std::move(report_);
}

}  // namespace swiotlb::sim
