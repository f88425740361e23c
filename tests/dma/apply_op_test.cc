// apply(op, Device): the ops go through the DMA API as a driver's calls
// would (bytes bounced and copied back), and what a device does not take is
// refused with nothing changed.
#include "swiotlb/dma/apply_op.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "support/dma_fixture.h"

namespace swiotlb::ops {
namespace {

using swiotlb::testing::device_view;
using swiotlb::testing::make_device;
using swiotlb::testing::make_io_tlb;
using swiotlb::testing::pattern;
using ::testing::HasSubstr;

Map map_of(const std::vector<std::byte>& buffer, Direction dir) {
  Map m;
  m.orig = PhysAddr::from_pointer(buffer.data()).value();
  m.size = buffer.size();
  m.dir = dir;
  return m;
}

TEST(ApplyOnDevice, MapBouncesSyncAndUnmapCopyBack) {
  auto tlb = make_io_tlb();
  ASSERT_TRUE(tlb);
  auto device = make_device(tlb.get());
  ASSERT_TRUE(device);
  std::vector<std::byte> buffer = pattern(3000, 1);
  Applied dma = apply(map_of(buffer, Direction::bidirectional), *device);
  ASSERT_TRUE(dma) << dma.error().message();
  EXPECT_TRUE(tlb->contains(PhysAddr(*dma)));
  EXPECT_EQ(std::memcmp(device_view(DmaAddr(*dma)), buffer.data(), buffer.size()), 0);

  // The device writes; a sync for the CPU brings the range back.
  const std::vector<std::byte> written = pattern(100, 2);
  std::memcpy(device_view(DmaAddr(*dma + 50)), written.data(), written.size());
  ASSERT_TRUE(apply(Sync{*dma + 50, 100, Direction::bidirectional, SyncFor::cpu}, *device));
  EXPECT_EQ(std::memcmp(buffer.data() + 50, written.data(), written.size()), 0);
  ASSERT_TRUE(apply(Sync{*dma, 3000, Direction::bidirectional, SyncFor::device}, *device));

  Applied no_size = apply(Unmap{*dma, 0, 0, Direction::bidirectional, 0}, *device);
  ASSERT_FALSE(no_size);
  EXPECT_THAT(no_size.error().message(), HasSubstr("without its size"));
  Applied wrong_dir = apply(Unmap{*dma, 3000, 0, Direction::to_device, 0}, *device);
  ASSERT_FALSE(wrong_dir);
  EXPECT_NE(tlb->used(), 0u);
  ASSERT_TRUE(apply(Unmap{*dma, 3000, 0, Direction::bidirectional, 0}, *device));
  EXPECT_EQ(tlb->used(), 0u);
}

TEST(ApplyOnDevice, AMapMustBeShapedForTheDevice) {
  auto tlb = make_io_tlb();
  ASSERT_TRUE(tlb);
  DeviceConfig config;
  config.min_align_mask = 0xfff;
  auto device = make_device(tlb.get(), config);
  ASSERT_TRUE(device);
  std::vector<std::byte> buffer = pattern(512, 3);
  Map m = map_of(buffer, Direction::to_device);
  Applied other_masks = apply(m, *device);
  ASSERT_FALSE(other_masks);
  EXPECT_THAT(other_masks.error().message(), HasSubstr("device whose masks are 0xfff"));
  m.min_align_mask = 0xfff;
  m.alloc_align_mask = 0xfff;
  Applied aligned = apply(m, *device);
  ASSERT_FALSE(aligned);
  EXPECT_THAT(aligned.error().message(), HasSubstr("map_page takes neither"));
  EXPECT_EQ(tlb->used(), 0u);
  m.alloc_align_mask = 0;
  Applied dma = apply(m, *device);
  ASSERT_TRUE(dma) << dma.error().message();
  EXPECT_EQ(*dma & 0xfff, m.orig & 0xfff);  // min_align_mask kept
  ASSERT_TRUE(apply(Unmap{*dma, 512, 0xfff, Direction::to_device, 0}, *device));
}

TEST(ApplyOnDevice, TimeChangesNothingAndGrowthAndIovasAreRefused) {
  auto tlb = make_io_tlb();
  ASSERT_TRUE(tlb);
  auto device = make_device(tlb.get());
  ASSERT_TRUE(device);
  EXPECT_TRUE(apply(Tick{10}, *device));
  for (const Op& op : {Op(Grow{64, 1}), Op(IovaReserve{1, 2}), Op(IovaAlloc{0, 1, 100, false}),
                       Op(IovaFree{0, 5, 1})}) {
    Applied refused = apply(op, *device);
    ASSERT_FALSE(refused) << op_name(op);
    EXPECT_THAT(refused.error().message(), HasSubstr("a Device takes no"));
  }
  EXPECT_EQ(tlb->used(), 0u);
}

}  // namespace
}  // namespace swiotlb::ops
