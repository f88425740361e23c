// IoTlb::map_cached and IoTlb::unmap_cached, the hit paths of map() and
// unmap(): a hit leaves the IoTlb, its bytes and its counters as the full
// call would have; anything else is a miss that changes nothing, and the
// full call then does the work or says why not.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "support/eventually.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb {
namespace {

constexpr std::uint32_t kOwner = 7;
constexpr std::uint64_t kNslabs = 1024;  // the pool of make(), in one area

std::unique_ptr<IoTlb> make(const char* policy) {
  IoTlbOptions options;
  options.nslabs = kNslabs;
  options.nareas = 1;
  options.force_bounce = true;
  options.policy = policy;
  auto made = IoTlb::create(options);
  EXPECT_TRUE(made) << made.error().message();
  return made ? std::move(*made) : nullptr;
}

BounceRequest request(const void* orig, std::uint64_t size, Direction dir, const IoTlb& tlb) {
  BounceRequest r;
  r.orig = PhysAddr::from_pointer(orig);
  r.size = size;
  r.pool_dma_start = DmaAddr(tlb.start().value());
  r.dir = dir;
  r.owner = kOwner;
  return r;
}

// The claim an unmap of what `r` mapped makes.
MappingClaim claim_of(const BounceRequest& r) {
  return {r.size, r.dir, r.owner};
}

TEST(IoTlbCached, AHitMapsAndUnmapsAsTheFullCallsWould) {
  auto tlb = make("fast");
  std::vector<std::byte> buffer(3000, std::byte{0x11});
  const BounceRequest write = request(buffer.data(), buffer.size(), Direction::to_device, *tlb);
  PhysAddr tlb_addr;
  EXPECT_FALSE(tlb->map_cached(write, true, tlb_addr));  // an empty cache
  EXPECT_EQ(tlb->used(), 0u);
  auto first = tlb->map(write);
  ASSERT_TRUE(first) << first.error().message();
  const MappingClaim claim = claim_of(write);
  ASSERT_TRUE(tlb->unmap_cached(*first, 0, claim, {}));
  EXPECT_EQ(tlb->used(), 0u);
  EXPECT_EQ(tlb->pool().stats().cached, 2u);
  // The run comes back, filled.
  ASSERT_TRUE(tlb->map_cached(write, true, tlb_addr));
  EXPECT_EQ(tlb_addr, *first);
  EXPECT_EQ(std::memcmp(tlb->bounce_pointer(tlb_addr), buffer.data(), buffer.size()), 0);
  EXPECT_EQ(tlb->used(), 2u);
  EXPECT_EQ(tlb->hiwater(), 2u);
  EXPECT_EQ(tlb->pool().stats().cache_hits, 1u);
  ASSERT_TRUE(tlb->unmap_cached(tlb_addr, 0, claim, {}));
  EXPECT_TRUE(tlb->check_invariants());
}

TEST(IoTlbCached, AReadIsCopiedBack) {
  auto tlb = make("fast");
  std::vector<std::byte> buffer(700, std::byte{0});
  const BounceRequest read = request(buffer.data(), buffer.size(), Direction::from_device, *tlb);
  auto mapped = tlb->map(read);
  ASSERT_TRUE(mapped);
  std::memset(tlb->bounce_pointer(*mapped), 0x42, buffer.size());
  const MappingClaim claim = claim_of(read);
  ASSERT_TRUE(tlb->unmap_cached(*mapped, 0, claim, {}));
  EXPECT_EQ(buffer.front(), std::byte{0x42});
  EXPECT_EQ(buffer.back(), std::byte{0x42});
  EXPECT_EQ(tlb->used(), 0u);
  // skip_cpu_sync: nothing copied back.
  auto again = tlb->map(read);
  ASSERT_TRUE(again);
  std::memset(tlb->bounce_pointer(*again), 0x24, buffer.size());
  ASSERT_TRUE(tlb->unmap_cached(*again, 0, claim, Attr::skip_cpu_sync));
  EXPECT_EQ(buffer.front(), std::byte{0x42});
  EXPECT_TRUE(tlb->check_invariants());
}

TEST(IoTlbCached, MissesChangeNothingAndTheFullCallSaysWhy) {
  auto tlb = make("fast");
  std::vector<std::byte> buffer(4096, std::byte{1});
  const BounceRequest write = request(buffer.data(), buffer.size(), Direction::to_device, *tlb);
  auto mapped = tlb->map(write);
  ASSERT_TRUE(mapped);
  const MappingClaim claim = claim_of(write);
  MappingClaim wrong = claim;
  wrong.owner = kOwner + 1;
  EXPECT_FALSE(tlb->unmap_cached(*mapped, 0, wrong, {}));
  EXPECT_FALSE(tlb->unmap_cached(*mapped + kSlotSize, 0, claim, {}));
  EXPECT_FALSE(tlb->unmap_cached(tlb->end(), 0, claim, {}));  // in no pool
  EXPECT_FALSE(tlb->unmap_cached(PhysAddr(0), 0, claim, {}));
  EXPECT_EQ(tlb->used(), 2u);
  EXPECT_EQ(tlb->unmap(*mapped, 0, wrong, {}).error().code(), Errc::mapping_mismatch);
  EXPECT_EQ(tlb->unmap(tlb->end(), 0, claim, {}).error().code(), Errc::not_mapped);
  ASSERT_TRUE(tlb->unmap_cached(*mapped, 0, claim, {}));
  // A second unmap: a miss, and not_mapped from the full call.
  EXPECT_FALSE(tlb->unmap_cached(*mapped, 0, claim, {}));
  EXPECT_EQ(tlb->unmap(*mapped, 0, claim, {}).error().code(), Errc::not_mapped);
  // A request the cache does not serve (an allocation alignment, a pool
  // that does not exist) is a miss that takes nothing.
  BounceRequest aligned = write;
  aligned.alloc_align_mask = kPageSize - 1;
  PhysAddr tlb_addr;
  EXPECT_FALSE(tlb->map_cached(aligned, true, tlb_addr));
  BounceRequest no_pool = write;
  no_pool.pool = 5;
  EXPECT_FALSE(tlb->map_cached(no_pool, true, tlb_addr));
  EXPECT_EQ(tlb->used(), 0u);
  EXPECT_EQ(tlb->pool().stats().cache_hits, 0u);
  EXPECT_TRUE(tlb->check_invariants());
}

TEST(IoTlbCached, PoolsWithoutARunCacheNeverHit) {
  for (const char* policy : {"linux", "linux-6.1"}) {
    auto tlb = make(policy);
    std::vector<std::byte> buffer(512, std::byte{1});
    const BounceRequest write = request(buffer.data(), buffer.size(), Direction::to_device, *tlb);
    auto mapped = tlb->map(write);
    ASSERT_TRUE(mapped) << policy;
    const MappingClaim claim = claim_of(write);
    EXPECT_FALSE(tlb->unmap_cached(*mapped, 0, claim, {})) << policy;
    ASSERT_TRUE(tlb->unmap(*mapped, 0, claim, {})) << policy;
    PhysAddr tlb_addr;
    EXPECT_FALSE(tlb->map_cached(write, true, tlb_addr)) << policy;
    EXPECT_EQ(tlb->used(), 0u) << policy;
  }
}

// ---- A device's route: map_streaming and unmap_streaming ------------------------

BounceRoute route_of(const IoTlb& tlb, const BounceRequest& request) {
  BounceRoute route;
  EXPECT_TRUE(tlb.streaming_route(request, route));
  return route;
}

TEST(IoTlbStreaming, AHitMapsAndUnmapsAsTheCachedCallsDo) {
  auto tlb = make("fast");
  std::vector<std::byte> buffer(3000, std::byte{0x5a});
  const BounceRequest write = request(buffer.data(), buffer.size(), Direction::to_device, *tlb);
  const BounceRoute route = route_of(*tlb, write);
  EXPECT_EQ(route.pool, 0u);
  EXPECT_NE(route.configured, nullptr);
  EXPECT_EQ(route.slots_pool, &tlb->pool());
  PhysAddr tlb_addr;
  EXPECT_FALSE(tlb->map_streaming(route, write.orig, write.size, write.dir, {}, tlb_addr));
  auto first = tlb->map(write);
  ASSERT_TRUE(first);
  ASSERT_TRUE(tlb->unmap_streaming(route, *first, write.size, write.dir, {}));
  EXPECT_EQ(tlb->used(), 0u);
  EXPECT_EQ(tlb->pool().stats().cached, 2u);
  ASSERT_TRUE(tlb->map_streaming(route, write.orig, write.size, write.dir, {}, tlb_addr));
  EXPECT_EQ(tlb_addr, *first);
  EXPECT_EQ(std::memcmp(tlb->bounce_pointer(tlb_addr), buffer.data(), buffer.size()), 0);
  EXPECT_EQ(tlb->used(), 2u);
  EXPECT_EQ(tlb->hiwater(), 2u);
  EXPECT_EQ(tlb->pool().stats().cache_hits, 1u);
  // The claim is checked: another size or direction is a miss, and the
  // full call says why.
  EXPECT_FALSE(tlb->unmap_streaming(route, tlb_addr, write.size - 1, write.dir, {}));
  EXPECT_FALSE(tlb->unmap_streaming(route, tlb_addr, write.size, Direction::bidirectional, {}));
  EXPECT_EQ(tlb->unmap(tlb_addr, 0, {write.size - 1, write.dir, kOwner}, {}).error().code(),
            Errc::mapping_mismatch);
  EXPECT_EQ(tlb->used(), 2u);
  ASSERT_TRUE(tlb->unmap_streaming(route, tlb_addr, write.size, write.dir, {}));
  EXPECT_FALSE(tlb->unmap_streaming(route, tlb_addr, write.size, write.dir, {}));
  EXPECT_EQ(tlb->used(), 0u);
  EXPECT_TRUE(tlb->check_invariants());
}

// A route that streaming_route() refused (left as made) names no pool:
// maps and unmaps through it are misses, and the full calls still work.
TEST(IoTlbStreaming, ARouteNeverSetIsAMiss) {
  auto tlb = make("fast");
  std::vector<std::byte> buffer(512, std::byte{3});
  const BounceRequest write = request(buffer.data(), buffer.size(), Direction::to_device, *tlb);
  auto mapped = tlb->map(write);
  ASSERT_TRUE(mapped);
  ASSERT_TRUE(tlb->unmap(*mapped, 0, claim_of(write), {}));  // its run is parked
  const BounceRoute unset;
  PhysAddr tlb_addr;
  EXPECT_FALSE(tlb->map_streaming(unset, write.orig, write.size, write.dir, {}, tlb_addr));
  EXPECT_EQ(tlb->pool().stats().cache_hits, 0u);
  auto again = tlb->map(write);
  ASSERT_TRUE(again);
  EXPECT_FALSE(tlb->unmap_streaming(unset, *again, write.size, write.dir, {}));
  EXPECT_EQ(tlb->used(), 1u);
  ASSERT_TRUE(tlb->unmap(*again, 0, claim_of(write), {}));
  EXPECT_TRUE(tlb->check_invariants());
}

TEST(IoTlbStreaming, AReadIsCopiedBack) {
  auto tlb = make("fast");
  std::vector<std::byte> buffer(700, std::byte{0});
  const BounceRequest read = request(buffer.data(), buffer.size(), Direction::from_device, *tlb);
  const BounceRoute route = route_of(*tlb, read);
  auto mapped = tlb->map(read);
  ASSERT_TRUE(mapped);
  std::memset(tlb->bounce_pointer(*mapped), 0x42, buffer.size());
  ASSERT_TRUE(tlb->unmap_streaming(route, *mapped, read.size, read.dir, {}));
  EXPECT_EQ(buffer.front(), std::byte{0x42});
  EXPECT_EQ(buffer.back(), std::byte{0x42});
  EXPECT_EQ(tlb->used(), 0u);
  EXPECT_TRUE(tlb->check_invariants());
}

TEST(IoTlbStreaming, NoRouteWhereTheCacheNeverServes) {
  for (const char* policy : {"linux", "linux-6.1"}) {
    auto tlb = make(policy);
    std::vector<std::byte> buffer(512, std::byte{1});
    BounceRoute route;
    EXPECT_FALSE(tlb->streaming_route(
        request(buffer.data(), buffer.size(), Direction::to_device, *tlb), route))
        << policy;
  }
  auto tlb = make("fast");
  std::vector<std::byte> buffer(512, std::byte{1});
  BounceRequest aligned = request(buffer.data(), buffer.size(), Direction::to_device, *tlb);
  aligned.alloc_align_mask = kPageSize - 1;
  BounceRoute route;
  EXPECT_FALSE(tlb->streaming_route(aligned, route));
  BounceRequest no_pool = request(buffer.data(), buffer.size(), Direction::to_device, *tlb);
  no_pool.pool = 5;
  EXPECT_FALSE(tlb->streaming_route(no_pool, route));
  // The kernel's order of pools searches the areas of all pools in turn:
  // the configured pool's cache is not what map() tries first.
  IoTlbOptions options;
  options.nslabs = kNslabs;
  options.nareas = 1;
  options.force_bounce = true;
  options.policy = "fast";
  options.search_order = PoolSearchOrder::kernel;
  auto kernel_order = IoTlb::create(options);
  ASSERT_TRUE(kernel_order) << kernel_order.error().message();
  EXPECT_FALSE(
      (*kernel_order)
          ->streaming_route(
              request(buffer.data(), buffer.size(), Direction::to_device, **kernel_order), route));
}

// ---- Waiters and unmaps through the run cache ----------------------------------
//
// An unmap through the cache announces its room without a fence: it counts
// the waiters under the cache's lock, which every waiter's attempt passes
// first (WaitQueue's Ordering).

// The longest run a cache keeps (kMaxCachedSlots, private to the pool).
constexpr std::uint64_t kLongestRunSlots = 32;
constexpr std::uint64_t kLongestRun = kLongestRunSlots * kSlotSize;

// The pool of make() filled with runs of kLongestRun bytes
// from `buffer`, but for `left` of them.
std::vector<PhysAddr> fill_but(IoTlb& tlb, const std::vector<std::byte>& buffer, int left) {
  std::vector<PhysAddr> held;
  const BounceRequest write = request(buffer.data(), kLongestRun, Direction::to_device, tlb);
  for (std::uint64_t used = 0; used + kLongestRunSlots * static_cast<std::uint64_t>(left) < kNslabs;
       used += kLongestRunSlots) {
    auto mapped = tlb.map(write);
    EXPECT_TRUE(mapped) << mapped.error().message();
    if (mapped) {
      held.push_back(*mapped);
    }
  }
  return held;
}

BounceRequest sleepy(const std::vector<std::byte>& buffer, const IoTlb& tlb) {
  BounceRequest r = request(buffer.data(), kLongestRun, Direction::to_device, tlb);
  r.attrs = Attr::may_sleep;
  r.deadline = WaitQueue::Clock::now() + std::chrono::seconds(30);
  return r;
}

TEST(IoTlbCached, AWaiterIsServedByAnUnmapThroughTheCache) {
  auto tlb = make("fast");
  const std::vector<std::byte> buffer(kLongestRun, std::byte{5});
  const std::vector<PhysAddr> held = fill_but(*tlb, buffer, 0);
  ASSERT_EQ(tlb->used(), kNslabs);
  std::optional<Result<PhysAddr>> got;
  std::thread waiter([&] { got.emplace(tlb->map(sleepy(buffer, *tlb))); });
  ASSERT_TRUE(testing::eventually([&] { return tlb->stats().waits.waiting_now == 1; }));
  EXPECT_TRUE(tlb->unmap_cached(held.back(), 0, claim_of(sleepy(buffer, *tlb)), {}));
  waiter.join();
  ASSERT_TRUE(*got) << got->error().message();
  EXPECT_EQ(**got, held.back());  // the run the unmap parked
  EXPECT_EQ(tlb->stats().waits.timeouts, 0u);
  EXPECT_TRUE(tlb->check_invariants());
}

TEST(IoTlbCached, AWaiterIsServedByAnUnmapThroughARoute) {
  auto tlb = make("fast");
  const std::vector<std::byte> buffer(kLongestRun, std::byte{5});
  const std::vector<PhysAddr> held = fill_but(*tlb, buffer, 0);
  const BounceRequest shape = sleepy(buffer, *tlb);
  const BounceRoute route = route_of(*tlb, shape);
  std::optional<Result<PhysAddr>> got;
  std::thread waiter([&] { got.emplace(tlb->map(sleepy(buffer, *tlb))); });
  ASSERT_TRUE(testing::eventually([&] { return tlb->stats().waits.waiting_now == 1; }));
  // A map that may sleep queues behind the waiter: no hit for it.
  PhysAddr tlb_addr;
  EXPECT_FALSE(
      tlb->map_streaming(route, shape.orig, shape.size, shape.dir, Attr::may_sleep, tlb_addr));
  EXPECT_TRUE(tlb->unmap_streaming(route, held.back(), shape.size, shape.dir, {}));
  waiter.join();
  ASSERT_TRUE(*got) << got->error().message();
  EXPECT_EQ(**got, held.back());
  EXPECT_EQ(tlb->stats().waits.timeouts, 0u);
  EXPECT_TRUE(tlb->check_invariants());
}

// Three threads share one free run: each maps (waiting while it is out),
// holds it for a moment and unmaps through the cache, over and over. A
// lost wakeup leaves a waiter asleep with the run parked until its
// deadline: its map then fails.
TEST(IoTlbCached, WaitersAndUnmapsThroughTheCacheLoseNoWakeup) {
  constexpr int kThreads = 3;
  constexpr int kRounds = 500;
  auto tlb = make("fast");
  const std::vector<std::byte> buffer(kLongestRun, std::byte{6});
  const std::vector<PhysAddr> held = fill_but(*tlb, buffer, 1);
  const MappingClaim claim = claim_of(sleepy(buffer, *tlb));
  std::atomic<int> failed{0};
  std::atomic<int> through_cache{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  const BounceRoute route = route_of(*tlb, sleepy(buffer, *tlb));
  for (int t = 0; t < kThreads; ++t) {
    // Thread 0 unmaps through its route, the others through unmap_cached.
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        auto mapped = tlb->map(sleepy(buffer, *tlb));
        if (!mapped) {
          ++failed;
          return;
        }
        std::this_thread::yield();  // the others find the run out, and wait
        const bool parked =
            t == 0 ? tlb->unmap_streaming(route, *mapped, claim.mapping_size, claim.dir, {})
                   : tlb->unmap_cached(*mapped, 0, claim, {});
        if (parked) {
          ++through_cache;
        } else if (!tlb->unmap(*mapped, 0, claim, {})) {
          ++failed;
          return;
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(through_cache.load(), 0);
  const WaitStats waits = tlb->stats().waits;
  EXPECT_EQ(waits.timeouts, 0u);
  EXPECT_GT(waits.waits, 0u);  // the threads did wait for each other
  EXPECT_EQ(tlb->used(), held.size() * kLongestRunSlots);
  EXPECT_TRUE(tlb->check_invariants());
}

}  // namespace
}  // namespace swiotlb
