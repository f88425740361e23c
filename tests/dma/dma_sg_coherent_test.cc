// Scatter-gather lists, coherent buffers and cache maintenance for
// non-coherent devices.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/core/constants.h"

namespace swiotlb {
namespace {

using testing::device_view;
using testing::make_device;
using testing::make_io_tlb;
using testing::pattern;
using testing::same_bytes;

TEST(DmaSg, MapsEveryEntryAndRoundTrips) {
  auto io_tlb = make_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::vector<std::byte>> buffers = {pattern(512, 1), pattern(4096, 2),
                                                 pattern(65536, 3)};
  std::vector<ScatterEntry> sg;
  for (auto& b : buffers) {
    sg.push_back({PhysAddr::from_pointer(b.data()), static_cast<std::uint32_t>(b.size()), {}, 0});
  }
  auto mapped = map_sg(*dev, sg, Direction::bidirectional);
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_EQ(*mapped, 3u);
  for (std::size_t i = 0; i < sg.size(); ++i) {
    EXPECT_EQ(sg[i].dma_length, buffers[i].size());
    EXPECT_TRUE(same_bytes(device_view(sg[i].dma_address), buffers[i].data(), buffers[i].size()));
    std::memset(device_view(sg[i].dma_address), 0x60 + static_cast<int>(i), buffers[i].size());
  }
  ASSERT_TRUE(sync_sg_for_cpu(*dev, sg, Direction::bidirectional));
  EXPECT_EQ(buffers[2][100], std::byte{0x62});
  ASSERT_TRUE(sync_sg_for_device(*dev, sg, Direction::bidirectional));
  ASSERT_TRUE(unmap_sg(*dev, sg, Direction::bidirectional));
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

TEST(DmaSg, SegmentLongerThanTheDeviceTakesIsRefusedAndUndone) {
  auto io_tlb = make_io_tlb();
  auto dev = make_device(io_tlb.get(), {.name = "dev", .max_segment_size = 4096});
  std::vector<std::byte> a(1024), b(8192);
  std::vector<ScatterEntry> sg = {{PhysAddr::from_pointer(a.data()), 1024, {}, 0},
                                  {PhysAddr::from_pointer(b.data()), 8192, {}, 0}};
  auto mapped = map_sg(*dev, sg, Direction::to_device);
  ASSERT_FALSE(mapped);
  EXPECT_EQ(mapped.error().code(), Errc::invalid_argument);
  EXPECT_EQ(io_tlb->pool().used(), 0u) << "the first entry was unmapped again";
  EXPECT_TRUE(dev->close());
}

TEST(DmaSg, FailureHalfWayUndoesTheEntriesBefore) {
  auto io_tlb = make_io_tlb(128);
  auto dev = make_device(io_tlb.get());
  // Four 64 KiB entries fill the 256 KiB pool; the fifth finds no room.
  std::vector<std::vector<std::byte>> buffers(5, std::vector<std::byte>(64 * 1024));
  std::vector<ScatterEntry> sg;
  for (auto& b : buffers) {
    sg.push_back({PhysAddr::from_pointer(b.data()), 64 * 1024, {}, 0});
  }
  auto mapped = map_sg(*dev, sg, Direction::to_device, Attr::no_warn);
  ASSERT_FALSE(mapped);
  EXPECT_EQ(mapped.error().code(), Errc::pool_full);
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

TEST(DmaCoherent, ZeroedPageRoundedAndFreed) {
  auto io_tlb = make_io_tlb();
  // A device that sees only the pool gets its coherent memory there.
  auto pool_only = DmaRangeMap::create({{io_tlb->start().value(), io_tlb->start().value(),
                                         io_tlb->end().value() - io_tlb->start().value()}});
  ASSERT_TRUE(pool_only);
  auto dev = make_device(io_tlb.get(), {.name = "pool-only", .dma_ranges = *pool_only});
  // Dirty the pool first so that zeroing is observable.
  std::vector<std::byte> junk = pattern(16384, 9);
  auto dma = map_single(*dev, junk.data(), junk.size(), Direction::to_device);
  ASSERT_TRUE(dma);
  ASSERT_TRUE(unmap_single(*dev, *dma, junk.size(), Direction::to_device));

  auto buffer = alloc_coherent(*dev, 5000);
  ASSERT_TRUE(buffer) << buffer.error().message();
  EXPECT_EQ(buffer->size, 8192u);
  EXPECT_EQ(buffer->dma_handle.value() % kPageSize, 0u);
  std::vector<std::byte> zeros(8192);
  EXPECT_TRUE(same_bytes(buffer->cpu_addr, zeros.data(), zeros.size()));
  EXPECT_EQ(dev->stats().live_bounced, 1u);
  EXPECT_FALSE(dev->close());
  ASSERT_TRUE(free_coherent(*dev, *buffer));
  EXPECT_FALSE(free_coherent(*dev, *buffer)) << "double free";
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

TEST(DmaCoherent, PoolBeyondTheCoherentMaskIsRefused) {
  auto io_tlb = make_io_tlb();
  auto dev = make_device(io_tlb.get(), {.name = "tiny", .coherent_dma_mask = 0xffff});
  auto buffer = alloc_coherent(*dev, 4096);
  ASSERT_FALSE(buffer);
  EXPECT_EQ(buffer.error().code(), Errc::unreachable);
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

TEST(DmaNonCoherent, CacheMaintenanceAtMapUnmapAndSyncs) {
  auto io_tlb = make_io_tlb();
  std::vector<CacheOp> ops;
  DeviceConfig config{.name = "arm-dev", .coherent = false};
  config.cache_hook = [&](CacheOp op, PhysAddr, std::uint64_t, Direction) { ops.push_back(op); };
  auto dev = make_device(io_tlb.get(), config);
  std::vector<std::byte> buffer(4096);
  auto dma = map_single(*dev, buffer.data(), buffer.size(), Direction::bidirectional);
  ASSERT_TRUE(dma);
  ASSERT_TRUE(sync_single_for_cpu(*dev, *dma, 4096, Direction::bidirectional));
  ASSERT_TRUE(sync_single_for_device(*dev, *dma, 4096, Direction::bidirectional));
  ASSERT_TRUE(unmap_single(*dev, *dma, 4096, Direction::bidirectional));
  const std::vector<CacheOp> expected = {CacheOp::for_device, CacheOp::for_cpu, CacheOp::for_device,
                                         CacheOp::for_cpu};
  EXPECT_EQ(ops, expected);
  EXPECT_EQ(dev->stats().cache_syncs, 4u);

  auto coherent = make_device(io_tlb.get());
  dma = map_single(*coherent, buffer.data(), buffer.size(), Direction::bidirectional);
  ASSERT_TRUE(dma);
  ASSERT_TRUE(unmap_single(*coherent, *dma, 4096, Direction::bidirectional));
  EXPECT_EQ(coherent->stats().cache_syncs, 0u);
}

TEST(DmaNonCoherent, SkipCpuSyncSkipsTheMaintenanceToo) {
  auto io_tlb = make_io_tlb();
  auto dev = make_device(io_tlb.get(), {.name = "arm-dev", .coherent = false});
  std::vector<std::byte> buffer(4096);
  auto dma =
      map_single(*dev, buffer.data(), buffer.size(), Direction::to_device, Attr::skip_cpu_sync);
  ASSERT_TRUE(dma);
  ASSERT_TRUE(unmap_single(*dev, *dma, 4096, Direction::to_device, Attr::skip_cpu_sync));
  EXPECT_EQ(dev->stats().cache_syncs, 0u);
}

}  // namespace
}  // namespace swiotlb
