// FastAreaState: keeping the per-segment maps and class sets in step with
// the slots, searching them, and checking them against the pool's free-run
// counters. Called with the area's lock held (see fast_area_state.h).
#include "fast_area_state.h"

#include <algorithm>

#include "placement.h"
#include "swiotlb/core/check.h"
#include "swiotlb/core/constants.h"

namespace swiotlb::fast {

namespace {

// classes_reached[n]: how many class limits a run of n slots reaches; the
// class to search for n slots is classes_reached[n] - 1.
constexpr std::array<std::uint8_t, kSegmentSlots + 1> make_classes_reached() {
  std::array<std::uint8_t, kSegmentSlots + 1> reached{};
  for (unsigned n = 0; n <= kSegmentSlots; ++n) {
    for (std::uint8_t limit : kClassMin) {
      reached[n] = static_cast<std::uint8_t>(reached[n] + (limit <= n ? 1 : 0));
    }
  }
  return reached;
}
constexpr std::array<std::uint8_t, kSegmentSlots + 1> kClassesReached = make_classes_reached();

}  // namespace

FastAreaState::FastAreaState(std::uint32_t nslabs)
    : segment_count_(nslabs / kSegmentSlots),
      free_(segment_count_, kAllSlots),
      longest_(segment_count_, static_cast<std::uint8_t>(kSegmentSlots)),
      exact_(segment_count_, 1) {
  for (SegmentSet& members : classes_) {
    members = SegmentSet(segment_count_);
    for (std::uint32_t s = 0; s < segment_count_; ++s) {
      members.insert(s);
    }
  }
}

void FastAreaState::on_take(std::uint32_t first, std::uint32_t nslots) {
  const std::uint32_t segment = first / kSegmentSlots;
  const unsigned offset = first % kSegmentSlots;
  SegmentBits& free = free_[segment];
  SWIOTLB_CHECK((free & range_bits(offset, nslots)) == range_bits(offset, nslots),
                "taking slots that are free");
  const unsigned run = run_around(free, offset, nslots);
  free &= ~range_bits(offset, nslots);
  // Cutting a run as long as the bound may shorten the longest run: the
  // bound still holds, but may now be above it.
  if (run >= longest_[segment]) {
    exact_[segment] = 0;
  }
}

void FastAreaState::on_release(std::uint32_t first, std::uint32_t nslots) {
  const std::uint32_t segment = first / kSegmentSlots;
  const unsigned offset = first % kSegmentSlots;
  SegmentBits& free = free_[segment];
  SWIOTLB_CHECK((free & range_bits(offset, nslots)) == 0, "freeing slots that are taken");
  free |= range_bits(offset, nslots);
  // The released slots join their free neighbours, the only run that grew;
  // if it reaches the bound, it is the longest.
  const unsigned run = run_around(free, offset, nslots);
  if (run >= longest_[segment]) {
    exact_[segment] = 1;
    if (run > longest_[segment]) {
      set_longest(segment, run);
    }
  }
}

void FastAreaState::tighten(std::uint32_t segment) {
  if (exact_[segment] == 0) {
    exact_[segment] = 1;
    set_longest(segment, longest_run(free_[segment]));
  }
}

void FastAreaState::set_longest(std::uint32_t segment, unsigned longest) {
  const unsigned before = kClassesReached[longest_[segment]];
  const unsigned after = kClassesReached[longest];
  for (unsigned k = before; k < after; ++k) {
    classes_[k].insert(segment);
  }
  for (unsigned k = after; k < before; ++k) {
    classes_[k].erase(segment);
  }
  longest_[segment] = static_cast<std::uint8_t>(longest);
}

AreaSearch FastAreaState::search(const AreaView& area, const SearchPlan& plan) {
  AreaSearch result;
  const Placement placement(plan);
  if (placement.impossible()) {
    return result;
  }
  const unsigned nslots = plan.nslots;
  const SegmentSet& candidates = classes_[kClassesReached[nslots] - 1u];
  for (std::uint32_t segment = candidates.find_next(0); segment != SegmentSet::kNone;
       segment = candidates.find_next(segment + 1)) {
    ++result.steps;
    if (longest_[segment] < nslots) {
      continue;  // in the class, but its bound falls short of nslots
    }
    const std::uint64_t segment_slot = area.base + std::uint64_t{segment} * kSegmentSlots;
    const SegmentBits starts = run_starts(free_[segment], nslots) & placement.allowed(segment_slot);
    if (starts != 0) {
      result.outcome = AreaSearch::Outcome::found;
      result.index = segment * kSegmentSlots + lowest_bit(starts);
      return result;
    }
    // Passed over: make its bound exact, so that searches for runs it does
    // not have stop coming here. That may take it out of the class being
    // walked, which does not change the members after it.
    tighten(segment);
  }
  return result;
}

Status FastAreaState::check(const AreaView& area) const {
  if (area.nslabs != segment_count_ * kSegmentSlots) {
    return make_error(Errc::out_of_range, "fast index: built for {} slots, the area has {}",
                      segment_count_ * kSegmentSlots, area.nslabs);
  }
  for (std::uint32_t segment = 0; segment < segment_count_; ++segment) {
    if (Status ok = check_segment(area, segment); !ok) {
      return ok;
    }
  }
  for (std::size_t k = 0; k < classes_.size(); ++k) {
    if (Status ok = classes_[k].check(); !ok) {
      return make_error(Errc::out_of_range, "fast index: class {}: {}", k, ok.error().message());
    }
  }
  return {};
}

Status FastAreaState::check_segment(const AreaView& area, std::uint32_t segment) const {
  const std::uint64_t first = area.base + std::uint64_t{segment} * kSegmentSlots;
  SegmentBits expect = 0;
  unsigned longest = 0;
  for (unsigned p = 0; p < kSegmentSlots; ++p) {
    expect |= area.list[first + p] != 0 ? SegmentBits{1} << p : SegmentBits{0};
    longest = std::max<unsigned>(longest, area.list[first + p]);
  }
  if (expect != free_[segment]) {
    const unsigned p = lowest_bit(expect ^ free_[segment]);
    return make_error(Errc::out_of_range,
                      "fast index: slot {} is {} in the map but has free-run "
                      "counter {}",
                      first + p, (free_[segment] >> p & 1) != 0 ? "free" : "in use",
                      area.list[first + p]);
  }
  const unsigned bound = longest_[segment];
  if (longest != longest_run(free_[segment]) || bound < longest ||
      (exact_[segment] != 0 && bound != longest)) {
    return make_error(Errc::out_of_range,
                      "fast index: segment at slot {}: longest free run {}, bound {} ({})", first,
                      longest, bound, exact_[segment] != 0 ? "exact" : "inexact");
  }
  for (std::size_t k = 0; k < classes_.size(); ++k) {
    if (classes_[k].contains(segment) != (bound >= kClassMin[k])) {
      return make_error(Errc::out_of_range,
                        "fast index: segment at slot {} (bound {}) is {}in class {} (>= {})", first,
                        bound, classes_[k].contains(segment) ? "" : "not ", k, kClassMin[k]);
    }
  }
  return {};
}

}  // namespace swiotlb::fast
