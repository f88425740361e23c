// A pool in device memory: the IoTlb's default pool mapped from a device
// file at an offset, seen by the device at its bus address. The device is
// a memfd opened through /proc/self/fd, and its part is played through
// the file alone, at the offset the bus address names.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/core/constants.h"

namespace swiotlb {
namespace {

using testing::pattern;
using testing::same_bytes;

constexpr std::uint64_t kBusBase = 0xc0000000;
constexpr std::uint64_t kDeviceOffset = std::uint64_t{1} << 20;

TEST(DmaDeviceMemory, EveryByteCrossesThePoolAtItsBusAddress) {
  const int fd = memfd_create("fake-bar", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  const std::uint64_t pool_bytes = kSegmentSlots * kSlotSize;
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(kDeviceOffset + pool_bytes)), 0);

  IoTlbOptions options;
  options.nslabs = kSegmentSlots;
  options.policy = "linux";
  options.region = RegionSpec{.kind = RegionKind::device,
                              .path = "/proc/self/fd/" + std::to_string(fd),
                              .offset = kDeviceOffset,
                              .dma_base = DmaAddr(kBusBase)};
  auto io_tlb = IoTlb::create(options);
  ASSERT_TRUE(io_tlb) << io_tlb.error().message();
  const Region& region = *(*io_tlb)->region();
  EXPECT_EQ(region.kind(), RegionKind::device);
  ASSERT_EQ(region.dma_base().value(), kBusBase);

  // The device sees the pool at its bus base and nothing else.
  auto ranges = DmaRangeMap::create(
      {{region.start().value(), region.dma_base().value(), (*io_tlb)->end() - (*io_tlb)->start()}});
  ASSERT_TRUE(ranges) << ranges.error().message();
  auto dev = testing::make_device(io_tlb->get(), {.name = "bar", .dma_ranges = *ranges});
  ASSERT_TRUE(dev);
  ASSERT_EQ(dev->streaming_pools().size(), 1u);
  EXPECT_EQ(dev->streaming_pools()[0].dma_start.value(), kBusBase);

  // To the device: the bytes are in the device file where the bus address says.
  const std::vector<std::byte> out = pattern(10000, 1);
  auto dma = map_single(*dev, out.data(), out.size(), Direction::to_device);
  ASSERT_TRUE(dma) << dma.error().message();
  ASSERT_GE(dma->value(), kBusBase);
  ASSERT_LE(dma->value() + out.size(), kBusBase + pool_bytes);
  std::vector<std::byte> seen(out.size());
  ASSERT_EQ(pread(fd, seen.data(), seen.size(),
                  static_cast<off_t>(kDeviceOffset + (dma->value() - kBusBase))),
            static_cast<ssize_t>(seen.size()));
  EXPECT_TRUE(same_bytes(seen.data(), out.data(), out.size()));
  EXPECT_TRUE(unmap_single(*dev, *dma, out.size(), Direction::to_device));

  // From the device: what it writes at the bus address reaches the buffer.
  std::vector<std::byte> in(6000);
  auto back = map_single(*dev, in.data(), in.size(), Direction::from_device);
  ASSERT_TRUE(back) << back.error().message();
  const std::vector<std::byte> written = pattern(in.size(), 2);
  ASSERT_EQ(pwrite(fd, written.data(), written.size(),
                   static_cast<off_t>(kDeviceOffset + (back->value() - kBusBase))),
            static_cast<ssize_t>(written.size()));
  EXPECT_TRUE(unmap_single(*dev, *back, in.size(), Direction::from_device));
  EXPECT_TRUE(same_bytes(in.data(), written.data(), in.size()));
  EXPECT_TRUE(dev->close());
  dev.reset();
  io_tlb->reset();
  close(fd);
}

}  // namespace
}  // namespace swiotlb
