// SlotPool::prefetch is a hint: whatever it is given (an address at the
// pool's last slot, outside the pool, a size of 0 or of the whole pool) it
// changes nothing, and the mapping it was given for unmaps as before.
#include <gtest/gtest.h>

#include "swiotlb/core/constants.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kStart = 0x100000;

TEST(SlotPoolPrefetch, ChangesNothingWhateverItIsGiven) {
  auto policy = make_slot_policy("linux");
  ASSERT_TRUE(policy);
  auto made = SlotPool::create({PhysAddr(kStart), 256, 2}, *policy);
  ASSERT_TRUE(made) << made.error().message();
  SlotPool& pool = **made;
  SlotRequest request;
  request.orig = PhysAddr(0x40000000);
  request.mapping_size = 3 * kSlotSize;
  request.pool_dma_start = DmaAddr(kStart);
  request.cpu = 1;
  Result<SlotMapping> mapping = pool.map(request);
  ASSERT_TRUE(mapping) << mapping.error().message();
  const PoolStats before = pool.stats();

  const PhysAddr last_slot = pool.end() - kSlotSize;
  pool.prefetch(mapping->tlb_addr, request.mapping_size);
  pool.prefetch(last_slot, 0);
  pool.prefetch(last_slot, ~std::uint64_t{0});
  pool.prefetch(pool.start(), 256 * kSlotSize);
  pool.prefetch(pool.end(), kSlotSize);
  pool.prefetch(PhysAddr(0), kSlotSize);

  const PoolStats after = pool.stats();
  EXPECT_EQ(after.used, before.used);
  EXPECT_EQ(after.maps, before.maps);
  EXPECT_TRUE(pool.check_invariants());
  Result<MappingInfo> unmapped = pool.unmap(mapping->tlb_addr, 0);
  ASSERT_TRUE(unmapped) << unmapped.error().message();
  EXPECT_EQ(unmapped->nslots.value(), 3u);
  EXPECT_EQ(pool.used(), 0u);
}

}  // namespace
}  // namespace swiotlb
