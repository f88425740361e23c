// Test helpers for the run cache's hit paths: a small `fast` pool, a
// streaming request for it (to_device, owner 7, no alignment), and what
// the pool shows of itself.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>

#include "swiotlb/pool/fast_policy.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb::testing {

inline constexpr std::uint64_t kCachedPoolStart = 0x100000;
inline constexpr std::uint32_t kCachedPoolOwner = 7;

inline std::unique_ptr<SlotPool> fast_pool(std::uint64_t nslabs = 256, std::uint32_t areas = 1) {
  auto made =
      SlotPool::create({PhysAddr(kCachedPoolStart), nslabs, areas}, std::make_shared<FastPolicy>());
  EXPECT_TRUE(made) << made.error().message();
  return made ? std::move(*made) : nullptr;
}

// A pool of 128 slots in one area under one of the kernel's policies,
// which cache no runs.
inline std::unique_ptr<SlotPool> kernel_pool(const char* policy_name) {
  auto policy = make_slot_policy(policy_name);
  EXPECT_TRUE(policy) << policy_name;
  if (!policy) {
    return nullptr;
  }
  auto made = SlotPool::create({PhysAddr(kCachedPoolStart), 128, 1}, *policy);
  EXPECT_TRUE(made) << made.error().message();
  return made ? std::move(*made) : nullptr;
}

inline SlotRequest ask(std::uint64_t size, std::uint64_t orig = 0x40000000) {
  SlotRequest r;
  r.orig = PhysAddr(orig);
  r.mapping_size = size;
  r.pool_dma_start = DmaAddr(kCachedPoolStart);
  r.dir = Direction::to_device;
  r.owner = kCachedPoolOwner;
  return r;
}

// What a pool shows of itself, to see that a miss changed nothing.
struct PoolSeen {
  std::uint64_t used;
  std::uint64_t cached;
  std::uint64_t hiwater;
  std::uint64_t maps;
  std::uint64_t hits;
  bool operator==(const PoolSeen&) const = default;
};

inline PoolSeen seen(const SlotPool& pool) {
  const PoolStats stats = pool.stats();
  return {stats.used, stats.cached, stats.hiwater, stats.maps, stats.cache_hits};
}

}  // namespace swiotlb::testing
