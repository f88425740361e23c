// The high-water mark against its definition: with one thread, after every
// map and unmap, hiwater() is the most slots in use at once since the pool
// was made or the mark was reset (and a reset leaves 0 until the next map),
// however the maps spread over the areas. The pool keeps it without a
// pool-wide counter (per-area gates, see slot_pool.cc); this pins that it
// still gives the kernel's number.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {
namespace {

void run_against_model(const std::string& policy_name) {
  const auto areas = *rc::gen::element(1u, 2u, 4u, 8u);
  const std::uint64_t slots = areas * kSegmentSlots * *rc::gen::inRange<std::uint64_t>(1, 3);
  auto policy = make_slot_policy(policy_name);
  RC_ASSERT(static_cast<bool>(policy));
  auto pool = SlotPool::create({PhysAddr(0x100000), slots, areas}, *policy);
  RC_ASSERT(static_cast<bool>(pool));

  std::vector<PhysAddr> live;
  std::uint64_t high = 0;
  const auto steps = *rc::gen::inRange(1, 400);
  for (int step = 0; step < steps; ++step) {
    const int op = *rc::gen::inRange(0, 100);
    if (op < 3) {
      (*pool)->reset_hiwater();
      high = 0;
      RC_ASSERT((*pool)->hiwater() == 0u);
    } else if (live.empty() || op < 60) {
      SlotRequest r;
      r.orig = PhysAddr(0x40000000);
      r.mapping_size = *rc::gen::inRange<std::uint64_t>(1, 40 * kSlotSize);
      r.pool_dma_start = DmaAddr(0x100000);
      r.cpu = *rc::gen::inRange(0u, 16u);
      auto m = (*pool)->map(r);
      if (m) {
        live.push_back(m->tlb_addr);
        high = std::max(high, (*pool)->used());
      }
    } else {
      const auto at = *rc::gen::inRange<std::size_t>(0, live.size());
      RC_ASSERT(static_cast<bool>((*pool)->unmap(live[at], 0)));
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(at));
    }
    RC_ASSERT((*pool)->hiwater() == high);
    RC_ASSERT(static_cast<bool>((*pool)->check_invariants()));
  }
}

RC_GTEST_PROP(SlotPoolHiwater, IsTheRunningMaximumWithLinux, ()) {
  run_against_model("linux");
}
RC_GTEST_PROP(SlotPoolHiwater, IsTheRunningMaximumWithFast, ()) {
  run_against_model("fast");
}

TEST(SlotPoolHiwater, AreasThatPeakApartAndTogether) {
  auto policy = make_slot_policy("fast");
  ASSERT_TRUE(policy);
  auto pool = SlotPool::create({PhysAddr(0x100000), 512, 4}, *policy);
  ASSERT_TRUE(pool);
  auto map = [&](unsigned cpu, std::uint64_t slots) {
    SlotRequest r;
    r.orig = PhysAddr(0x40000000);
    r.mapping_size = slots * kSlotSize;
    r.pool_dma_start = DmaAddr(0x100000);
    r.cpu = cpu;
    auto m = (*pool)->map(r);
    EXPECT_TRUE(m);
    return m ? m->tlb_addr : PhysAddr();
  };
  const PhysAddr a = map(0, 10);
  EXPECT_EQ((*pool)->hiwater(), 10u);
  ASSERT_TRUE((*pool)->unmap(a, 0));
  const PhysAddr b = map(1, 8);  // area 1 peaks at 8 while area 0 is empty
  EXPECT_EQ((*pool)->hiwater(), 10u);
  const PhysAddr c = map(0, 3);  // 11 in use: area 0 within its old peak
  EXPECT_EQ((*pool)->hiwater(), 11u);
  ASSERT_TRUE((*pool)->unmap(b, 0));
  ASSERT_TRUE((*pool)->unmap(c, 0));
  EXPECT_EQ((*pool)->used(), 0u);
  EXPECT_EQ((*pool)->hiwater(), 11u);
  EXPECT_TRUE((*pool)->check_invariants());
}

}  // namespace
}  // namespace swiotlb
