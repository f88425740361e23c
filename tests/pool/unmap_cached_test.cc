// SlotPool::unmap_cached and begin_unmap_cached, the hit paths of unmap()
// and begin_unmap(): they leave the pool as the full calls would have, and
// on anything else (no live mapping there, a claim that does not match, a
// run too long for the cache, a full cache, a pool without a cache) they
// answer false and change nothing, so that the full call still does the
// work or says why not.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "support/cached_pool.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/pool/fast_policy.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {
namespace {

using testing::ask;
using testing::fast_pool;

constexpr std::uint64_t kStart = testing::kCachedPoolStart;
constexpr std::uint32_t kOwner = testing::kCachedPoolOwner;

MappingClaim claim_of(const SlotRequest& r) {
  return {r.mapping_size, r.dir, r.owner};
}

using testing::seen;
using Seen = testing::PoolSeen;

TEST(UnmapCached, AHitLeavesThePoolAsUnmapWould) {
  // Two pools in the same state: one unmapped by unmap_cached, one by unmap().
  auto hit = fast_pool();
  auto twin = fast_pool();
  PhysAddr addr[2];
  const SlotRequest request = ask(3000, 0x40000100);
  for (int i = 0; i < 2; ++i) {
    SlotPool& pool = i == 0 ? *hit : *twin;
    ASSERT_TRUE(pool.map(ask(512)));  // slot 0 stays mapped
    auto mapped = pool.map(request);
    ASSERT_TRUE(mapped) << mapped.error().message();
    addr[i] = mapped->tlb_addr;
  }
  ASSERT_EQ(addr[0], addr[1]);
  SlotCount nslots;
  ASSERT_TRUE(hit->unmap_cached(addr[0], 0, claim_of(request), nslots));
  const MappingClaim claim = claim_of(request);
  auto info = twin->unmap(addr[1], 0, &claim);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(nslots, info->nslots);
  EXPECT_EQ(seen(*hit), seen(*twin));
  EXPECT_EQ(hit->stats().cached, 2u);  // the run waits in the cache
  EXPECT_TRUE(hit->check_invariants());
  // The mapping is gone: both refuse it again, with the same error.
  EXPECT_FALSE(hit->unmap_cached(addr[0], 0, claim, nslots));
  EXPECT_EQ(hit->unmap(addr[0], 0, &claim).error().code(), Errc::not_mapped);
  // And the next map of the same length takes the cached run.
  SlotMapping again;
  ASSERT_TRUE(hit->map_cached(ask(2500, 0x50000000), again));
  EXPECT_EQ(again.tlb_addr, addr[0]);
}

TEST(UnmapCached, AMappingWithKeptBitsIsGivenBackAtItsOwnAddress) {
  auto pool = fast_pool();
  SlotRequest kept = ask(512, 0x40000a10);
  kept.min_align_mask = 0xfff;
  auto mapped = pool->map(kept);
  ASSERT_TRUE(mapped);
  ASSERT_EQ(mapped->tlb_addr.value() & 0xfff, 0xa10u);
  SlotCount nslots;
  // The start of its slot is not where it was handed out.
  const PhysAddr slot_start(mapped->tlb_addr.value() & ~(kSlotSize - 1));
  EXPECT_FALSE(pool->unmap_cached(slot_start, 0xfff, claim_of(kept), nslots));
  ASSERT_TRUE(pool->unmap_cached(mapped->tlb_addr, 0xfff, claim_of(kept), nslots));
  EXPECT_EQ(nslots, mapped->nslots);
  EXPECT_EQ(pool->used(), 0u);
}

TEST(UnmapCached, WhatItDoesNotTakeIsAMissThatChangesNothing) {
  auto pool = fast_pool();
  const SlotRequest request = ask(4096);
  auto mapped = pool->map(request);
  ASSERT_TRUE(mapped);
  const PhysAddr tlb = mapped->tlb_addr;
  SlotCount nslots;
  const Seen before = seen(*pool);
  MappingClaim wrong = claim_of(request);
  wrong.mapping_size = 4095;
  EXPECT_FALSE(pool->unmap_cached(tlb, 0, wrong, nslots));
  wrong = claim_of(request);
  wrong.dir = Direction::from_device;
  EXPECT_FALSE(pool->unmap_cached(tlb, 0, wrong, nslots));
  wrong = claim_of(request);
  wrong.owner = kOwner + 1;
  EXPECT_FALSE(pool->unmap_cached(tlb, 0, wrong, nslots));
  EXPECT_FALSE(pool->unmap_cached(tlb + 16, 0, claim_of(request), nslots));  // not its start
  EXPECT_FALSE(pool->unmap_cached(tlb + kSlotSize, 0, claim_of(request), nslots));
  EXPECT_FALSE(pool->unmap_cached(PhysAddr(kStart - kSlotSize), 0, claim_of(request), nslots));
  EXPECT_FALSE(pool->unmap_cached(pool->end(), 0, claim_of(request), nslots));
  EXPECT_EQ(seen(*pool), before);
  // unmap() says why, and the mapping is still live for the right claim.
  const MappingClaim short_claim{4095, Direction::to_device, kOwner};
  EXPECT_EQ(pool->unmap(tlb, 0, &short_claim).error().code(), Errc::mapping_mismatch);
  EXPECT_EQ(pool->unmap(pool->end(), 0, nullptr).error().code(), Errc::not_mapped);
  EXPECT_TRUE(pool->unmap_cached(tlb, 0, claim_of(request), nslots));
}

TEST(UnmapCached, LongRunsAndABeingUnmappedMappingAreMisses) {
  auto pool = fast_pool();
  // 33 slots: longer than any cached run, so it goes back to the area.
  const SlotRequest long_run = ask(33 * kSlotSize);
  auto mapped = pool->map(long_run);
  ASSERT_TRUE(mapped);
  SlotCount nslots;
  EXPECT_FALSE(pool->unmap_cached(mapped->tlb_addr, 0, claim_of(long_run), nslots));
  EXPECT_EQ(pool->used(), 33u);
  const MappingClaim claim = claim_of(long_run);
  ASSERT_TRUE(pool->unmap(mapped->tlb_addr, 0, &claim));
  EXPECT_EQ(pool->used(), 0u);
  // A mapping begin_unmap has marked as going is not live any more.
  const SlotRequest request = ask(512);
  auto going = pool->map(request);
  ASSERT_TRUE(going);
  auto begun = pool->begin_unmap(going->tlb_addr, 0, nullptr);
  ASSERT_TRUE(begun);
  const Seen before = seen(*pool);
  EXPECT_FALSE(pool->unmap_cached(going->tlb_addr, 0, claim_of(request), nslots));
  EXPECT_EQ(seen(*pool), before);
  pool->finish_unmap(*begun);
  EXPECT_TRUE(pool->check_invariants());
}

TEST(UnmapCached, AFullCacheIsAMissThatUnmapStillServes) {
  // A pool of 128 slots caches at most 32 of them; past that budget
  // unmap_cached declines and unmap() gives the runs back to the area.
  auto pool = fast_pool(128);
  std::vector<PhysAddr> mapped;
  const SlotRequest request = ask(2 * kSlotSize);
  for (;;) {
    auto one = pool->map(request);
    if (!one) {
      break;
    }
    mapped.push_back(one->tlb_addr);
  }
  ASSERT_EQ(pool->used(), 128u);
  std::uint64_t declined = 0;
  for (PhysAddr addr : mapped) {
    SlotCount nslots;
    if (!pool->unmap_cached(addr, 0, claim_of(request), nslots)) {
      ++declined;
      const MappingClaim claim = claim_of(request);
      ASSERT_TRUE(pool->unmap(addr, 0, &claim));
    }
  }
  EXPECT_GT(declined, 0u);
  EXPECT_EQ(pool->used(), 0u);
  EXPECT_LE(pool->stats().cached, 32u);
  EXPECT_TRUE(pool->check_invariants());
}

TEST(BeginUnmapCached, MarksTheMappingGoingAsBeginUnmapWould) {
  auto hit = fast_pool();
  auto twin = fast_pool();
  SlotRequest request = ask(3000, 0x40000100);
  request.dir = Direction::from_device;
  PhysAddr addr[2];
  for (int i = 0; i < 2; ++i) {
    auto mapped = (i == 0 ? *hit : *twin).map(request);
    ASSERT_TRUE(mapped);
    addr[i] = mapped->tlb_addr;
  }
  MappingInfo info;
  ASSERT_TRUE(hit->begin_unmap_cached(addr[0], 0, claim_of(request), info));
  const MappingClaim claim = claim_of(request);
  auto expected = twin->begin_unmap(addr[1], 0, &claim);
  ASSERT_TRUE(expected);
  EXPECT_EQ(info.tlb_addr, expected->tlb_addr);
  EXPECT_EQ(info.orig, expected->orig);
  EXPECT_EQ(info.mapping_size, expected->mapping_size);
  EXPECT_EQ(info.dir, expected->dir);
  EXPECT_EQ(info.owner, expected->owner);
  EXPECT_EQ(info.index, expected->index);
  EXPECT_EQ(info.nslots, expected->nslots);
  // Going: neither half of an unmap takes it again until it is finished.
  MappingInfo again;
  EXPECT_FALSE(hit->begin_unmap_cached(addr[0], 0, claim, again));
  EXPECT_EQ(hit->begin_unmap(addr[0], 0, &claim).error().code(), Errc::not_mapped);
  EXPECT_EQ(seen(*hit), seen(*twin));
  hit->finish_unmap(info);
  twin->finish_unmap(*expected);
  EXPECT_EQ(seen(*hit), seen(*twin));
  EXPECT_EQ(hit->used(), 0u);
  EXPECT_TRUE(hit->check_invariants());
}

TEST(BeginUnmapCached, WhatItDoesNotTakeIsAMissThatChangesNothing) {
  auto pool = fast_pool();
  const SlotRequest request = ask(4096);
  auto mapped = pool->map(request);
  ASSERT_TRUE(mapped);
  MappingInfo info;
  MappingClaim wrong = claim_of(request);
  wrong.mapping_size = 1;
  EXPECT_FALSE(pool->begin_unmap_cached(mapped->tlb_addr, 0, wrong, info));
  EXPECT_FALSE(pool->begin_unmap_cached(mapped->tlb_addr + 8, 0, claim_of(request), info));
  EXPECT_FALSE(pool->begin_unmap_cached(pool->end(), 0, claim_of(request), info));
  // Still live: the whole unmap takes it.
  const MappingClaim claim = claim_of(request);
  EXPECT_TRUE(pool->unmap(mapped->tlb_addr, 0, &claim));
  EXPECT_TRUE(pool->check_invariants());
  for (const char* name : {"linux", "linux-6.1"}) {
    auto made = testing::kernel_pool(name);
    ASSERT_TRUE(made);
    auto live = made->map(request);
    ASSERT_TRUE(live);
    EXPECT_FALSE(made->begin_unmap_cached(live->tlb_addr, 0, claim, info)) << name;
    EXPECT_TRUE(made->unmap(live->tlb_addr, 0, &claim)) << name;
  }
}

// A hit reads the caller's waiter count (under the cache's lock, after the
// run is parked); a miss leaves `waiting` as it was.
TEST(UnmapCached, AHitReadsTheWaiterCount) {
  auto pool = fast_pool(256, 2);
  const SlotRequest request = ask(4096);
  auto mapped = pool->map(request);
  ASSERT_TRUE(mapped);
  const std::atomic<std::uint64_t> waiters{3};
  std::uint64_t waiting = 99;
  SlotCount nslots;
  MappingClaim wrong = claim_of(request);
  wrong.owner = kOwner + 1;
  EXPECT_FALSE(pool->unmap_cached(mapped->tlb_addr, 0, wrong, nslots, &waiters, &waiting));
  EXPECT_EQ(waiting, 99u);
  ASSERT_TRUE(
      pool->unmap_cached(mapped->tlb_addr, 0, claim_of(request), nslots, &waiters, &waiting));
  EXPECT_EQ(waiting, 3u);
  EXPECT_EQ(pool->stats().cached, 2u);
  // Passing the locks changes nothing, with runs cached or not.
  const Seen before = seen(*pool);
  pool->pass_cache_locks();
  EXPECT_EQ(seen(*pool), before);
  testing::kernel_pool("linux")->pass_cache_locks();
}

// Two threads: an unmap_cached() that parks a run and reads the count,
// and a waiter that counts itself, passes the cache locks and looks. In
// every round one of the two sees the other: the unmap reads the waiter,
// or the waiter finds the run.
TEST(UnmapCached, AWaiterPassingTheLocksIsSeenOrSeesTheRun) {
  constexpr int kRounds = 2000;
  auto pool = fast_pool(256, 2);
  const SlotRequest request = ask(4096);
  const MappingClaim claim = claim_of(request);
  std::atomic<std::uint64_t> waiters{0};
  for (int round = 0; round < kRounds; ++round) {
    auto mapped = pool->map(request);
    ASSERT_TRUE(mapped);
    std::uint64_t waiting = 0;
    bool found = false;
    std::thread unmapper([&] {
      SlotCount nslots;
      EXPECT_TRUE(pool->unmap_cached(mapped->tlb_addr, 0, claim, nslots, &waiters, &waiting));
    });
    std::thread waiter([&] {
      waiters.fetch_add(1, std::memory_order_relaxed);
      pool->pass_cache_locks();
      found = pool->cached() != 0;
    });
    unmapper.join();
    waiter.join();
    EXPECT_TRUE(waiting != 0 || found) << "round " << round;
    waiters.store(0);
  }
}

TEST(UnmapCached, PoolsWithoutACacheNeverHit) {
  for (const char* name : {"linux", "linux-6.1"}) {
    auto made = testing::kernel_pool(name);
    ASSERT_TRUE(made);
    SlotPool& pool = *made;
    const SlotRequest request = ask(512);
    auto mapped = pool.map(request);
    ASSERT_TRUE(mapped);
    SlotCount nslots;
    EXPECT_FALSE(pool.unmap_cached(mapped->tlb_addr, 0, claim_of(request), nslots)) << name;
    EXPECT_EQ(pool.used(), 1u) << name;
  }
}

}  // namespace
}  // namespace swiotlb
