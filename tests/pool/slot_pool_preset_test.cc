// Presetting a pool (occupy, set_area_cursor): the state a replay of a
// mid-stream trace starts from. Occupied slots behave as mapped ones; the
// cursor decides where the next search starts.
#include <gtest/gtest.h>

#include <memory>

#include "swiotlb/core/constants.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kStart = 0x1000000;

std::unique_ptr<SlotPool> make_pool(const char* policy, std::uint32_t areas = 2) {
  auto p = make_slot_policy(policy);
  EXPECT_TRUE(p);
  auto made = SlotPool::create({PhysAddr(kStart), 1024, areas}, *p);
  EXPECT_TRUE(made) << made.error().message();
  return made ? std::move(*made) : nullptr;
}

SlotRequest request(std::uint64_t orig, std::uint64_t size, std::uint64_t min_align = 0) {
  SlotRequest r;
  r.orig = PhysAddr(orig);
  r.mapping_size = size;
  r.min_align_mask = min_align;
  r.pool_dma_start = DmaAddr(kStart);
  return r;
}

PhysAddr slot(std::uint64_t index, std::uint64_t offset = 0) {
  return PhysAddr(kStart + (index << kSlotShift) + offset);
}

TEST(SlotPoolPreset, OccupiedSlotsAreInUseAndUnmapFreesThem) {
  for (const char* policy : {"linux", "linux-6.1", "fast"}) {
    SCOPED_TRACE(policy);
    auto pool = make_pool(policy);
    // 5000 bytes at offset 0x200 in its slot: 3 slots from slot 10.
    Result<SlotMapping> m = pool->occupy(slot(10, 0x200), request(0x7200, 5000, 0xfff));
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(m->tlb_addr, slot(10, 0x200));
    EXPECT_EQ(m->nslots.value(), 3u);
    EXPECT_EQ(pool->used(), 3u);
    EXPECT_EQ(pool->stats().maps, 0u);  // not a map
    EXPECT_TRUE(pool->check_invariants()) << pool->check_invariants().error().message();
    // The cursor did not move: a map starts at slot 0 and cannot take 10-12.
    ASSERT_TRUE(pool->set_area_cursor(0, 9));
    Result<SlotMapping> next = pool->map(request(0x9000, 2048));
    ASSERT_TRUE(next);
    EXPECT_NE(next->index.value(), 10u);
    EXPECT_FALSE(next->index.value() >= 10 && next->index.value() <= 12);
    ASSERT_TRUE(pool->unmap(slot(10, 0x200), 0xfff));
    ASSERT_TRUE(pool->unmap(next->tlb_addr, 0));
    EXPECT_EQ(pool->used(), 0u);
    EXPECT_TRUE(pool->check_invariants());
  }
}

TEST(SlotPoolPreset, CursorDecidesWhereTheNextSearchStarts) {
  auto pool = make_pool("linux");
  ASSERT_TRUE(pool->set_area_cursor(1, 37));
  SlotRequest r = request(0x4000, 2048);
  r.cpu = 1;
  Result<SlotMapping> m = pool->map(r);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->index.value(), 512u + 37u);  // area 1 starts at slot 512
  // An index past the area wraps to 0, as the kernel's wrap_area_index.
  ASSERT_TRUE(pool->set_area_cursor(0, 512));
  Result<SlotMapping> first = pool->map(request(0x4000, 2048));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->index.value(), 0u);
  EXPECT_FALSE(pool->set_area_cursor(2, 0));
}

TEST(SlotPoolPreset, RefusesWhatNoMapCouldHaveMade) {
  auto pool = make_pool("linux");
  ASSERT_TRUE(pool->occupy(slot(20), request(0x8000, 4096)));
  // Overlapping slots.
  Result<SlotMapping> overlap = pool->occupy(slot(21), request(0x8000, 4096));
  ASSERT_FALSE(overlap);
  EXPECT_EQ(overlap.error().code(), Errc::busy);
  // An offset the request's min_align_mask does not give.
  Result<SlotMapping> offset = pool->occupy(slot(40, 0x10), request(0x8000, 512, 0xfff));
  ASSERT_FALSE(offset);
  EXPECT_EQ(offset.error().code(), Errc::invalid_argument);
  // Across a 128-slot segment, and past the pool's end.
  EXPECT_FALSE(pool->occupy(slot(127), request(0x8000, 4096)));
  EXPECT_FALSE(pool->occupy(slot(1023), request(0x8000, 4096)));
  EXPECT_FALSE(pool->occupy(PhysAddr(kStart - 2048), request(0x8000, 2048)));
  EXPECT_EQ(pool->used(), 2u);
  EXPECT_TRUE(pool->check_invariants());
}

}  // namespace
}  // namespace swiotlb
