// The pieces of the `fast` policy's index against slot-by-slot reference
// answers: the 128-bit run arithmetic, the placement masks (against the
// kernel's per-slot tests, as LinuxPolicy applies them), and the segment
// sets (against std::set).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "../../src/pool/placement.h"
#include "../../src/pool/segment_bits.h"
#include "../../src/pool/segment_set.h"
#include "swiotlb/core/constants.h"

namespace swiotlb::fast {
namespace {

bool bit(SegmentBits x, unsigned p) {
  return (x >> p & 1) != 0;
}

SegmentBits make_bits(std::uint64_t low, std::uint64_t high) {
  return SegmentBits{high} << 64 | low;
}

// A segment map with long and short runs alike: random words, ANDed or ORed
// with more random words to push them towards empty or full.
SegmentBits gen_segment() {
  auto word = [] {
    std::uint64_t w = *rc::gen::arbitrary<std::uint64_t>();
    switch (*rc::gen::inRange(0, 4)) {
      case 0:
        return w & *rc::gen::arbitrary<std::uint64_t>();
      case 1:
        return w | *rc::gen::arbitrary<std::uint64_t>();
      case 2:
        return *rc::gen::element(std::uint64_t{0}, ~std::uint64_t{0});
      default:
        return w;
    }
  };
  return make_bits(word(), word());
}

unsigned reference_run(SegmentBits x, unsigned p) {
  unsigned n = 0;
  while (p + n < kSegmentBits && bit(x, p + n)) {
    ++n;
  }
  return n;
}

RC_GTEST_PROP(SegmentBitsTest, RunStartsMarkEveryFreeRun, ()) {
  const SegmentBits x = gen_segment();
  const auto n = *rc::gen::inRange(1u, 130u);
  const SegmentBits starts = run_starts(x, n);
  for (unsigned p = 0; p < kSegmentBits; ++p) {
    RC_ASSERT(bit(starts, p) == (reference_run(x, p) >= n));
  }
}

RC_GTEST_PROP(SegmentBitsTest, LongestRunIsTheLongest, ()) {
  const SegmentBits x = gen_segment();
  unsigned longest = 0;
  for (unsigned p = 0; p < kSegmentBits; ++p) {
    longest = std::max(longest, reference_run(x, p));
  }
  RC_ASSERT(longest_run(x) == longest);
}

RC_GTEST_PROP(SegmentBitsTest, RunAroundMeasuresTheWholeRun, ()) {
  const auto first = *rc::gen::inRange(0u, 128u);
  const auto count = *rc::gen::inRange(1u, 129u - first);
  const SegmentBits x = gen_segment() | range_bits(first, count);
  unsigned run_first = first;
  while (run_first > 0 && bit(x, run_first - 1)) {
    --run_first;
  }
  RC_ASSERT(run_around(x, first, count) == reference_run(x, run_first));
}

TEST(SegmentBitsTest, EdgesOfTheSegment) {
  EXPECT_EQ(longest_run(kAllSlots), 128u);
  EXPECT_EQ(longest_run(0), 0u);
  EXPECT_EQ(run_starts(kAllSlots, 128), SegmentBits{1});
  EXPECT_EQ(run_starts(kAllSlots, 129), SegmentBits{0});
  EXPECT_EQ(lowest_bit(SegmentBits{1} << 127), 127u);
  EXPECT_EQ(highest_bit(SegmentBits{1}), 0u);
  EXPECT_EQ(range_bits(0, 128), kAllSlots);
  EXPECT_EQ(rotate_right(SegmentBits{1}, 1), SegmentBits{1} << 127);
}

// The kernel's per-slot tests, as LinuxPolicy::search_area applies them.
bool kernel_accepts(const SearchPlan& plan, std::uint64_t slot) {
  const std::uint64_t addr = plan.tbl_dma + (slot << kSlotShift);
  if ((addr & plan.alloc_align_mask) != 0) {
    return false;
  }
  if (plan.orig != 0 && (addr & plan.iotlb_align_mask) != (plan.orig & plan.iotlb_align_mask)) {
    return false;
  }
  return !AreaView::crosses_boundary(plan, slot);
}

std::uint64_t gen_low_mask(int max_bits) {
  return (std::uint64_t{1} << *rc::gen::inRange(0, max_bits)) - 1;
}

// Plans as LinuxPolicy makes them (masks 2^n - 1, disjoint) and arbitrary
// ones (any bits, overlapping), on any pool address.
SearchPlan gen_plan() {
  SearchPlan plan;
  const bool arbitrary = *rc::gen::arbitrary<bool>();
  plan.orig = *rc::gen::element<std::uint64_t>(0, 1) == 0
                  ? 0
                  : *rc::gen::inRange<std::uint64_t>(1, std::uint64_t{1} << 40);
  plan.nslots = *rc::gen::inRange(1u, 129u);
  if (arbitrary) {
    plan.alloc_align_mask = *rc::gen::inRange<std::uint64_t>(0, 1u << 22) | (kSlotSize - 1);
    plan.iotlb_align_mask = *rc::gen::inRange<std::uint64_t>(0, 1u << 22);
  } else {
    plan.alloc_align_mask = gen_low_mask(22) | (kSlotSize - 1);
    plan.iotlb_align_mask = gen_low_mask(22) & ~plan.alloc_align_mask;
  }
  const std::uint64_t boundary = *rc::gen::element(~std::uint64_t{0}, gen_low_mask(24));
  const std::uint64_t start = *rc::gen::inRange<std::uint64_t>(0, std::uint64_t{1} << 34) &
                              (*rc::gen::arbitrary<bool>() ? ~(kSlotSize - 1) : ~std::uint64_t{0});
  plan.tbl_dma = start & boundary;
  plan.max_slots = (boundary >> kSlotShift) + 1;
  return plan;
}

RC_GTEST_PROP(PlacementTest, AllowsExactlyTheStartsTheKernelAccepts, ()) {
  const SearchPlan plan = gen_plan();
  const Placement placement(plan);
  const std::uint64_t segment = *rc::gen::inRange<std::uint64_t>(0, 1u << 16) * kSegmentSlots;
  const SegmentBits allowed = placement.impossible() ? 0 : placement.allowed(segment);
  for (unsigned p = 0; p < kSegmentSlots; ++p) {
    // Starts whose run would leave the segment do not matter: no free run
    // reaches past it.
    if (p + plan.nslots <= kSegmentSlots) {
      RC_ASSERT(bit(allowed, p) == kernel_accepts(plan, segment + p));
    }
  }
}

RC_GTEST_PROP(SegmentSetTest, BehavesLikeASet, ()) {
  const auto size = *rc::gen::element(1u, 63u, 64u, 65u, 256u, 4097u, 300000u);
  SegmentSet set(size);
  std::set<std::uint32_t> model;
  const auto steps = *rc::gen::inRange(1, 200);
  for (int i = 0; i < steps; ++i) {
    const auto at = *rc::gen::inRange(0u, size);
    if (*rc::gen::arbitrary<bool>()) {
      set.insert(at);
      model.insert(at);
    } else {
      set.erase(at);
      model.erase(at);
    }
    const auto from = *rc::gen::inRange(0u, size + 1);
    const auto next = model.lower_bound(from);
    RC_ASSERT(set.find_next(from) == (next == model.end() ? SegmentSet::kNone : *next));
    RC_ASSERT(set.contains(at) == (model.count(at) != 0));
  }
  RC_ASSERT(static_cast<bool>(set.check()));
}

}  // namespace
}  // namespace swiotlb::fast
