// SlotPool::map_cached, the hit path of map(): it serves what map() would
// have served from the run cache, with the same mapping, and on anything
// else (an empty cache, a request with an alignment, a long run, a run that
// breaks the request's rules, a request map() refuses, a pool without a
// cache) it answers false and changes nothing.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>

#include "support/cached_pool.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/pool/fast_policy.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {
namespace {

using testing::ask;
using testing::kCachedPoolStart;

constexpr std::uint64_t kStart = kCachedPoolStart;

std::unique_ptr<SlotPool> fast_pool(std::uint32_t areas = 1) {
  return testing::fast_pool(256, areas);
}

using testing::seen;
using Seen = testing::PoolSeen;

// Maps and unmaps `request` so that its run is cached; returns the address.
PhysAddr cache_one(SlotPool& pool, const SlotRequest& request) {
  auto mapped = pool.map(request);
  EXPECT_TRUE(mapped) << mapped.error().message();
  EXPECT_TRUE(pool.unmap(mapped->tlb_addr, request.min_align_mask));
  return mapped->tlb_addr;
}

TEST(MapCached, AnEmptyCacheIsAMissThatChangesNothing) {
  auto pool = fast_pool();
  SlotMapping mapping;
  const Seen before = seen(*pool);
  EXPECT_FALSE(pool->map_cached(ask(512), mapping));
  EXPECT_EQ(seen(*pool), before);
}

TEST(MapCached, AHitIsTheMappingMapWouldHaveMade) {
  // Two pools in the same state: one served by map_cached, one by map().
  auto hit = fast_pool();
  auto twin = fast_pool();
  for (SlotPool* pool : {hit.get(), twin.get()}) {
    ASSERT_TRUE(pool->map(ask(512)));  // slot 0 stays mapped
    cache_one(*pool, ask(3000, 0x40000100));
  }
  const SlotRequest request = ask(2500, 0x50000000);
  SlotMapping got;
  ASSERT_TRUE(hit->map_cached(request, got));
  auto expected = twin->map(request);
  ASSERT_TRUE(expected);
  EXPECT_EQ(got.tlb_addr, expected->tlb_addr);
  EXPECT_EQ(got.index, expected->index);
  EXPECT_EQ(got.nslots, expected->nslots);
  EXPECT_EQ(got.area, expected->area);
  EXPECT_EQ(seen(*hit), seen(*twin));
  // The records are the same too: unmap checks them against the claim.
  const MappingClaim claim{2500, Direction::to_device, 7};
  auto info = hit->unmap(got.tlb_addr, 0, &claim);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->orig, PhysAddr(0x50000000));
  EXPECT_TRUE(hit->check_invariants());
}

TEST(MapCached, KeptBitsComeFromTheRequest) {
  auto pool = fast_pool();
  SlotRequest kept = ask(512, 0x40000a10);
  kept.min_align_mask = 0xfff;  // keeps bit 11 (the slot's parity) and the offset 0x210
  const PhysAddr first = cache_one(*pool, kept);
  SlotMapping mapping;
  ASSERT_TRUE(pool->map_cached(kept, mapping));
  EXPECT_EQ(mapping.tlb_addr, first);
  EXPECT_EQ(mapping.tlb_addr.value() & 0xfff, 0xa10u);
  ASSERT_TRUE(pool->unmap(mapping.tlb_addr, 0xfff));
  // The other parity does not fit the cached run: a miss, nothing taken.
  SlotRequest other = ask(512, 0x40000210);
  other.min_align_mask = 0xfff;
  const Seen before = seen(*pool);
  EXPECT_FALSE(pool->map_cached(other, mapping));
  EXPECT_EQ(seen(*pool), before);
}

TEST(MapCached, RequestsItDoesNotServeAreMisses) {
  auto pool = fast_pool();
  cache_one(*pool, ask(512));
  cache_one(*pool, ask(4096));
  SlotMapping mapping;
  const Seen before = seen(*pool);
  SlotRequest aligned = ask(512);
  aligned.alloc_align_mask = kSlotSize - 1;  // an allocation alignment: map() plans it
  EXPECT_FALSE(pool->map_cached(aligned, mapping));
  EXPECT_FALSE(pool->map_cached(ask(32 * kSlotSize + 1), mapping));  // 33 slots
  EXPECT_FALSE(pool->map_cached(ask(0), mapping));                   // map() refuses it
  SlotRequest bad_boundary = ask(512);
  bad_boundary.seg_boundary_mask = 0x1000;  // not 2^n - 1: map() refuses it
  EXPECT_FALSE(pool->map_cached(bad_boundary, mapping));
  SlotRequest huge_alloc = ask(512);
  huge_alloc.alloc_size = kMaxSlotCount << (kSlotShift + 1);
  EXPECT_FALSE(pool->map_cached(huge_alloc, mapping));
  EXPECT_EQ(seen(*pool), before);
  // The errors stay map()'s.
  EXPECT_EQ(pool->map(ask(0)).error().code(), Errc::invalid_argument);
  EXPECT_EQ(pool->map(bad_boundary).error().code(), Errc::invalid_argument);
  EXPECT_EQ(pool->map(huge_alloc).error().code(), Errc::invalid_argument);
}

TEST(MapCached, ItLooksOnlyInTheAreaOfTheRequestsCpu) {
  auto pool = fast_pool(2);
  SlotRequest on_cpu1 = ask(512);
  on_cpu1.cpu = 1;
  cache_one(*pool, on_cpu1);
  SlotMapping mapping;
  EXPECT_FALSE(pool->map_cached(ask(512), mapping));  // cpu 0: area 0, empty
  ASSERT_TRUE(pool->map_cached(on_cpu1, mapping));
  EXPECT_EQ(mapping.area, 1u);
}

TEST(MapCached, PoolsWithoutACacheNeverHit) {
  for (const char* name : {"linux", "linux-6.1"}) {
    auto made = testing::kernel_pool(name);
    ASSERT_TRUE(made);
    SlotPool& pool = *made;
    cache_one(pool, ask(512));
    SlotMapping mapping;
    EXPECT_FALSE(pool.map_cached(ask(512), mapping)) << name;
    EXPECT_EQ(pool.stats().maps, 1u) << name;
  }
}

}  // namespace
}  // namespace swiotlb
