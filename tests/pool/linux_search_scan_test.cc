// The `linux` and `linux-6.1` searches test several candidates at once
// where the stride allows. Each answer must be its kernel loop's, candidate
// for candidate: the same slot, the same outcome and the same count of steps.
// Each case here runs both on the same counters: random ones, with every
// kind of plan (odd masks from traces included), cursor, area and boundary.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/pool/linux_policy.h"

namespace swiotlb {
namespace {

// The two loops' tests on one candidate.
bool lacks_kept_bits(const SearchPlan& plan, std::uint64_t addr) {
  return plan.orig != 0 && (addr & plan.iotlb_align_mask) != (plan.orig & plan.iotlb_align_mask);
}
bool takes(const AreaView& area, const SearchPlan& plan, std::uint64_t slot) {
  return !AreaView::crosses_boundary(plan, slot) && area.list[slot] >= plan.nslots;
}

// The kernel's loop as it reads, one candidate per step.
AreaSearch kernel_loop(const AreaView& area, const SearchPlan& plan) {
  AreaSearch result;
  std::uint32_t index = area.cursor;
  for (std::uint64_t checked = 0; checked < area.nslabs;) {
    ++result.steps;
    const std::uint64_t slot = area.base + index;
    const std::uint64_t addr = plan.tbl_dma + (slot << kSlotShift);
    if ((addr & plan.alloc_align_mask) != 0 || lacks_kept_bits(plan, addr)) {
      index = area.wrap(index + 1ull);
      ++checked;
      continue;
    }
    if (takes(area, plan, slot)) {
      result.outcome = AreaSearch::Outcome::found;
      result.index = index;
      return result;
    }
    index = area.wrap(std::uint64_t{index} + plan.stride);
    checked += plan.stride;
  }
  return result;
}

// The 6.1 loop as it reads, one candidate per step.
AreaSearch kernel_61_loop(const AreaView& area, const SearchPlan& plan) {
  AreaSearch result;
  const std::uint32_t first = area.wrap(kernel_align(area.cursor, plan.stride));
  std::uint32_t index = first;
  do {
    if (++result.steps > area.nslabs) {
      result.outcome = AreaSearch::Outcome::would_spin;
      return result;
    }
    const std::uint64_t slot = area.base + index;
    const std::uint64_t addr = plan.tbl_dma + (slot << kSlotShift);
    if (lacks_kept_bits(plan, addr)) {
      index = area.wrap(index + 1ull);
      continue;
    }
    if (takes(area, plan, slot)) {
      result.outcome = AreaSearch::Outcome::found;
      result.index = index;
      return result;
    }
    index = area.wrap(std::uint64_t{index} + plan.stride);
  } while (index != first);
  return result;
}

struct Case {
  std::vector<std::uint16_t> list;  // exactly the pool's counters: reading past them is caught
  AreaView area;
  SearchPlan plan;
};

// `linux61`: plans by the 6.1 policy rather than mainline's.
Case random_case(std::mt19937_64& rng, bool linux61 = false) {
  auto pick = [&rng](std::uint64_t n) {
    return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng);
  };
  Case c;
  const std::uint32_t areas = 1u << pick(3);
  const auto area_slots = static_cast<std::uint32_t>(1 + pick(pick(2) == 0 ? 40 : 700));
  c.list.resize(std::uint64_t{areas} * area_slots);
  // Mostly taken slots (0) and short runs, now and then long ones: the
  // search has to walk before it finds one.
  const std::uint64_t density = 1 + pick(8);
  for (std::uint16_t& counter : c.list) {
    counter = pick(density) == 0 ? static_cast<std::uint16_t>(pick(129)) : 0;
  }
  const auto a = static_cast<std::uint32_t>(pick(areas));
  c.area = AreaView{c.list.data(), a * area_slots, area_slots,
                    static_cast<std::uint32_t>(pick(area_slots)), nullptr};

  SlotRequest request;
  const std::uint64_t min_aligns[] = {0, 0xfff, 0x7ff, 0x1fff, 0x3, pick(1u << 16)};
  const std::uint64_t alloc_aligns[] = {0, 0xfff, 0xffff, 0x1fff, pick(1u << 18)};
  const std::uint64_t boundaries[] = {~std::uint64_t{0}, 0xffffffff, 0xffff, 0x3ffff, 0x7ff};
  request.min_align_mask = min_aligns[pick(6)];
  request.alloc_align_mask = pick(3) == 0 ? alloc_aligns[pick(5)] : 0;
  request.orig = PhysAddr(pick(2) == 0 ? 0 : pick(std::uint64_t{1} << 40));
  request.mapping_size = 1 + pick(pick(2) == 0 ? 4096 : 300000);
  request.pool_dma_start = DmaAddr(pick(64) << kSlotShift);
  request.seg_boundary_mask = boundaries[pick(5)];
  if (linux61) {
    Result<SearchPlan> plan = Linux61Policy().plan(request);
    c.plan = plan ? *plan : SearchPlan{};
  } else {
    mainline_plan(request, c.plan);
  }
  c.plan.tbl_dma = request.pool_dma_start.value() & request.seg_boundary_mask;
  c.plan.max_slots = (request.seg_boundary_mask >> kSlotShift) + 1;
  return c;
}

// How the outcomes fell over a run of random cases.
struct Tally {
  int found = 0;
  int spins = 0;
};

// Runs `policy` and `loop` (its kernel's loop) on 20000 random cases and
// expects the same answer from both; stops at the first difference.
template <class Loop>
void expect_same_answers(const SlotPolicy& policy, Loop loop, bool linux61, std::uint64_t seed,
                         Tally& tally) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 20000; ++i) {
    const Case c = random_case(rng, linux61);
    const AreaSearch want = loop(c.area, c.plan);
    const AreaSearch got = policy.search_area(c.area, c.plan);
    ASSERT_EQ(got.outcome, want.outcome) << "case " << i;
    ASSERT_EQ(got.steps, want.steps) << "case " << i << " stride " << c.plan.stride;
    if (want.outcome == AreaSearch::Outcome::found) {
      ASSERT_EQ(got.index, want.index) << "case " << i;
    }
    tally.found += want.outcome == AreaSearch::Outcome::found ? 1 : 0;
    tally.spins += want.outcome == AreaSearch::Outcome::would_spin ? 1 : 0;
  }
}

TEST(LinuxSearchScan, FindsWhatTheKernelsLoopFindsInAsManySteps) {
  Tally tally;
  expect_same_answers(LinuxPolicy(), kernel_loop, /*linux61=*/false, 20261206, tally);
  // Both outcomes are well represented, or the comparison says little.
  EXPECT_GT(tally.found, 2000);
  EXPECT_LT(tally.found, 18000);
}

TEST(Linux61SearchScan, FindsWhatThe61LoopFindsInAsManySteps) {
  Tally tally;
  expect_same_answers(Linux61Policy(), kernel_61_loop, /*linux61=*/true, 61, tally);
  // Every outcome is represented, the loop that would spin included.
  EXPECT_GT(tally.found, 2000);
  EXPECT_LT(tally.found, 18000);
  EXPECT_GT(tally.spins, 20);
}

// The candidates a vector load covers, at both ends of the pool: the first
// fitting run is the very last slot, after a long walk along the stride.
TEST(LinuxSearchScan, TheLastSlotOfThePoolIsFoundAlongEachStride) {
  const LinuxPolicy policy;
  for (const std::uint64_t size : {std::uint64_t{2048}, std::uint64_t{4096}}) {
    for (std::uint32_t slots = 1; slots < 40; ++slots) {
      std::vector<std::uint16_t> list(slots, 0);
      list.back() = 2;
      SlotRequest request;
      request.mapping_size = size;
      SearchPlan plan;
      mainline_plan(request, plan);
      plan.max_slots = std::uint64_t{1} << 20;
      const AreaView area{list.data(), 0, slots, 0, nullptr};
      const AreaSearch want = kernel_loop(area, plan);
      const AreaSearch got = policy.search_area(area, plan);
      ASSERT_EQ(got.outcome, want.outcome) << slots;
      ASSERT_EQ(got.steps, want.steps) << slots;
      ASSERT_EQ(got.index, want.index) << slots;
    }
  }
}

}  // namespace
}  // namespace swiotlb
