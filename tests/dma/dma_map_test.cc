// The DMA API's single mappings: the direct-or-bounce decision, the copy
// rules per direction, partial syncs, and the kernel's alignment promises.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/core/log.h"

namespace swiotlb {
namespace {

using testing::device_view;
using testing::make_device;
using testing::make_io_tlb;
using testing::pattern;
using testing::same_bytes;

TEST(DmaMap, ReachableBufferMapsDirectWhenNotForced) {
  auto io_tlb = make_io_tlb(1024, /*force=*/false);
  ASSERT_TRUE(io_tlb);
  auto dev = make_device(io_tlb.get(), {.name = "nic"});
  std::vector<std::byte> buffer = pattern(4096, 1);
  auto dma = map_single(*dev, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(dma) << dma.error().message();
  EXPECT_EQ(dma->value(), PhysAddr::from_pointer(buffer.data()).value());
  EXPECT_EQ(io_tlb->pool().used(), 0u);
  EXPECT_EQ(dev->stats().live_direct, 1u);
  EXPECT_TRUE(unmap_single(*dev, *dma, buffer.size(), Direction::to_device));
  EXPECT_TRUE(dev->close());
}

TEST(DmaMap, ForceBouncesEverything) {
  auto io_tlb = make_io_tlb(1024, /*force=*/true);
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> buffer = pattern(10000, 2);
  auto dma = map_single(*dev, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(dma);
  EXPECT_TRUE(io_tlb->contains(PhysAddr(dma->value())));
  EXPECT_TRUE(same_bytes(device_view(*dma), buffer.data(), buffer.size()));
  EXPECT_EQ(io_tlb->pool().used(), nr_slots(10000));
  EXPECT_TRUE(unmap_single(*dev, *dma, buffer.size(), Direction::to_device));
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

TEST(DmaMap, ThirtyTwoBitDeviceBouncesIntoLowMemory) {
  auto io_tlb = make_io_tlb(1024, /*force=*/false);
  if (io_tlb->end().value() > (std::uint64_t{1} << 32)) {
    GTEST_SKIP() << "low placement is not available here (ThreadSanitizer)";
  }
  auto dev = make_device(io_tlb.get(), {.name = "old-nic", .dma_mask = 0xffffffff});
  // The heap of a 64-bit process sits above 4 GiB.
  auto buffer = std::make_unique<std::byte[]>(8192);
  if (PhysAddr::from_pointer(buffer.get()).value() < (std::uint64_t{1} << 32)) {
    GTEST_SKIP() << "this heap is below 4 GiB";
  }
  auto dma = map_single(*dev, buffer.get(), 8192, Direction::from_device);
  ASSERT_TRUE(dma);
  EXPECT_LE(dma->value() + 8191, 0xffffffffu);
  EXPECT_TRUE(unmap_single(*dev, *dma, 8192, Direction::from_device));
}

TEST(DmaMap, UnreachableWithoutAPoolFails) {
  auto dev = make_device(nullptr, {.name = "old-nic", .dma_mask = 0xffffffff});
  auto buffer = std::make_unique<std::byte[]>(64);
  if (PhysAddr::from_pointer(buffer.get()).value() < (std::uint64_t{1} << 32)) {
    GTEST_SKIP() << "this heap is below 4 GiB";
  }
  auto dma = map_single(*dev, buffer.get(), 64, Direction::to_device);
  ASSERT_FALSE(dma);
  EXPECT_EQ(dma.error().code(), Errc::unreachable);
  EXPECT_EQ(dev->stats().map_failures, 1u);
}

TEST(DmaMap, FromDeviceMapFillsTheBounceBufferSoPartialWritesKeepTheRest) {
  auto io_tlb = make_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> buffer = pattern(6000, 3);
  const std::vector<std::byte> before = buffer;
  auto dma = map_single(*dev, buffer.data(), buffer.size(), Direction::from_device);
  ASSERT_TRUE(dma);
  EXPECT_TRUE(same_bytes(device_view(*dma), before.data(), before.size()));
  std::memset(device_view(*dma) + 100, 0xab, 50);  // the device writes 50 bytes
  EXPECT_TRUE(same_bytes(buffer.data(), before.data(), buffer.size())) << "no copy before unmap";
  ASSERT_TRUE(unmap_single(*dev, *dma, buffer.size(), Direction::from_device));
  std::vector<std::byte> expected = before;
  std::memset(expected.data() + 100, 0xab, 50);
  EXPECT_TRUE(same_bytes(buffer.data(), expected.data(), buffer.size()));
}

TEST(DmaMap, SkipCpuSyncLeavesTheOriginalAlone) {
  auto io_tlb = make_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> buffer = pattern(3000, 4);
  const std::vector<std::byte> before = buffer;
  auto dma = map_single(*dev, buffer.data(), buffer.size(), Direction::bidirectional);
  ASSERT_TRUE(dma);
  std::memset(device_view(*dma), 0x11, buffer.size());
  ASSERT_TRUE(
      unmap_single(*dev, *dma, buffer.size(), Direction::bidirectional, Attr::skip_cpu_sync));
  EXPECT_TRUE(same_bytes(buffer.data(), before.data(), buffer.size()));
}

TEST(DmaMap, ToDeviceUnmapDoesNotCopyBack) {
  auto io_tlb = make_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> buffer = pattern(3000, 5);
  const std::vector<std::byte> before = buffer;
  auto dma = map_single(*dev, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(dma);
  std::memset(device_view(*dma), 0x22, buffer.size());
  ASSERT_TRUE(unmap_single(*dev, *dma, buffer.size(), Direction::to_device));
  EXPECT_TRUE(same_bytes(buffer.data(), before.data(), buffer.size()));
}

TEST(DmaMap, PartialSyncsCopyOnlyTheirRange) {
  auto io_tlb = make_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> buffer = pattern(8192, 6);
  auto dma = map_single(*dev, buffer.data(), buffer.size(), Direction::bidirectional);
  ASSERT_TRUE(dma);
  // The device writes everything; the CPU takes back only [1000, 1100).
  std::memset(device_view(*dma), 0x33, buffer.size());
  ASSERT_TRUE(sync_single_for_cpu(*dev, *dma + 1000, 100, Direction::bidirectional));
  EXPECT_EQ(buffer[999], pattern(8192, 6)[999]);
  EXPECT_EQ(buffer[1000], std::byte{0x33});
  EXPECT_EQ(buffer[1099], std::byte{0x33});
  EXPECT_EQ(buffer[1100], pattern(8192, 6)[1100]);
  // The CPU changes [5000, 5010) and hands just that to the device.
  std::memset(buffer.data() + 5000, 0x44, 10);
  ASSERT_TRUE(sync_single_for_device(*dev, *dma + 5000, 10, Direction::bidirectional));
  EXPECT_EQ(device_view(*dma)[4999], std::byte{0x33});
  EXPECT_EQ(device_view(*dma)[5000], std::byte{0x44});
  EXPECT_EQ(device_view(*dma)[5010], std::byte{0x33});
  ASSERT_TRUE(
      unmap_single(*dev, *dma, buffer.size(), Direction::bidirectional, Attr::skip_cpu_sync));
}

TEST(DmaMap, SyncForCpuOfToDeviceCopiesNothing) {
  auto io_tlb = make_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> buffer = pattern(512, 7);
  auto dma = map_single(*dev, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(dma);
  std::memset(device_view(*dma), 0x55, buffer.size());
  ASSERT_TRUE(sync_single_for_cpu(*dev, *dma, buffer.size(), Direction::to_device));
  EXPECT_EQ(buffer[0], pattern(512, 7)[0]);
  ASSERT_TRUE(unmap_single(*dev, *dma, buffer.size(), Direction::to_device));
}

TEST(DmaMap, MinAlignMaskKeepsTheLowBitsOfTheOriginal) {
  auto io_tlb = make_io_tlb();
  auto dev = make_device(io_tlb.get(), {.name = "nvme", .min_align_mask = 0xfff});
  auto storage = std::make_unique<std::byte[]>(3 * 4096);
  for (std::uint64_t offset : {0x0ull, 0x200ull, 0x800ull, 0xa00ull, 0xffeull}) {
    std::byte* buffer = storage.get() + 4096 + offset;
    auto dma = map_single(*dev, buffer, 1000, Direction::to_device);
    ASSERT_TRUE(dma);
    EXPECT_EQ(dma->value() & 0xfff, PhysAddr::from_pointer(buffer).value() & 0xfff);
    ASSERT_TRUE(unmap_single(*dev, *dma, 1000, Direction::to_device));
  }
}

TEST(DmaMap, PageSizedMappingsArePageAligned) {
  auto io_tlb = make_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> small(100);
  auto first = map_single(*dev, small.data(), small.size(), Direction::to_device);
  ASSERT_TRUE(first);
  std::vector<std::byte> page(4096);
  auto dma = map_single(*dev, page.data(), page.size(), Direction::to_device);
  ASSERT_TRUE(dma);
  EXPECT_EQ(dma->value() % kPageSize, 0u);
  EXPECT_TRUE(unmap_single(*dev, *first, small.size(), Direction::to_device));
  EXPECT_TRUE(unmap_single(*dev, *dma, page.size(), Direction::to_device));
}

TEST(DmaMap, MaxMappingSizeIsASegmentLessTheAlignment) {
  auto io_tlb = make_io_tlb();
  auto plain = make_device(io_tlb.get());
  auto nvme = make_device(io_tlb.get(), {.name = "nvme", .min_align_mask = 0xfff});
  EXPECT_EQ(max_mapping_size(*plain), 256u * 1024);
  EXPECT_EQ(max_mapping_size(*nvme), 256u * 1024 - 4096);
  auto direct = make_io_tlb(1024, /*force=*/false);
  auto wide = make_device(direct.get());
  EXPECT_EQ(max_mapping_size(*wide), ~std::uint64_t{0});
}

TEST(DmaMap, FullPoolFailsCleanlyCountsAndWarnsUnlessNoWarn) {
  std::vector<std::string> warnings;
  set_log_sink([&](std::string_view m) { warnings.emplace_back(m); });
  auto io_tlb = make_io_tlb(128);
  auto dev = make_device(io_tlb.get(), {.name = "disk"});
  std::vector<std::byte> big(256 * 1024);
  auto all = map_single(*dev, big.data(), big.size(), Direction::to_device);
  ASSERT_TRUE(all);
  std::vector<std::byte> one(512);
  auto refused = map_single(*dev, one.data(), one.size(), Direction::to_device);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::pool_full);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0],
            "disk: swiotlb buffer is full (sz: 512 bytes), total 128 (slots), used 128 (slots)");
  auto quiet = map_single(*dev, one.data(), one.size(), Direction::to_device, Attr::no_warn);
  ASSERT_FALSE(quiet);
  EXPECT_EQ(warnings.size(), 1u);
  EXPECT_EQ(io_tlb->pool().stats().failures, 2u);
  EXPECT_EQ(dev->stats().map_failures, 2u);
  EXPECT_TRUE(io_tlb->pool().check_invariants());
  EXPECT_TRUE(unmap_single(*dev, *all, big.size(), Direction::to_device));
  set_log_sink({});
}

TEST(DmaMap, ZeroSizeAndNoDirectionAreRefused) {
  auto io_tlb = make_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::byte b{};
  EXPECT_EQ(map_single(*dev, &b, 0, Direction::to_device).error().code(), Errc::invalid_argument);
  EXPECT_EQ(map_single(*dev, &b, 1, Direction::none).error().code(), Errc::invalid_argument);
  EXPECT_EQ(dev->stats().debug_errors, 2u);
}

}  // namespace
}  // namespace swiotlb
