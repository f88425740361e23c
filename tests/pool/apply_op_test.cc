// apply(op, SlotPool): each op does what the pool's own call does, and the
// ops a pool does not take are refused with nothing changed.
#include "swiotlb/pool/apply_op.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

namespace swiotlb::ops {
namespace {

using ::testing::HasSubstr;

constexpr std::uint64_t kStart = 0x100000;

std::unique_ptr<SlotPool> make_pool() {
  auto policy = make_slot_policy("linux");
  EXPECT_TRUE(policy);
  auto pool = SlotPool::create({PhysAddr(kStart), 256, 1}, *policy);
  EXPECT_TRUE(pool) << pool.error().message();
  return pool ? std::move(*pool) : nullptr;
}

Map map_of(std::uint64_t size) {
  Map m;
  m.orig = 0x7000123;
  m.size = size;
  m.min_align_mask = 0xfff;
  m.dir = Direction::to_device;
  return m;
}

TEST(ApplyOnSlotPool, MapUnmapAndSyncAreThePoolsOwn) {
  std::unique_ptr<SlotPool> pool = make_pool();
  ASSERT_TRUE(pool);
  Applied got = apply(map_of(5000), *pool);
  ASSERT_TRUE(got) << got.error().message();
  // min_align_mask keeps the low 12 bits of orig; 5000 bytes plus the kept
  // offset 0x123 take 3 slots.
  EXPECT_EQ(*got & 0xfff, 0x123u);
  EXPECT_TRUE(pool->contains(PhysAddr(*got)));
  EXPECT_EQ(pool->used(), 3u);

  EXPECT_TRUE(apply(Sync{*got + 100, 200, Direction::to_device, SyncFor::cpu}, *pool));
  Applied outside = apply(Sync{*got + 4990, 100, Direction::to_device, SyncFor::device}, *pool);
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().code(), Errc::out_of_range);

  // A claim of another size is refused and the mapping stays.
  Applied wrong = apply(Unmap{*got, 4999, 0xfff, Direction::to_device, 0}, *pool);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), Errc::mapping_mismatch);
  EXPECT_EQ(pool->used(), 3u);
  ASSERT_TRUE(apply(Unmap{*got, 5000, 0xfff, Direction::to_device, 0}, *pool));
  EXPECT_EQ(pool->used(), 0u);
  // Once gone it is not mapped.
  Applied again = apply(Unmap{*got, 0, 0xfff, Direction::to_device, 0}, *pool);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::not_mapped);
  EXPECT_TRUE(pool->check_invariants());
}

TEST(ApplyOnSlotPool, AnUnmapWithoutASizeChecksTheAddressAlone) {
  std::unique_ptr<SlotPool> pool = make_pool();
  ASSERT_TRUE(pool);
  Applied got = apply(map_of(100), *pool);
  ASSERT_TRUE(got);
  EXPECT_TRUE(apply(Unmap{*got, 0, 0xfff, Direction::bidirectional, 0}, *pool));
  EXPECT_EQ(pool->used(), 0u);
}

TEST(ApplyOnSlotPool, AFullPoolRefusesAMap) {
  std::unique_ptr<SlotPool> pool = make_pool();
  ASSERT_TRUE(pool);
  Map whole = map_of(256 * 2048);
  whole.orig = 0;
  whole.min_align_mask = 0;
  ASSERT_FALSE(apply(whole, *pool));  // larger than a segment
  for (int i = 0; i < 2; ++i) {
    Map m = map_of(128 * 2048);
    m.orig = 0;
    m.min_align_mask = 0;
    ASSERT_TRUE(apply(m, *pool));
  }
  Applied full = apply(map_of(1), *pool);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code(), Errc::pool_full);
}

TEST(ApplyOnSlotPool, TimeChangesNothingAndOtherOpsAreRefused) {
  std::unique_ptr<SlotPool> pool = make_pool();
  ASSERT_TRUE(pool);
  EXPECT_TRUE(apply(Tick{1'000'000'000}, *pool));
  for (const Op& op : {Op(Grow{64, 1}), Op(IovaReserve{1, 2}), Op(IovaAlloc{0, 1, 100, false}),
                       Op(IovaFree{0, 5, 1})}) {
    Applied refused = apply(op, *pool);
    ASSERT_FALSE(refused) << op_name(op);
    EXPECT_EQ(refused.error().code(), Errc::invalid_argument);
    EXPECT_THAT(refused.error().message(),
                HasSubstr("a SlotPool takes no " + std::string(op_name(op)) + " op"));
  }
  EXPECT_EQ(pool->used(), 0u);
  EXPECT_EQ(pool->slot_count(), 256u);
}

}  // namespace
}  // namespace swiotlb::ops
