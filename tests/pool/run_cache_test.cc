// The `fast` policy's run cache (src/pool/run_cache.h) through SlotPool:
// a map takes the run its area freed last, a run that breaks the new
// request's rules is passed over, a search that fails drains the cache
// before it gives up, drain_cache() frees every slot, the kernel policies
// and pools over an image keep no cache, and a cached run cannot be
// unmapped or synced again. The brute-force oracle in fast_policy_test.cc
// and the thread test in slot_pool_concurrency_test.cc cover it as well.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/pool/fast_policy.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kStart = 0x100000;

std::unique_ptr<SlotPool> fast_pool(std::uint64_t slots, std::uint32_t areas = 1,
                                    bool magazines = true) {
  auto made =
      SlotPool::create({PhysAddr(kStart), slots, areas}, std::make_shared<FastPolicy>(magazines));
  EXPECT_TRUE(made) << made.error().message();
  return made ? std::move(*made) : nullptr;
}

SlotRequest ask(std::uint64_t size, std::uint64_t orig = 0x40000000, unsigned cpu = 0) {
  SlotRequest r;
  r.orig = PhysAddr(orig);
  r.mapping_size = size;
  r.pool_dma_start = DmaAddr(kStart);
  r.cpu = cpu;
  return r;
}

TEST(RunCache, MapTakesTheRunItsAreaFreedLast) {
  auto pool = fast_pool(256);
  ASSERT_TRUE(pool->caches_runs());
  auto a = pool->map(ask(4096));
  auto b = pool->map(ask(4096));
  auto c = pool->map(ask(4096));
  ASSERT_TRUE(a && b && c);
  ASSERT_TRUE(pool->unmap(a->tlb_addr, 0));
  ASSERT_TRUE(pool->unmap(c->tlb_addr, 0));
  EXPECT_EQ(pool->used(), 2u);
  EXPECT_EQ(pool->cached(), 4u);
  EXPECT_TRUE(pool->check_invariants());
  // Last in, first out: c's run, then a's; first fit would have taken a's.
  auto d = pool->map(ask(4096));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->tlb_addr, c->tlb_addr);
  auto e = pool->map(ask(4096));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->tlb_addr, a->tlb_addr);
  const PoolStats stats = pool->stats();
  EXPECT_EQ(stats.cache_hits, 2u);
  EXPECT_EQ(stats.maps, 5u);
  EXPECT_EQ(stats.cached, 0u);
  EXPECT_EQ(pool->used(), 6u);
  EXPECT_EQ(pool->hiwater(), 6u);
  EXPECT_TRUE(pool->check_invariants());
}

TEST(RunCache, OnlyRunsOfTheSameLengthAreTaken) {
  auto pool = fast_pool(256);
  auto a = pool->map(ask(4096));
  ASSERT_TRUE(a);
  ASSERT_TRUE(pool->unmap(a->tlb_addr, 0));
  auto b = pool->map(ask(512));  // one slot: a's two-slot run stays cached
  ASSERT_TRUE(b);
  EXPECT_NE(b->index, a->index);
  EXPECT_EQ(pool->cached(), 2u);
  EXPECT_EQ(pool->stats().cache_hits, 0u);
}

TEST(RunCache, ARunThatBreaksTheKeptBitsIsPassedOver) {
  auto pool = fast_pool(256);
  // min_align_mask 0xfff keeps bit 11 of orig: the slot's parity.
  SlotRequest odd = ask(512, 0x40000800);
  odd.min_align_mask = 0xfff;
  auto a = pool->map(odd);
  ASSERT_TRUE(a);
  EXPECT_EQ((a->tlb_addr - pool->start()) >> kSlotShift & 1, 1u);
  ASSERT_TRUE(pool->unmap(a->tlb_addr, 0xfff));
  SlotRequest even = ask(512, 0x40000000);
  even.min_align_mask = 0xfff;
  auto b = pool->map(even);
  ASSERT_TRUE(b);
  EXPECT_EQ((b->tlb_addr - pool->start()) >> kSlotShift & 1, 0u);
  EXPECT_EQ(pool->stats().cache_hits, 0u);
  auto c = pool->map(odd);  // fits the cached run again
  ASSERT_TRUE(c);
  EXPECT_EQ(c->tlb_addr, a->tlb_addr);
  EXPECT_EQ(pool->stats().cache_hits, 1u);
  EXPECT_TRUE(pool->check_invariants());
}

TEST(RunCache, ARunThatBreaksTheAlignmentIsPassedOver) {
  auto pool = fast_pool(256);
  auto pad = pool->map(ask(512));  // slot 0
  auto a = pool->map(ask(512));    // slot 1: not page-aligned
  ASSERT_TRUE(pad && a);
  ASSERT_TRUE(pool->unmap(a->tlb_addr, 0));
  SlotRequest aligned = ask(512);
  aligned.alloc_align_mask = kPageSize - 1;
  auto b = pool->map(aligned);
  ASSERT_TRUE(b);
  EXPECT_EQ((b->index.value() << kSlotShift) % kPageSize, 0u);
  EXPECT_EQ(pool->stats().cache_hits, 0u);
}

TEST(RunCache, ARunThatCrossesTheBoundaryIsPassedOver) {
  auto pool = fast_pool(256);
  auto first = pool->map(ask(512));  // slot 0
  auto a = pool->map(ask(3000));     // slots 1-2 (under a page: no page alignment)
  ASSERT_TRUE(first && a);
  ASSERT_EQ(a->index.value(), 1u);
  ASSERT_TRUE(pool->unmap(a->tlb_addr, 0));
  // A boundary every two slots: a run of two must start on an even slot.
  SlotRequest bounded = ask(3000);
  bounded.seg_boundary_mask = 2 * kSlotSize - 1;
  auto b = pool->map(bounded);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->index.value() % 2, 0u);
  EXPECT_EQ(pool->stats().cache_hits, 0u);
  auto c = pool->map(ask(3000));  // no boundary: the cached run does
  ASSERT_TRUE(c);
  EXPECT_EQ(c->index.value(), 1u);
  EXPECT_EQ(pool->stats().cache_hits, 1u);
  EXPECT_TRUE(pool->check_invariants());
}

TEST(RunCache, AFailedSearchDrainsTheCacheFirst) {
  auto pool = fast_pool(128);
  std::vector<SlotMapping> small;
  for (int i = 0; i < 64; ++i) {
    auto m = pool->map(ask(4096));
    ASSERT_TRUE(m);
    small.push_back(*m);
  }
  ASSERT_FALSE(pool->map(ask(512)));  // full
  // Give back every other run: 32 cached runs would leave no two adjacent
  // free slots anywhere; give back their neighbours too, beyond the cache's
  // budget: some go back to the area, the rest stay cached.
  for (const SlotMapping& m : small) {
    ASSERT_TRUE(pool->unmap(m.tlb_addr, 0));
  }
  EXPECT_EQ(pool->used(), 0u);
  EXPECT_GT(pool->cached(), 0u);
  // A whole segment: only there once every cached run is back.
  auto whole = pool->map(ask(kSegmentBytes));
  ASSERT_TRUE(whole) << whole.error().message();
  EXPECT_EQ(pool->cached(), 0u);
  EXPECT_TRUE(pool->check_invariants());
}

TEST(RunCache, DrainFreesEverySlot) {
  auto pool = fast_pool(256, 2);  // a segment per area
  std::vector<SlotMapping> live;
  for (unsigned i = 0; i < 40; ++i) {
    auto m = pool->map(ask(512 + 2048 * (i % 5), 0x40000000, i));
    ASSERT_TRUE(m);
    live.push_back(*m);
  }
  for (const SlotMapping& m : live) {
    ASSERT_TRUE(pool->unmap(m.tlb_addr, 0));
  }
  EXPECT_GT(pool->cached(), 0u);
  EXPECT_LT(pool->largest_free_run(), kSegmentSlots);
  pool->drain_cache();
  EXPECT_EQ(pool->cached(), 0u);
  EXPECT_EQ(pool->used(), 0u);
  EXPECT_EQ(pool->largest_free_run(), kSegmentSlots);
  EXPECT_TRUE(pool->check_invariants());
}

TEST(RunCache, ACachedRunIsNotMappedAnyMore) {
  auto pool = fast_pool(128);
  SlotRequest r = ask(4096);
  r.owner = 7;
  auto a = pool->map(r);
  ASSERT_TRUE(a);
  EXPECT_EQ(pool->count_owned(7), 1u);
  ASSERT_TRUE(pool->unmap(a->tlb_addr, 0));
  EXPECT_EQ(pool->cached(), 2u);
  EXPECT_EQ(pool->count_owned(7), 0u);
  auto again = pool->unmap(a->tlb_addr, 0);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::not_mapped);
  EXPECT_FALSE(pool->find_mapping(a->tlb_addr, 1));
  EXPECT_FALSE(pool->begin_unmap(a->tlb_addr, 0));
  EXPECT_TRUE(pool->check_invariants());
}

TEST(RunCache, UnmapWithAClaimChecksItBeforeCaching) {
  auto pool = fast_pool(128);
  SlotRequest r = ask(4096);
  r.dir = Direction::to_device;
  r.owner = 3;
  auto a = pool->map(r);
  ASSERT_TRUE(a);
  const MappingClaim wrong{4096, Direction::from_device, 3};
  auto refused = pool->unmap(a->tlb_addr, 0, &wrong);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::mapping_mismatch);
  EXPECT_EQ(pool->used(), 2u);
  const MappingClaim right{4096, Direction::to_device, 3};
  EXPECT_TRUE(pool->unmap(a->tlb_addr, 0, &right));
  EXPECT_EQ(pool->used(), 0u);
}

TEST(RunCache, BeginAndFinishUnmapParkTheRun) {
  auto pool = fast_pool(128);
  auto a = pool->map(ask(4096));
  ASSERT_TRUE(a);
  auto going = pool->begin_unmap(a->tlb_addr, 0);
  ASSERT_TRUE(going);
  EXPECT_FALSE(pool->unmap(a->tlb_addr, 0));  // being unmapped
  pool->finish_unmap(*going);
  EXPECT_EQ(pool->cached(), 2u);
  auto b = pool->map(ask(4096));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->tlb_addr, a->tlb_addr);
  EXPECT_TRUE(pool->check_invariants());
}

TEST(RunCache, ManyRunsGoThroughTheDepotAndBackToTheArea) {
  auto pool = fast_pool(4096);
  std::vector<SlotMapping> live;
  for (int i = 0; i < 600; ++i) {
    auto m = pool->map(ask(2048));
    ASSERT_TRUE(m);
    live.push_back(*m);
  }
  // One size class holds two magazines of 8 runs, the depot 4 more; past
  // that the depot's oldest magazine goes back to the area.
  for (const SlotMapping& m : live) {
    ASSERT_TRUE(pool->unmap(m.tlb_addr, 0));
    ASSERT_LE(pool->cached(), 48u);
  }
  EXPECT_GT(pool->cached(), 0u);
  EXPECT_EQ(pool->used(), 0u);
  EXPECT_TRUE(pool->check_invariants());
}

TEST(RunCache, LongRunsAreNotCached) {
  auto pool = fast_pool(256);
  auto a = pool->map(ask(32 * kSlotSize + 1));  // 33 slots
  ASSERT_TRUE(a);
  ASSERT_TRUE(pool->unmap(a->tlb_addr, 0));
  EXPECT_EQ(pool->cached(), 0u);
}

TEST(RunCache, KernelPoliciesAndImagesKeepNone) {
  for (const char* name : {"linux", "linux-6.1"}) {
    auto policy = make_slot_policy(name);
    ASSERT_TRUE(policy);
    auto pool = SlotPool::create({PhysAddr(kStart), 128, 1}, *policy);
    ASSERT_TRUE(pool);
    EXPECT_FALSE((*pool)->caches_runs()) << name;
  }
  EXPECT_FALSE(fast_pool(128, 1, false)->caches_runs());
}

}  // namespace
}  // namespace swiotlb
