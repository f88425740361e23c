// Devices behind an IOMMU: maps are IOVAs around the bridge's holes, the
// page-table model gives back the CPU page, an untrusted device's partial
// granules are bounced with their padding zeroed, and lazy unmaps wait for
// a flush before their IOVA is reused.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/core/constants.h"

namespace swiotlb {
namespace {

using testing::make_device;
using testing::make_io_tlb;

std::shared_ptr<IommuDomain> iproc_domain(IommuMode mode = IommuMode::strict) {
  iova::DeviceIovaSpec spec;
  spec.mask_bits = 48;
  spec.cpu_count = 4;
  spec.inbound = {
      {0x80000000, 0xffffffff}, {0x800000000, 0xfffffffff}, {0x8000000000, 0xbfffffffff}};
  auto domain = IommuDomain::create(spec, mode);
  EXPECT_TRUE(domain) << domain.error().message();
  return domain ? *domain : nullptr;
}

bool in_a_window(std::uint64_t first, std::uint64_t last) {
  const std::pair<std::uint64_t, std::uint64_t> windows[] = {
      {0x80000000, 0xffffffff}, {0x800000000, 0xfffffffff}, {0x8000000000, 0xbfffffffff}};
  for (const auto& [lo, hi] : windows) {
    if (first >= lo && last <= hi) {
      return true;
    }
  }
  return false;
}

std::byte* seen_through(const IommuDomain& iommu, DmaAddr iova) {
  return static_cast<std::byte*>(iommu.translate(iova).to_pointer());
}

TEST(DmaIommu, MapsAreIovasInTheWindowsThatTranslateBack) {
  auto iommu = iproc_domain();
  auto io_tlb = make_io_tlb(1024, false);
  auto dev = make_device(io_tlb.get(), {.name = "nvme", .iommu = iommu});
  std::vector<std::vector<std::byte>> buffers(64, std::vector<std::byte>(10000));
  std::vector<DmaAddr> iovas;
  for (auto& b : buffers) {
    auto iova = map_single(*dev, b.data(), b.size(), Direction::to_device);
    ASSERT_TRUE(iova) << iova.error().message();
    EXPECT_TRUE(in_a_window(iova->value(), iova->value() + b.size() - 1));
    EXPECT_EQ(iova->value() & (kPageSize - 1),
              PhysAddr::from_pointer(b.data()).value() & (kPageSize - 1));
    EXPECT_EQ(seen_through(*iommu, *iova), b.data());
    EXPECT_EQ(seen_through(*iommu, *iova + 9999), b.data() + 9999);
    iovas.push_back(*iova);
  }
  EXPECT_EQ(io_tlb->pool().used(), 0u) << "a trusted device is never bounced";
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    EXPECT_TRUE(unmap_single(*dev, iovas[i], buffers[i].size(), Direction::to_device));
  }
  EXPECT_EQ(iommu->mapped_pages(), 0u);
  EXPECT_TRUE(dev->close());
}

// Leaves old data in every slot of the pool, and its cursor back at 0.
void dirty_the_pool(IoTlb& io_tlb) {
  auto filler = make_device(&io_tlb, {.name = "filler"});
  std::vector<std::byte> junk(256 * 1024, std::byte{0xdd});
  std::vector<DmaAddr> held;
  for (std::uint64_t i = 0; i < io_tlb.pool().slot_count() / kSegmentSlots; ++i) {
    held.push_back(map_single(*filler, junk.data(), junk.size(), Direction::to_device).value());
  }
  for (DmaAddr d : held) {
    ASSERT_TRUE(unmap_single(*filler, d, junk.size(), Direction::to_device));
  }
}

TEST(DmaIommu, UntrustedDeviceSeesOnlyItsBufferAndZeros) {
  auto iommu = iproc_domain();
  auto io_tlb = make_io_tlb(1024, true);
  dirty_the_pool(*io_tlb);
  auto dev = make_device(io_tlb.get(), {.name = "thunderbolt", .iommu = iommu, .untrusted = true});
  auto page = std::make_unique<std::byte[]>(2 * kPageSize);
  std::memset(page.get(), 0xee, 2 * kPageSize);  // secrets around the buffer
  std::byte* buffer = page.get() + 100;
  std::memset(buffer, 0x11, 300);
  auto iova = map_single(*dev, buffer, 300, Direction::to_device);
  ASSERT_TRUE(iova);
  EXPECT_GT(io_tlb->pool().used(), 0u) << "a partial granule is bounced";
  const DmaAddr page_start(iova->value() & ~(kPageSize - 1));
  const std::byte* visible = seen_through(*iommu, page_start);
  const std::uint64_t at = iova->value() & (kPageSize - 1);
  for (std::uint64_t i = 0; i < kPageSize; ++i) {
    const std::byte expected = i >= at && i < at + 300 ? std::byte{0x11} : std::byte{0};
    ASSERT_EQ(visible[i], expected) << "byte " << i << " of the device's page";
  }
  EXPECT_TRUE(unmap_single(*dev, *iova, 300, Direction::to_device));
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

TEST(DmaIommu, UntrustedFromDeviceCopiesBackAtUnmap) {
  auto iommu = iproc_domain();
  auto io_tlb = make_io_tlb(1024, false);
  auto dev = make_device(io_tlb.get(), {.name = "thunderbolt", .iommu = iommu, .untrusted = true});
  std::vector<std::byte> buffer(1000, std::byte{0x22});
  auto iova = map_single(*dev, buffer.data(), buffer.size(), Direction::from_device);
  ASSERT_TRUE(iova);
  std::memset(seen_through(*iommu, *iova), 0x33, 1000);
  EXPECT_EQ(buffer[0], std::byte{0x22});
  ASSERT_TRUE(sync_single_for_cpu(*dev, *iova, 10, Direction::from_device));
  EXPECT_EQ(buffer[0], std::byte{0x33});
  EXPECT_EQ(buffer[10], std::byte{0x22});
  ASSERT_TRUE(unmap_single(*dev, *iova, buffer.size(), Direction::from_device));
  EXPECT_EQ(buffer[999], std::byte{0x33});
}

TEST(DmaIommu, UntrustedWholeGranulesAreNotBounced) {
  auto iommu = iproc_domain();
  auto io_tlb = make_io_tlb(1024, false);
  auto dev = make_device(io_tlb.get(), {.name = "thunderbolt", .iommu = iommu, .untrusted = true});
  auto storage = std::make_unique<std::byte[]>(3 * kPageSize);
  std::byte* aligned =
      storage.get() + (kPageSize - PhysAddr::from_pointer(storage.get()).value() % kPageSize);
  auto iova = map_single(*dev, aligned, 2 * kPageSize, Direction::to_device);
  ASSERT_TRUE(iova);
  EXPECT_EQ(io_tlb->pool().used(), 0u);
  EXPECT_EQ(seen_through(*iommu, *iova), aligned);
  EXPECT_TRUE(unmap_single(*dev, *iova, 2 * kPageSize, Direction::to_device));
}

TEST(DmaIommu, LazyUnmapWaitsForTheFlush) {
  auto iommu = iproc_domain(IommuMode::lazy);
  auto dev = make_device(nullptr, {.name = "nic", .iommu = iommu});
  std::vector<std::byte> buffer(4096);
  auto iova = map_single(*dev, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(iova);
  ASSERT_TRUE(unmap_single(*dev, *iova, buffer.size(), Direction::to_device));
  EXPECT_EQ(iommu->translate(*iova).value(), kInvalidAddress) << "unmapped at once";
  EXPECT_EQ(iommu->queued(), 1u) << "but the IOVA waits for the flush";
  iommu->flush();
  EXPECT_EQ(iommu->queued(), 0u);
}

TEST(DmaIommu, UnmapOfAnIovaNeverMappedIsAnError) {
  auto iommu = iproc_domain();
  auto dev = make_device(nullptr, {.name = "nic", .iommu = iommu});
  Status s = unmap_single(*dev, DmaAddr(0x90000000), 4096, Direction::to_device);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::not_mapped);
  EXPECT_EQ(dev->stats().debug_errors, 1u);
}

}  // namespace
}  // namespace swiotlb
