// Hand-worked slot sequences for the kernel policies. Each expected index
// below was worked out on paper from the kernel's rules (see the comments);
// together they pin the wrap to 0, stride steps, min_align_mask, page
// alignment, area fallback, release merging and segment ends.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kStart = 0x100000;

class PoolFixture {
 public:
  PoolFixture(const std::string& policy, std::uint64_t slots, std::uint32_t areas,
              std::uint64_t start = kStart)
      : start_(start) {
    auto p = make_slot_policy(policy);
    EXPECT_TRUE(p);
    auto made = SlotPool::create({PhysAddr(start), slots, areas}, *p);
    EXPECT_TRUE(made) << made.error().message();
    pool_ = std::move(*made);
  }

  // Maps `size` bytes of a buffer at `orig`; returns the slot index of the
  // bounce address (its data slot), or -1 on failure.
  long map(std::uint64_t size, std::uint64_t orig = 0x40000000, std::uint64_t min_align = 0,
           unsigned cpu = 0, std::uint64_t align = 0) {
    SlotRequest r;
    r.orig = PhysAddr(orig);
    r.mapping_size = size;
    r.min_align_mask = min_align;
    r.alloc_align_mask = align;
    r.pool_dma_start = DmaAddr(start_);
    r.cpu = cpu;
    auto m = pool_->map(r);
    last_ = m ? Status{} : Status(m.error());
    if (!m) {
      return -1;
    }
    last_tlb_ = m->tlb_addr.value();
    EXPECT_TRUE(pool_->check_invariants());
    return static_cast<long>((m->tlb_addr.value() - start_) >> kSlotShift);
  }

  void unmap_slot(long slot, std::uint64_t offset = 0, std::uint64_t min_align = 0) {
    auto info = pool_->unmap(
        PhysAddr(start_ + (static_cast<std::uint64_t>(slot) << kSlotShift) + offset), min_align);
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_TRUE(pool_->check_invariants());
  }

  SlotPool& pool() { return *pool_; }
  const Status& last() const { return last_; }
  std::uint64_t last_tlb() const { return last_tlb_; }

 private:
  std::uint64_t start_;
  std::unique_ptr<SlotPool> pool_;
  Status last_;
  std::uint64_t last_tlb_ = 0;
};

// Both policies agree on these; run them on each.
class BothPolicies : public ::testing::TestWithParam<std::string> {};
INSTANTIATE_TEST_SUITE_P(Kernel, BothPolicies, ::testing::Values("linux", "linux-6.1"));

TEST_P(BothPolicies, CursorAdvancesAndWrapsToZero) {
  PoolFixture f(GetParam(), 256, 1);
  EXPECT_EQ(f.map(128 * kSlotSize), 0);    // a whole segment; cursor 128
  EXPECT_EQ(f.map(120 * kSlotSize), 128);  // cursor 248
  f.unmap_slot(0);
  // 16 slots: 248..255 hold only 8 free, so the search runs off the end of
  // the area, wraps to 0 (not modulo) and takes the freed segment.
  EXPECT_EQ(f.map(16 * kSlotSize), 0);
  EXPECT_EQ(f.map(512), 16);  // cursor was 16
}

TEST_P(BothPolicies, PageSizedMappingsStepInPages) {
  PoolFixture f(GetParam(), 128, 1);
  EXPECT_EQ(f.map(512), 0);   // cursor 1
  EXPECT_EQ(f.map(4096), 2);  // slot 1 is not page-aligned: the run starts at 2
  EXPECT_EQ(f.map(512), 4);   // cursor 4
  EXPECT_EQ(f.map(512), 5);
  EXPECT_EQ(f.map(8192), 6);  // cursor 6 is page-aligned already
}

TEST_P(BothPolicies, NvmeMinAlignKeepsTheLowBits) {
  PoolFixture f(GetParam(), 128, 1);
  // orig ends in 0xa00: the bounce address must end in 0xa00 too, so the
  // data sits 0x200 into an odd slot (bit 0x800 set).
  EXPECT_EQ(f.map(512, 0x12345a00, 0xfff), 1);
  EXPECT_EQ(f.last_tlb() & 0xfff, 0xa00u);
  // orig page-aligned, cursor 2. Mainline steps 2 slots (bit 0x800 only)
  // and takes 2; 6.1 doubles its stride for a page-sized request to 4 and
  // starts at the cursor aligned up to it: 4.
  const long expected = GetParam() == "linux-6.1" ? 4 : 2;
  EXPECT_EQ(f.map(4096, 0x22222000, 0xfff), expected);
  EXPECT_EQ(f.last_tlb() & 0xfff, 0u);
  f.unmap_slot(1, 0x200, 0xfff);
  f.unmap_slot(expected, 0, 0xfff);
  EXPECT_EQ(f.pool().used(), 0u);
}

TEST_P(BothPolicies, FullAreaMovesToTheNextArea) {
  PoolFixture f(GetParam(), 256, 2);  // areas of 128 slots
  EXPECT_EQ(f.map(128 * kSlotSize, 0x40000000, 0, /*cpu=*/0), 0);
  EXPECT_EQ(f.map(512, 0x40000000, 0, /*cpu=*/0), 128);  // area 0 is full
  EXPECT_EQ(f.map(512, 0x40000000, 0, /*cpu=*/1), 129);  // CPU 1 starts in area 1
  EXPECT_EQ(f.map(512, 0x40000000, 0, /*cpu=*/3), 130);  // CPU 3 & 1 = area 1
  auto stats = f.pool().stats();
  EXPECT_EQ(stats.areas[0].used, 128u);
  EXPECT_EQ(stats.areas[1].used, 3u);
}

TEST_P(BothPolicies, ReleaseMergesWithTheFreeRunsAroundIt) {
  PoolFixture f(GetParam(), 128, 1);
  EXPECT_EQ(f.map(8192), 0);
  EXPECT_EQ(f.map(8192), 4);
  EXPECT_EQ(f.map(8192), 8);
  EXPECT_EQ(f.pool().largest_free_run(), 116u);
  f.unmap_slot(4);  // between two live mappings: a run of 4
  EXPECT_EQ(f.pool().largest_free_run(), 116u);
  f.unmap_slot(0);  // merges with the run after it: 8
  EXPECT_EQ(f.pool().used(), 4u);
  f.unmap_slot(8);  // merges both ways: the whole segment again
  EXPECT_EQ(f.pool().largest_free_run(), 128u);
  EXPECT_EQ(f.pool().used(), 0u);
}

TEST_P(BothPolicies, MappingsStopAtSegmentEnds) {
  PoolFixture f(GetParam(), 256, 1);
  EXPECT_EQ(f.map(120 * kSlotSize), 0);  // cursor 120
  EXPECT_EQ(f.map(8 * kSlotSize), 120);  // ends exactly at the segment end
  f.unmap_slot(120);                     // nothing after it in its segment to merge
  EXPECT_EQ(f.pool().largest_free_run(), 128u);
  EXPECT_EQ(f.map(12 * kSlotSize), 128);  // 120..127 hold 8: the next segment
  EXPECT_EQ(f.map(120 * kSlotSize), -1);  // 116 left in segment 1, 8 in segment 0
  EXPECT_EQ(f.map(8 * kSlotSize), 140);   // cursor 140
  EXPECT_EQ(f.map(8 * kSlotSize), 148);
  f.unmap_slot(0);  // the free run 120..127 joins it
  EXPECT_EQ(f.pool().largest_free_run(), 128u);
}

TEST_P(BothPolicies, TooLargeForASegmentIsFull) {
  PoolFixture f(GetParam(), 256, 1);
  EXPECT_EQ(f.map(128 * kSlotSize + 1), -1);
  EXPECT_EQ(f.last().error().code(), Errc::pool_full);
  EXPECT_EQ(f.pool().stats().failures, 1u);
}

TEST_P(BothPolicies, FullPoolFailsWithTheKernelsMessage) {
  PoolFixture f(GetParam(), 128, 1);
  EXPECT_EQ(f.map(128 * kSlotSize), 0);
  EXPECT_EQ(f.map(4096), -1);
  EXPECT_EQ(f.last().error().code(), Errc::pool_full);
  EXPECT_EQ(f.last().error().message(),
            "swiotlb buffer is full (sz: 4096 bytes), total 128 (slots), used 128 (slots)");
  EXPECT_TRUE(f.pool().check_invariants());
}

TEST(Linux61Search, PageAlignmentComesFromTheIndexNotTheAddress) {
  // A pool that starts half-way into a page: 6.1 aligns the index, so a
  // page-sized mapping lands at an address that is not page-aligned.
  PoolFixture f("linux-6.1", 128, 1, 0x100800);
  EXPECT_EQ(f.map(4096), 0);
  EXPECT_EQ(f.last_tlb(), 0x100800u);
}

TEST(LinuxSearch, PageAlignmentIsTestedOnTheAddress) {
  PoolFixture f("linux", 128, 1, 0x100800);
  EXPECT_EQ(f.map(4096), 1);
  EXPECT_EQ(f.last_tlb(), 0x101000u);
}

TEST(LinuxSearch, AllocAlignMaskAddsPadSlots) {
  PoolFixture f("linux", 128, 1);
  // The kept offset 0xa00 is larger than a slot under a page alignment: one
  // pad slot, then the data 0x200 into slot 1.
  EXPECT_EQ(f.map(0x600, 0x12345a00, 0xfff, 0, /*align=*/0xfff), 1);
  EXPECT_EQ(f.last_tlb(), kStart + 0xa00);
  EXPECT_EQ(f.pool().used(), 2u);
  f.unmap_slot(1, 0x200, 0xfff);
  EXPECT_EQ(f.pool().used(), 0u);
}

TEST(Linux61Search, AllocSizeSmallerThanMappingIsRefused) {
  PoolFixture f("linux-6.1", 128, 1);
  SlotRequest r;
  r.orig = PhysAddr(0x1000);
  r.mapping_size = 8192;
  r.alloc_size = 4096;
  r.pool_dma_start = DmaAddr(kStart);
  auto m = f.pool().map(r);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::invalid_argument);
}

// Builds the state in which 6.1's search never comes back to its start: the
// cursor at 9 (aligned start 12), free runs too short, and an NVMe request
// whose kept offset forces +1 steps onto the odd grid 1, 5, 9, ...
void build_spin_state(PoolFixture& f) {
  for (long i = 0; i < 127; ++i) {
    ASSERT_EQ(f.map(4096), 2 * i);
  }
  f.unmap_slot(8);
  ASSERT_EQ(f.map(512), 254);
  ASSERT_EQ(f.map(512), 255);  // cursor wraps to 0
  f.unmap_slot(20);
  ASSERT_EQ(f.map(512), 8);  // cursor 9; free: 9, 20, 21
}

TEST(Linux61Search, DetectsTheSearchThatWouldSpin) {
  PoolFixture f("linux-6.1", 256, 1);
  build_spin_state(f);
  EXPECT_EQ(f.map(4096, 0x10000a00, 0xfff), -1);
  EXPECT_EQ(f.last().error().code(), Errc::search_would_spin);
  EXPECT_TRUE(f.pool().check_invariants());
}

TEST(LinuxSearch, SameStateFailsCleanly) {
  PoolFixture f("linux", 256, 1);
  build_spin_state(f);
  EXPECT_EQ(f.map(4096, 0x10000a00, 0xfff), -1);
  EXPECT_EQ(f.last().error().code(), Errc::pool_full);
}

TEST(SlotPoolChecks, UnmapOfAnAddressNotHandedOutFails) {
  PoolFixture f("linux", 128, 1);
  EXPECT_EQ(f.map(4096), 0);
  auto inside = f.pool().unmap(PhysAddr(kStart + 2048), 0);
  ASSERT_FALSE(inside);
  EXPECT_EQ(inside.error().code(), Errc::not_mapped);
  auto outside = f.pool().unmap(PhysAddr(kStart + 128 * kSlotSize), 0);
  ASSERT_FALSE(outside);
  f.unmap_slot(0);
  auto twice = f.pool().unmap(PhysAddr(kStart), 0);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), Errc::not_mapped);
  EXPECT_TRUE(f.pool().check_invariants());
}

TEST(SlotPoolChecks, FindMappingCoversPartialRanges) {
  PoolFixture f("linux", 128, 1);
  EXPECT_EQ(f.map(10000, 0x7000), 0);
  auto inner = f.pool().find_mapping(PhysAddr(kStart + 5000), 100);
  ASSERT_TRUE(inner);
  EXPECT_EQ(f.pool().orig_of(*inner, PhysAddr(kStart + 5000)).value(), 0x7000u + 5000);
  auto beyond = f.pool().find_mapping(PhysAddr(kStart + 9990), 100);
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.error().code(), Errc::out_of_range);
  auto free_slot = f.pool().find_mapping(PhysAddr(kStart + 20 * kSlotSize), 1);
  ASSERT_FALSE(free_slot);
  EXPECT_EQ(free_slot.error().code(), Errc::not_mapped);
}

TEST(SlotPoolChecks, HiwaterIsTheRunningMaximumAndResetsToZero) {
  PoolFixture f("linux", 128, 1);
  EXPECT_EQ(f.map(8192), 0);
  EXPECT_EQ(f.map(8192), 4);
  f.unmap_slot(0);
  EXPECT_EQ(f.pool().used(), 4u);
  EXPECT_EQ(f.pool().hiwater(), 8u);
  f.pool().reset_hiwater();
  EXPECT_EQ(f.pool().hiwater(), 0u);
  EXPECT_EQ(f.map(512), 8);  // the cursor stayed at 8
  EXPECT_EQ(f.pool().hiwater(), 5u);
}

}  // namespace
}  // namespace swiotlb
