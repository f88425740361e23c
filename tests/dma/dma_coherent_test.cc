// Coherent memory as dma_direct_alloc gives it, and the per-device
// dma_uses_io_tlb flag.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/core/constants.h"

namespace swiotlb {
namespace {

using testing::make_device;
using testing::make_io_tlb;
using testing::same_bytes;

// A device that sees only the default pool (its CPU addresses, 1:1): normal
// memory is beyond its reach.
DeviceConfig sees_only_the_pool(const IoTlb& io_tlb) {
  auto ranges = DmaRangeMap::create({{io_tlb.start().value(), io_tlb.start().value(),
                                      io_tlb.end().value() - io_tlb.start().value()}});
  EXPECT_TRUE(ranges) << ranges.error().message();
  DeviceConfig config{.name = "pool-only"};
  if (ranges) {
    config.dma_ranges = *ranges;
  }
  return config;
}

TEST(DmaCoherentSource, ADeviceThatReachesNormalMemoryGetsNormalMemory) {
  auto io_tlb = make_io_tlb(1024, /*force=*/true);
  ASSERT_TRUE(io_tlb);
  auto dev = make_device(io_tlb.get());
  auto buffer = alloc_coherent(*dev, 5000);
  ASSERT_TRUE(buffer) << buffer.error().message();
  EXPECT_EQ(buffer->size, 2 * kPageSize);
  EXPECT_FALSE(io_tlb->contains(PhysAddr::from_pointer(buffer->cpu_addr)))
      << "swiotlb=force bounces streaming mappings, not coherent memory";
  EXPECT_EQ(buffer->dma_handle, dev->phys_to_dma(PhysAddr::from_pointer(buffer->cpu_addr)));
  EXPECT_EQ(io_tlb->pool().used(), 0u);
  EXPECT_EQ(io_tlb->stats().coherent_allocations, 0u);
  EXPECT_FALSE(dev->uses_io_tlb());
  const std::vector<std::byte> zeros(buffer->size);
  EXPECT_TRUE(same_bytes(buffer->cpu_addr, zeros.data(), zeros.size()));
  std::memset(buffer->cpu_addr, 0x5a, buffer->size);  // all of it is writable

  const DeviceStats live = dev->stats();
  EXPECT_EQ(live.live_coherent, 1u);
  EXPECT_EQ(live.live_direct, 0u);
  EXPECT_EQ(live.live_bounced, 0u);
  EXPECT_FALSE(dev->close()) << "a live coherent buffer keeps the device busy";
  // Not a streaming mapping: no direction of a map matches it.
  EXPECT_FALSE(unmap_single(*dev, buffer->dma_handle, buffer->size, Direction::bidirectional));

  ASSERT_TRUE(free_coherent(*dev, *buffer));
  EXPECT_FALSE(free_coherent(*dev, *buffer)) << "double free";
  EXPECT_TRUE(dev->close());
}

TEST(DmaCoherentSource, ADeviceThatCannotReachNormalMemoryGetsThePool) {
  auto io_tlb = make_io_tlb(1024, /*force=*/false);
  ASSERT_TRUE(io_tlb);
  auto dev = make_device(io_tlb.get(), sees_only_the_pool(*io_tlb));
  ASSERT_TRUE(dev);
  EXPECT_FALSE(dev->uses_io_tlb());
  auto buffer = alloc_coherent(*dev, 4096);
  ASSERT_TRUE(buffer) << buffer.error().message();
  EXPECT_TRUE(io_tlb->pool().contains(PhysAddr::from_pointer(buffer->cpu_addr)));
  EXPECT_EQ(io_tlb->stats().coherent_allocations, 1u);
  EXPECT_TRUE(dev->uses_io_tlb());
  EXPECT_EQ(dev->stats().live_bounced, 1u);
  ASSERT_TRUE(free_coherent(*dev, *buffer));
  EXPECT_EQ(io_tlb->pool().used(), 0u);
  EXPECT_TRUE(dev->close());
}

TEST(DmaCoherentSource, NoPoolAndNoReachableMemoryIsRefused) {
  auto io_tlb = make_io_tlb(1024, /*force=*/false);
  ASSERT_TRUE(io_tlb);
  // The device reaches only the pool's memory, but has no IoTlb.
  auto dev = make_device(nullptr, sees_only_the_pool(*io_tlb));
  ASSERT_TRUE(dev);
  auto buffer = alloc_coherent(*dev, 4096);
  ASSERT_FALSE(buffer);
  EXPECT_EQ(buffer.error().code(), Errc::unreachable);
  EXPECT_EQ(dev->stats().map_failures, 1u);
}

TEST(DmaCoherentSource, AFreeOfABufferNotGivenIsRefused) {
  auto io_tlb = make_io_tlb(1024, /*force=*/false);
  auto dev = make_device(io_tlb.get());
  auto buffer = alloc_coherent(*dev, 4096);
  ASSERT_TRUE(buffer);
  CoherentBuffer wrong = *buffer;
  wrong.size = 2 * kPageSize;
  EXPECT_FALSE(free_coherent(*dev, wrong));
  wrong = *buffer;
  std::vector<std::byte> elsewhere(4096);
  wrong.cpu_addr = elsewhere.data();
  EXPECT_FALSE(free_coherent(*dev, wrong));
  EXPECT_EQ(dev->stats().debug_errors, 2u);
  EXPECT_TRUE(free_coherent(*dev, *buffer));
}

TEST(DmaUsesIoTlb, SetByTheFirstBounceOnly) {
  auto io_tlb = make_io_tlb(1024, /*force=*/false);
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> buffer(4096);
  auto direct = map_single(*dev, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(direct);
  EXPECT_FALSE(io_tlb->contains(PhysAddr(direct->value())));
  EXPECT_FALSE(dev->uses_io_tlb()) << "a direct mapping does not bounce";
  ASSERT_TRUE(unmap_single(*dev, *direct, buffer.size(), Direction::to_device));

  auto forced = make_io_tlb(1024, /*force=*/true);
  auto bouncer = make_device(forced.get());
  auto bounced = map_single(*bouncer, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(bounced);
  EXPECT_TRUE(bouncer->uses_io_tlb());
  ASSERT_TRUE(unmap_single(*bouncer, *bounced, buffer.size(), Direction::to_device));
  EXPECT_TRUE(bouncer->uses_io_tlb()) << "the flag stays, as the kernel's does";
}

// A device that never bounced takes every address for a direct mapping of
// its own: another device's bounce address is "not mapped" for it, found
// in its direct table, without the pool being asked (which would have
// answered that another owner holds it).
TEST(DmaUsesIoTlb, ADeviceThatNeverBouncedSkipsThePoolLookup) {
  auto io_tlb = make_io_tlb(1024, /*force=*/true);
  auto bouncer = make_device(io_tlb.get(), {.name = "bouncer"});
  auto idle = make_device(io_tlb.get(), {.name = "idle"});
  std::vector<std::byte> buffer(4096);
  auto dma = map_single(*bouncer, buffer.data(), buffer.size(), Direction::bidirectional);
  ASSERT_TRUE(dma);
  ASSERT_TRUE(io_tlb->contains(PhysAddr(dma->value())));
  ASSERT_FALSE(idle->uses_io_tlb());

  Status unmapped = unmap_single(*idle, *dma, buffer.size(), Direction::bidirectional);
  ASSERT_FALSE(unmapped);
  EXPECT_EQ(unmapped.error().code(), Errc::not_mapped) << unmapped.error().message();
  Status synced = sync_single_for_cpu(*idle, *dma, buffer.size(), Direction::bidirectional);
  ASSERT_FALSE(synced);
  EXPECT_EQ(synced.error().code(), Errc::not_mapped) << synced.error().message();
  synced = sync_single_for_device(*idle, *dma, buffer.size(), Direction::bidirectional);
  ASSERT_FALSE(synced);
  EXPECT_EQ(synced.error().code(), Errc::not_mapped) << synced.error().message();

  // Once the idle device bounces too, the pool is asked and names the owner.
  std::vector<std::byte> own(512);
  auto own_dma = map_single(*idle, own.data(), own.size(), Direction::to_device);
  ASSERT_TRUE(own_dma);
  unmapped = unmap_single(*idle, *dma, buffer.size(), Direction::bidirectional);
  ASSERT_FALSE(unmapped);
  EXPECT_EQ(unmapped.error().code(), Errc::mapping_mismatch) << unmapped.error().message();

  EXPECT_TRUE(unmap_single(*idle, *own_dma, own.size(), Direction::to_device));
  EXPECT_TRUE(unmap_single(*bouncer, *dma, buffer.size(), Direction::bidirectional));
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

}  // namespace
}  // namespace swiotlb
