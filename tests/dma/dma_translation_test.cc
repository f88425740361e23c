// Devices that see memory through dma ranges and a Xen-like frame
// translator: every mapping is either direct at the translated address or
// bounced into a pool the device reaches, and device addresses translate
// back to the CPU address they came from.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/core/constants.h"

namespace swiotlb {
namespace {

using testing::make_device;
using testing::make_io_tlb;

// What the device reads at `addr`, found the way the device's bus would.
std::byte* seen_by(const Device& dev, DmaAddr addr) {
  return static_cast<std::byte*>(dev.dma_to_phys(addr).to_pointer());
}

constexpr std::uint64_t kOneTiB = std::uint64_t{1} << 40;

TEST(DmaRanges, OverlapAndEmptyRangesAreRefused) {
  EXPECT_FALSE(DmaRangeMap::create({{0, 0, 0}}));
  EXPECT_FALSE(DmaRangeMap::create({{0x1000, 0, 0x2000}, {0x2000, 0x10000, 0x1000}}));
  EXPECT_FALSE(DmaRangeMap::create({{0x1000, 0, 0x1000}, {0x5000, 0x800, 0x1000}}));
  auto ok = DmaRangeMap::create({{0x5000, 0x1000, 0x1000}, {0x1000, 0x9000, 0x1000}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->to_dma(PhysAddr(0x1010)).value(), 0x9010u);
  EXPECT_EQ(ok->to_dma(PhysAddr(0x5ff0), 0x20).value(), kInvalidAddress) << "runs off the range";
  EXPECT_EQ(ok->to_phys(DmaAddr(0x1004)).value(), 0x5004u);
  EXPECT_EQ(ok->to_dma(PhysAddr(0x3000)).value(), kInvalidAddress);
}

TEST(DmaRanges, OffsetWindowMapsDirectAtTheTranslatedAddress) {
  auto io_tlb = make_io_tlb(1024, /*force=*/false);
  auto ranges = DmaRangeMap::create({{0, kOneTiB, std::uint64_t{1} << 47}});
  ASSERT_TRUE(ranges);
  auto dev = make_device(io_tlb.get(), {.name = "offset", .dma_ranges = *ranges});
  std::vector<std::byte> buffer(4096, std::byte{0x42});
  auto dma = map_single(*dev, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(dma);
  EXPECT_EQ(dma->value(), PhysAddr::from_pointer(buffer.data()).value() + kOneTiB);
  EXPECT_EQ(seen_by(*dev, *dma), buffer.data());
  EXPECT_EQ(io_tlb->pool().used(), 0u);
  EXPECT_TRUE(unmap_single(*dev, *dma, buffer.size(), Direction::to_device));
}

TEST(DmaRanges, BufferOutsideEveryRangeBouncesIntoThePoolWindow) {
  auto io_tlb = make_io_tlb(1024, /*force=*/false);
  const std::uint64_t pool_bytes = io_tlb->end() - io_tlb->start();
  // The device sees only the pool, at 256 MiB.
  auto ranges = DmaRangeMap::create({{io_tlb->start().value(), 0x10000000, pool_bytes}});
  ASSERT_TRUE(ranges);
  auto dev = make_device(io_tlb.get(), {.name = "windowed", .dma_ranges = *ranges});
  std::vector<std::byte> buffer(3000, std::byte{0x17});
  auto dma = map_single(*dev, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(dma);
  EXPECT_GE(dma->value(), 0x10000000u);
  EXPECT_LT(dma->value(), 0x10000000u + pool_bytes);
  EXPECT_EQ(*seen_by(*dev, *dma), std::byte{0x17});
  EXPECT_EQ(io_tlb->pool().used(), nr_slots(3000));
  EXPECT_TRUE(unmap_single(*dev, *dma, buffer.size(), Direction::to_device));
}

TEST(DmaRanges, PoolBeyondTheDevicesReachIsAClearError) {
  auto io_tlb = make_io_tlb(1024, /*force=*/false);
  auto ranges = DmaRangeMap::create({{0, kOneTiB, std::uint64_t{1} << 47}});
  ASSERT_TRUE(ranges);
  auto dev =
      make_device(io_tlb.get(), {.name = "narrow", .dma_mask = 0xffffffff, .dma_ranges = *ranges});
  EXPECT_TRUE(dev->streaming_pools().empty());
  EXPECT_FALSE(dma_supported(*dev, 0xffffffff));
  EXPECT_TRUE(dma_supported(*dev, ~std::uint64_t{0}));
  std::vector<std::byte> buffer(64);
  auto dma = map_single(*dev, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_FALSE(dma);
  EXPECT_EQ(dma.error().code(), Errc::unreachable);
  EXPECT_NE(dma.error().message().find("reaches none of its pools"), std::string::npos);
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

TEST(FrameTranslator, ForeignFrameIsSeenAtItsMachineAddress) {
  auto io_tlb = make_io_tlb(1024, /*force=*/false);
  auto page = std::make_unique<std::byte[]>(3 * kPageSize);
  std::byte* buffer =
      page.get() + kPageSize - (PhysAddr::from_pointer(page.get()).value() % kPageSize);
  const std::uint64_t pfn = PhysAddr::from_pointer(buffer).value() >> kPageShift;
  const std::uint64_t mfn = std::uint64_t{0x6000000000} >> kPageShift;  // far from any local page
  FrameTranslator::Builder builder;
  ASSERT_TRUE(builder.map(pfn, mfn));
  EXPECT_FALSE(builder.map(pfn, mfn + 1)) << "a pfn mapped twice";
  auto dev = make_device(io_tlb.get(), {.name = "xen", .translator = builder.build()});

  auto dma = map_single(*dev, buffer + 0x10, 0x100, Direction::bidirectional);
  ASSERT_TRUE(dma);
  EXPECT_EQ(dma->value(), (mfn << kPageShift) | 0x10);
  EXPECT_EQ(seen_by(*dev, *dma), buffer + 0x10) << "the machine address translates back";
  EXPECT_EQ(io_tlb->pool().used(), 0u);
  EXPECT_TRUE(unmap_single(*dev, *dma, 0x100, Direction::bidirectional));

  // Across into the next (local) page: not contiguous in machine frames, so
  // the device cannot see it as one run and it is bounced.
  auto split = map_single(*dev, buffer + kPageSize - 8, 16, Direction::to_device);
  ASSERT_TRUE(split);
  EXPECT_TRUE(io_tlb->contains(dev->dma_to_phys(*split)));
  EXPECT_TRUE(unmap_single(*dev, *split, 16, Direction::to_device));
}

TEST(FrameTranslator, LocalPageShadowedByAForeignFrameIsNotReachable) {
  FrameTranslator::Builder builder;
  ASSERT_TRUE(builder.map(0x100, 0x200));  // pfn 0x100 takes machine frame 0x200
  auto t = builder.build();
  EXPECT_EQ(t->to_machine(PhysAddr(0x100 << kPageShift)), std::uint64_t{0x200} << kPageShift);
  EXPECT_EQ(t->to_machine(PhysAddr(0x200 << kPageShift)), kInvalidAddress);
  EXPECT_EQ(t->to_pseudo(std::uint64_t{0x200} << kPageShift).value(),
            std::uint64_t{0x100} << kPageShift);
  EXPECT_EQ(t->to_pseudo(std::uint64_t{0x100} << kPageShift).value(), kInvalidAddress);
  EXPECT_EQ(t->to_pseudo(std::uint64_t{0x300} << kPageShift).value(),
            std::uint64_t{0x300} << kPageShift);
}

}  // namespace
}  // namespace swiotlb
