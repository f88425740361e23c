// SlotPool::streaming_route, map_streaming and unmap_streaming: the run
// cache's hit paths for a caller whose masks, id and view of the pool are
// fixed (a device). A route exists exactly for the requests map_cached may
// serve; a map through it serves the run map_cached would, including the
// slow cases kept out of line (an older run that fits when the newest does
// not, a run whose records hold another layout); an unmap through it
// checks the claim as unmap_cached does.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "support/cached_pool.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {
namespace {

using testing::ask;
using testing::kCachedPoolOwner;
using testing::seen;
using Seen = testing::PoolSeen;

StreamingRoute route_of(const SlotPool& pool, const SlotRequest& request) {
  StreamingRoute route;
  EXPECT_TRUE(pool.streaming_route(request, route));
  return route;
}

bool map_through(SlotPool& pool, const SlotRequest& request, SlotMapping& mapping) {
  const StreamingMapping hit = pool.map_streaming(route_of(pool, request), request.orig,
                                                  request.mapping_size, request.dir, request.cpu);
  if (!hit) {
    return false;
  }
  mapping = pool.mapping_of(hit);
  EXPECT_EQ(mapping.tlb_addr, hit.tlb_addr);
  EXPECT_EQ(mapping.nslots, hit.nslots);
  return true;
}

TEST(StreamingRoute, HoldsTheFixedPartOfARequest) {
  auto pool = testing::fast_pool();
  SlotRequest request = ask(512);
  request.min_align_mask = 0xfff;
  request.seg_boundary_mask = 0xffff;
  request.pool_dma_start = DmaAddr(0x123000);
  const StreamingRoute route = route_of(*pool, request);
  EXPECT_EQ(route.min_align_mask, 0xfffu);
  EXPECT_EQ(route.tbl_dma, 0x3000u);                 // the pool's device start, cut by the boundary
  EXPECT_EQ(route.max_slots, 0x10000u / kSlotSize);  // a 64 KiB segment
  EXPECT_EQ(route.owner, kCachedPoolOwner);
}

TEST(StreamingRoute, NoneForWhatMapCachedNeverServes) {
  auto pool = testing::fast_pool();
  StreamingRoute route;
  route.owner = 99;
  SlotRequest aligned = ask(512);
  aligned.alloc_align_mask = kSlotSize - 1;
  EXPECT_FALSE(pool->streaming_route(aligned, route));
  SlotRequest bad_boundary = ask(512);
  bad_boundary.seg_boundary_mask = 0x1000;
  EXPECT_FALSE(pool->streaming_route(bad_boundary, route));
  SlotRequest huge_alloc = ask(512);
  huge_alloc.alloc_size = kMaxSlotCount << (kSlotShift + 1);
  EXPECT_FALSE(pool->streaming_route(huge_alloc, route));
  for (const char* name : {"linux", "linux-6.1"}) {
    auto kernel = testing::kernel_pool(name);
    ASSERT_TRUE(kernel);
    EXPECT_FALSE(kernel->streaming_route(ask(512), route)) << name;
  }
  EXPECT_EQ(route.owner, 99u);  // left alone
}

TEST(MapStreaming, AHitIsMapCachedsMapping) {
  auto hit = testing::fast_pool();
  auto twin = testing::fast_pool();
  for (SlotPool* pool : {hit.get(), twin.get()}) {
    ASSERT_TRUE(pool->map(ask(512)));
    auto cached = pool->map(ask(3000, 0x40000100));
    ASSERT_TRUE(cached);
    ASSERT_TRUE(pool->unmap(cached->tlb_addr, 0));
  }
  const SlotRequest request = ask(2500, 0x50000000);
  SlotMapping got;
  SlotMapping expected;
  ASSERT_TRUE(map_through(*hit, request, got));
  ASSERT_TRUE(twin->map_cached(request, expected));
  EXPECT_EQ(got.tlb_addr, expected.tlb_addr);
  EXPECT_EQ(got.index, expected.index);
  EXPECT_EQ(got.nslots, expected.nslots);
  EXPECT_EQ(got.area, expected.area);
  EXPECT_EQ(seen(*hit), seen(*twin));
  auto found = hit->find_mapping(got.tlb_addr, 2500);
  ASSERT_TRUE(found);
  EXPECT_EQ(got.index, found->index);
  EXPECT_EQ(got.nslots, found->nslots);
  const MappingClaim claim{2500, Direction::to_device, kCachedPoolOwner};
  auto info = hit->unmap(got.tlb_addr, 0, &claim);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->orig, PhysAddr(0x50000000));
  EXPECT_TRUE(hit->check_invariants());
}

// mapping_of() describes a hit from its address alone: a run taken with a
// kept offset, in the second area, is described as the search that first
// took it described it.
TEST(MapStreaming, MappingOfAHitIsTheSearchedMapping) {
  auto pool = testing::fast_pool(512, 2);
  SlotRequest request = ask(512, 0x40000a00);
  request.min_align_mask = 0xfff;  // keeps 0x200 within the slot, and bit 11
  request.cpu = 1;
  auto searched = pool->map(request);
  ASSERT_TRUE(searched);
  ASSERT_EQ(searched->area, 1u);
  ASSERT_EQ(searched->tlb_addr.value() & 0xfff, 0xa00u);
  ASSERT_TRUE(pool->unmap(searched->tlb_addr, 0xfff));
  SlotMapping mapping;
  ASSERT_TRUE(map_through(*pool, request, mapping));
  EXPECT_EQ(mapping.tlb_addr, searched->tlb_addr);
  EXPECT_EQ(mapping.index, searched->index);
  EXPECT_EQ(mapping.nslots, searched->nslots);
  EXPECT_EQ(mapping.area, 1u);
  EXPECT_EQ(mapping.search_steps, 0u);
  EXPECT_TRUE(pool->check_invariants());
}

TEST(MapStreaming, AnEmptyCacheAndALongRunAreMissesThatChangeNothing) {
  auto pool = testing::fast_pool();
  SlotMapping mapping;
  const Seen before = seen(*pool);
  EXPECT_FALSE(map_through(*pool, ask(512), mapping));
  EXPECT_FALSE(map_through(*pool, ask(0), mapping));
  EXPECT_FALSE(map_through(*pool, ask(32 * kSlotSize + 1), mapping));
  // 64 KiB from an offset the device keeps needs 33 slots.
  SlotRequest kept = ask(32 * kSlotSize, 0x40000010);
  kept.min_align_mask = 0x7ff;
  EXPECT_FALSE(map_through(*pool, kept, mapping));
  EXPECT_EQ(seen(*pool), before);
}

// The newest run of the size does not fit the request's kept bits, an older
// one does: the out-of-line path takes the older one.
TEST(MapStreaming, AnOlderRunServesWhenTheNewestDoesNotFit) {
  auto pool = testing::fast_pool();
  SlotRequest even = ask(512, 0x40000000);
  even.min_align_mask = 0xfff;  // keeps bit 11: the slot's parity
  SlotRequest odd = ask(512, 0x40000800);
  odd.min_align_mask = 0xfff;
  auto a = pool->map(even);
  auto b = pool->map(odd);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(pool->unmap(a->tlb_addr, 0xfff));  // older: even
  ASSERT_TRUE(pool->unmap(b->tlb_addr, 0xfff));  // newest: odd
  SlotMapping mapping;
  ASSERT_TRUE(map_through(*pool, even, mapping));
  EXPECT_EQ(mapping.tlb_addr, a->tlb_addr);
  EXPECT_EQ(pool->stats().cache_hits, 1u);
  EXPECT_EQ(pool->stats().cached, 1u);  // the odd run stays
  EXPECT_TRUE(pool->check_invariants());
}

// A cached run of the same length whose records hold another layout (a
// different size, so other per-slot sizes) is written whole.
TEST(MapStreaming, ARunOfAnotherLayoutIsRewrittenWhole) {
  auto pool = testing::fast_pool();
  auto first = pool->map(ask(4000, 0x40000000));
  ASSERT_TRUE(first);
  ASSERT_TRUE(pool->unmap(first->tlb_addr, 0));
  SlotMapping mapping;
  const SlotRequest request = ask(2100, 0x60000000);  // two slots as well
  ASSERT_TRUE(map_through(*pool, request, mapping));
  EXPECT_EQ(mapping.tlb_addr, first->tlb_addr);
  EXPECT_TRUE(pool->check_invariants());
  const MappingClaim claim{2100, Direction::to_device, kCachedPoolOwner};
  auto info = pool->unmap(mapping.tlb_addr, 0, &claim);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->orig, PhysAddr(0x60000000));
  EXPECT_EQ(info->nslots, SlotCount(2));
}

// What a map wrote, as the pool reports it back: the mapping found at its
// address, then given back with its claim.
struct Written {
  PhysAddr tlb_addr;
  SlotIndex index;
  SlotCount nslots;
  PhysAddr orig;
  std::uint64_t mapping_size = 0;
  Direction dir = Direction::none;
  std::uint32_t owner = 0;
  bool operator==(const Written&) const = default;
};

Written written(SlotPool& pool, PhysAddr tlb_addr, std::uint64_t size, Direction dir,
                std::uint64_t min_align_mask) {
  auto found = pool.find_mapping(tlb_addr, size);
  EXPECT_TRUE(found) << found.error().message();
  const MappingClaim claim{size, dir, kCachedPoolOwner};
  auto info = pool.unmap(tlb_addr, min_align_mask, &claim);
  EXPECT_TRUE(info) << info.error().message();
  if (!found || !info) {
    return {};
  }
  EXPECT_EQ(found->index, info->index);
  EXPECT_EQ(found->nslots, info->nslots);
  return {info->tlb_addr,     info->index, info->nslots, info->orig,
          info->mapping_size, info->dir,   info->owner};
}

// A buffer of a slot or less through a route that keeps no address bits
// takes the newest cached run of one slot without planning or testing it,
// and writes its record whole. The run was last a mapping with a kept
// offset, another size, direction and original: what the hit leaves is
// what map_cached leaves, byte for byte as the pool reports it, for every
// size of one slot and for a buffer with no original.
TEST(MapStreaming, AOneSlotHitWritesWhatMapCachedWrites) {
  for (const std::uint64_t size : {std::uint64_t{1}, std::uint64_t{512}, kSlotSize}) {
    for (const std::uint64_t orig : {std::uint64_t{0x50000000}, std::uint64_t{0}}) {
      auto hit = testing::fast_pool();
      auto twin = testing::fast_pool();
      for (SlotPool* pool : {hit.get(), twin.get()}) {
        SlotRequest before = ask(1000, 0x40000300);
        before.min_align_mask = 0x7ff;  // 0x300 into its slot
        before.dir = Direction::bidirectional;
        auto old = pool->map(before);
        ASSERT_TRUE(old);
        ASSERT_EQ(old->nslots, SlotCount(1));
        ASSERT_TRUE(pool->unmap(old->tlb_addr, 0x7ff));
      }
      SlotRequest request = ask(size, orig);
      request.dir = Direction::from_device;
      SlotMapping got;
      SlotMapping expected;
      ASSERT_TRUE(map_through(*hit, request, got)) << size;
      ASSERT_TRUE(twin->map_cached(request, expected)) << size;
      EXPECT_EQ(got.tlb_addr, expected.tlb_addr);
      EXPECT_EQ(got.tlb_addr.value() % kSlotSize, 0u);
      EXPECT_EQ(got.index, expected.index);
      EXPECT_EQ(got.nslots, SlotCount(1));
      EXPECT_EQ(got.nslots, expected.nslots);
      EXPECT_EQ(seen(*hit), seen(*twin));
      EXPECT_TRUE(hit->check_invariants()) << size;
      const Written from_hit = written(*hit, got.tlb_addr, size, Direction::from_device, 0);
      EXPECT_EQ(from_hit, written(*twin, expected.tlb_addr, size, Direction::from_device, 0));
      EXPECT_EQ(from_hit.orig, PhysAddr(orig));
      EXPECT_EQ(from_hit.mapping_size, size);
      EXPECT_TRUE(hit->check_invariants()) << size;
    }
  }
}

// A pool the device sees at an address that is not slot-aligned fits no
// run of the cache (each would break the slot alignment the plan asks
// for): the one-slot path misses as map_cached does, changing nothing.
TEST(MapStreaming, APoolSeenOffASlotBoundaryServesNoOneSlotHit) {
  auto pool = testing::fast_pool();
  auto old = pool->map(ask(512));
  ASSERT_TRUE(old);
  ASSERT_TRUE(pool->unmap(old->tlb_addr, 0));
  SlotRequest request = ask(512);
  request.pool_dma_start = DmaAddr(testing::kCachedPoolStart + 0x200);
  SlotMapping mapping;
  const Seen before = seen(*pool);
  EXPECT_FALSE(pool->map_cached(request, mapping));
  EXPECT_FALSE(map_through(*pool, request, mapping));
  EXPECT_EQ(seen(*pool), before);
}

// A one-slot buffer while the cache holds only longer runs: a miss that
// changes nothing; and a buffer one byte over a slot is planned as two.
TEST(MapStreaming, OneSlotMissesAndTheSlotEdge) {
  auto pool = testing::fast_pool();
  auto longer = pool->map(ask(3 * kSlotSize));
  ASSERT_TRUE(longer);
  ASSERT_TRUE(pool->unmap(longer->tlb_addr, 0));
  SlotMapping mapping;
  const Seen before = seen(*pool);
  EXPECT_FALSE(map_through(*pool, ask(100), mapping));
  EXPECT_EQ(seen(*pool), before);
  auto two = pool->map(ask(2 * kSlotSize));
  ASSERT_TRUE(two);
  ASSERT_TRUE(pool->unmap(two->tlb_addr, 0));
  ASSERT_TRUE(map_through(*pool, ask(kSlotSize + 1), mapping));
  EXPECT_EQ(mapping.nslots, SlotCount(2));
  EXPECT_EQ(mapping.tlb_addr, two->tlb_addr);
  EXPECT_TRUE(pool->check_invariants());
}

// map_streaming against map_cached on twin pools, request by request:
// small buffers half the time (the one-slot path), with and without kept
// bits, with and without an original, in every direction, from both areas,
// unmapped in random order. Every outcome, and every mapping as the pool
// reports it back at unmap, is the same on both.
TEST(MapStreaming, RandomRequestsMatchMapCached) {
  std::mt19937_64 rng(20261208);
  for (const std::uint64_t mask : {std::uint64_t{0}, std::uint64_t{0x7ff}}) {
    auto hit = testing::fast_pool(512, 2);
    auto twin = testing::fast_pool(512, 2);
    SlotRequest shape = ask(1);
    shape.min_align_mask = mask;
    const StreamingRoute route = route_of(*hit, shape);
    struct Live {
      PhysAddr tlb;
      std::uint64_t size;
      Direction dir;
    };
    std::vector<Live> live;
    std::uint64_t hits = 0;
    for (int step = 0; step < 4000; ++step) {
      if (live.size() < 30 && (live.empty() || rng() % 2 == 0)) {
        SlotRequest request = shape;
        request.mapping_size = rng() % 2 == 0 ? 1 + rng() % kSlotSize : 1 + rng() % 20000;
        request.orig = PhysAddr(rng() % 8 == 0 ? 0 : 0x40000000 + rng() % 0x100000);
        request.dir = static_cast<Direction>(rng() % 3);
        request.cpu = static_cast<unsigned>(rng() % 2);
        const StreamingMapping got =
            hit->map_streaming(route, request.orig, request.mapping_size, request.dir, request.cpu);
        SlotMapping expected;
        const bool twin_hit = twin->map_cached(request, expected);
        ASSERT_EQ(static_cast<bool>(got), twin_hit) << step;
        SlotMapping mapping;
        if (got) {
          ++hits;
          mapping = hit->mapping_of(got);
          EXPECT_EQ(mapping.tlb_addr, expected.tlb_addr) << step;
          EXPECT_EQ(mapping.nslots, expected.nslots) << step;
        } else {
          auto searched = hit->map(request);
          auto twin_searched = twin->map(request);
          ASSERT_EQ(static_cast<bool>(searched), static_cast<bool>(twin_searched)) << step;
          if (!searched) {
            continue;
          }
          EXPECT_EQ(searched->tlb_addr, twin_searched->tlb_addr) << step;
          mapping = *searched;
        }
        live.push_back({mapping.tlb_addr, request.mapping_size, request.dir});
      } else {
        const std::size_t k = rng() % live.size();
        const Live gone = live[k];
        live[k] = live.back();
        live.pop_back();
        EXPECT_EQ(written(*hit, gone.tlb, gone.size, gone.dir, mask),
                  written(*twin, gone.tlb, gone.size, gone.dir, mask))
            << step;
      }
      ASSERT_EQ(seen(*hit), seen(*twin)) << step;
    }
    ASSERT_TRUE(hit->check_invariants());
    EXPECT_GT(hits, 200u) << "mask " << mask;
  }
}

TEST(UnmapStreaming, ParksTheRunAndCountsItsSlots) {
  auto pool = testing::fast_pool();
  const SlotRequest request = ask(5000);
  const StreamingRoute route = route_of(*pool, request);
  auto mapped = pool->map(request);
  ASSERT_TRUE(mapped);
  const std::atomic<std::uint64_t> waiters{3};
  const ParkedRun parked =
      pool->unmap_streaming(route, mapped->tlb_addr, 5000, Direction::to_device, &waiters);
  EXPECT_TRUE(parked);
  EXPECT_EQ(parked.nslots, SlotCount(3));
  EXPECT_EQ(parked.waiting, 3u);
  EXPECT_EQ(pool->stats().cached, 3u);
  EXPECT_EQ(pool->used(), 0u);
  EXPECT_TRUE(pool->check_invariants());
}

TEST(UnmapStreaming, AClaimThatDoesNotMatchChangesNothing) {
  auto pool = testing::fast_pool();
  const SlotRequest request = ask(5000);
  StreamingRoute route = route_of(*pool, request);
  auto mapped = pool->map(request);
  ASSERT_TRUE(mapped);
  const Seen before = seen(*pool);
  const PhysAddr tlb = mapped->tlb_addr;
  const std::atomic<std::uint64_t> waiters{2};
  auto slots_parked = [&](const StreamingRoute& through, PhysAddr addr, std::uint64_t size,
                          Direction dir) {
    const ParkedRun parked = pool->unmap_streaming(through, addr, size, dir, &waiters);
    EXPECT_EQ(parked.waiting, parked ? 2u : 0u);  // counted only for a parked run
    return parked.nslots.value();
  };
  EXPECT_EQ(slots_parked(route, tlb, 4999, Direction::to_device), 0u);
  EXPECT_EQ(slots_parked(route, tlb, 5000, Direction::bidirectional), 0u);
  EXPECT_EQ(slots_parked(route, tlb + kSlotSize, 5000, Direction::to_device), 0u);
  EXPECT_EQ(slots_parked(route, PhysAddr(0x10), 5000, Direction::to_device), 0u);
  StreamingRoute stranger = route;
  stranger.owner = kCachedPoolOwner + 1;
  EXPECT_EQ(slots_parked(stranger, tlb, 5000, Direction::to_device), 0u);
  EXPECT_EQ(seen(*pool), before);
  EXPECT_EQ(slots_parked(route, tlb, 5000, Direction::to_device), 3u);
}

// Random streaming requests through a route, each against the rules the
// kernel's search keeps (kept bits, page alignment, the segment boundary),
// unmapped through the route in random order: every map a hit or a search,
// never a slot lost.
TEST(MapStreaming, RandomRequestsKeepEveryRule) {
  std::mt19937_64 rng(20261207);
  for (const std::uint64_t mask : {std::uint64_t{0}, std::uint64_t{0x7ff}, std::uint64_t{0xfff}}) {
    for (const std::uint64_t boundary : {~std::uint64_t{0}, std::uint64_t{0xffff}}) {
      auto pool = testing::fast_pool(512, 2);
      SlotRequest shape = ask(1);
      shape.min_align_mask = mask;
      shape.seg_boundary_mask = boundary;
      const StreamingRoute route = route_of(*pool, shape);
      struct Live {
        PhysAddr tlb;
        std::uint64_t size;
      };
      std::vector<Live> live;
      std::uint64_t hits = 0;
      for (int step = 0; step < 3000; ++step) {
        if (live.size() < 40 && (live.empty() || rng() % 2 == 0)) {
          const std::uint64_t size = 1 + rng() % (boundary == 0xffff ? 30000 : 65536);
          const std::uint64_t orig = 0x40000000 + (rng() % 0x100000);
          const auto cpu = static_cast<unsigned>(rng() % 2);
          SlotMapping mapping;
          const std::uint64_t hits_before = pool->stats().cache_hits;
          const StreamingMapping hit =
              pool->map_streaming(route, PhysAddr(orig), size, Direction::to_device, cpu);
          hits += hit ? 1 : 0;
          if (hit) {
            EXPECT_EQ(pool->stats().cache_hits, hits_before + 1);
            mapping = pool->mapping_of(hit);
          } else {
            SlotRequest request = shape;
            request.orig = PhysAddr(orig);
            request.mapping_size = size;
            request.cpu = cpu;
            auto searched = pool->map(request);
            if (!searched) {
              continue;  // full: the cache was drained first
            }
            mapping = *searched;
          }
          const std::uint64_t tlb = mapping.tlb_addr.value();
          EXPECT_EQ((tlb ^ orig) & mask, 0u) << step;
          const std::uint64_t head = tlb - (tlb & mask & (kSlotSize - 1));
          if (mask == 0 && size >= kPageSize) {
            EXPECT_EQ(head % kPageSize, 0u) << step;
          }
          const std::uint64_t run_end = head + mapping.nslots.value() * kSlotSize - 1;
          EXPECT_EQ(head & ~boundary, run_end & ~boundary)
              << "crosses the boundary at step " << step;
          live.push_back({mapping.tlb_addr, size});
        } else {
          const std::size_t k = rng() % live.size();
          const Live gone = live[k];
          live[k] = live.back();
          live.pop_back();
          if (!pool->unmap_streaming(route, gone.tlb, gone.size, Direction::to_device)) {
            const MappingClaim claim{gone.size, Direction::to_device, kCachedPoolOwner};
            ASSERT_TRUE(pool->unmap(gone.tlb, mask, &claim)) << step;
          }
        }
        ASSERT_TRUE(pool->check_invariants()) << step;
      }
      for (const Live& gone : live) {
        ASSERT_TRUE(pool->unmap_streaming(route, gone.tlb, gone.size, Direction::to_device) ||
                    pool->unmap(gone.tlb, mask));
      }
      EXPECT_GT(hits, 20u) << "mask " << mask << " boundary " << boundary;
      pool->drain_cache();
      EXPECT_EQ(pool->used(), 0u);
      EXPECT_EQ(pool->stats().cached, 0u);
    }
  }
}

}  // namespace
}  // namespace swiotlb
