// XenExchangeBackend: pools made after a translated device exists (grown,
// transient) have their frames exchanged before they take mappings, so the
// device reaches them; an exchange that fails leaves the pool out, with
// every frame back with the hypervisor.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/dma/xen_exchange_backend.h"

namespace swiotlb {
namespace {

using testing::pattern;
using testing::same_bytes;

// An ISA-like 24-bit device: no memory of this process lies below 16 MiB,
// so the device reaches a pool only through an exchange.
constexpr std::uint64_t kLimit = 0xffffff;
constexpr std::uint64_t kFirstMfn = 0x100;  // the hypervisor's free frames, from 1 MiB
constexpr std::uint64_t kFrames = 3072;     // up to 13 MiB
constexpr std::uint64_t kPoolSlots = kSegmentSlots;
constexpr std::uint64_t kPoolFrames = (kPoolSlots << kSlotShift) >> kPageShift;
constexpr std::uint64_t kMapBytes = 32768;  // 16 slots: 8 fill a pool

struct Guest {
  std::shared_ptr<FrameExchange> hypervisor = std::make_shared<FrameExchange>(kFirstMfn, kFrames);
  std::shared_ptr<XenExchangeBackend> backend;
  std::unique_ptr<IoTlb> io_tlb;
  std::unique_ptr<Device> dev;

  // A 128-slot default pool anywhere in this process, grown by the caller
  // (add_pool) unless `growth` says otherwise, with transient pools when
  // `transient`.
  explicit Guest(bool transient = false, CacheHook hook = {}, bool foreign_only = false,
                 IoTlbOptions::Growth growth = {.enabled = true, .by_caller = true}) {
    auto made = XenExchangeBackend::create(
        {.inner = make_region_backend({.placement = RegionPlacement::anywhere}),
         .hypervisor = hypervisor,
         .limit = kLimit});
    EXPECT_TRUE(made);
    backend = *made;
    IoTlbOptions options{.nslabs = kPoolSlots, .force_bounce = true};
    options.backend = backend;
    options.growth = growth;
    options.transient = transient;
    auto tlb = IoTlb::create(options);
    EXPECT_TRUE(tlb) << tlb.error().message();
    io_tlb = std::move(*tlb);
    auto device = Device::create({.name = "pv-isa",
                                  .dma_mask = kLimit,
                                  .coherent = !hook,
                                  .cache_hook = std::move(hook),
                                  .translator = backend->translator(),
                                  .cache_hook_foreign_only = foreign_only},
                                 io_tlb.get());
    EXPECT_TRUE(device) << device.error().message();
    dev = std::move(*device);
  }

  // Maps buffers until the default pool is full; returns them mapped.
  std::vector<std::pair<std::vector<std::byte>, DmaAddr>> fill() {
    std::vector<std::pair<std::vector<std::byte>, DmaAddr>> live;
    for (std::uint64_t i = 0; i < (kPoolSlots << kSlotShift) / kMapBytes; ++i) {
      std::vector<std::byte> bytes = pattern(kMapBytes, static_cast<unsigned>(i));
      auto dma = map_single(*dev, bytes.data(), bytes.size(), Direction::to_device);
      EXPECT_TRUE(dma) << dma.error().message();
      live.emplace_back(std::move(bytes), dma ? *dma : DmaAddr(kInvalidAddress));
    }
    return live;
  }

  void unmap_all(std::vector<std::pair<std::vector<std::byte>, DmaAddr>>& live) {
    for (auto& [bytes, dma] : live) {
      EXPECT_TRUE(unmap_single(*dev, dma, bytes.size(), Direction::to_device));
    }
    live.clear();
  }
};

TEST(XenExchangeGrowth, TheDefaultPoolIsExchangedWhenTheIoTlbIsMade) {
  Guest guest;
  EXPECT_EQ(guest.backend->stats().exchanged, 1u);
  EXPECT_EQ(guest.hypervisor->free_frames(), kFrames - kPoolFrames);
  ASSERT_EQ(guest.dev->streaming_pools().size(), 1u);
  EXPECT_EQ(guest.dev->streaming_pools()[0].dma_start.value(), kFirstMfn << kPageShift);
}

TEST(XenExchangeGrowth, AGrownPoolIsReachableOnlyAfterItsExchange) {
  Guest guest;
  auto live = guest.fill();
  std::vector<std::byte> buffer = pattern(kMapBytes, 99);
  auto full = map_single(*guest.dev, buffer.data(), buffer.size(), Direction::bidirectional);
  ASSERT_FALSE(full) << "the default pool is full";

  auto grown = guest.io_tlb->add_pool(0, kPoolSlots, 1);
  ASSERT_TRUE(grown) << grown.error().message();
  EXPECT_GT(grown->value(), kLimit) << "the grown pool's own frames are out of the device's reach";
  EXPECT_EQ(guest.backend->stats().exchanged, 2u);
  EXPECT_EQ(guest.hypervisor->free_frames(), kFrames - 2 * kPoolFrames);
  const DmaAddr grown_dma = guest.dev->phys_to_dma(*grown, kPoolSlots << kSlotShift);
  ASSERT_NE(grown_dma.value(), kInvalidAddress);
  EXPECT_LE(grown_dma.value() + (kPoolSlots << kSlotShift) - 1, kLimit);

  // The map that needs the grown pool: below the limit, and the bytes
  // bounce both ways.
  auto dma = map_single(*guest.dev, buffer.data(), buffer.size(), Direction::bidirectional);
  ASSERT_TRUE(dma) << dma.error().message();
  EXPECT_LE(dma->value() + buffer.size() - 1, kLimit);
  const PhysAddr slot = guest.dev->dma_to_phys(*dma);
  ASSERT_GE(slot.value(), grown->value());
  ASSERT_LT(slot.value(), grown->value() + (kPoolSlots << kSlotShift));
  EXPECT_TRUE(same_bytes(guest.io_tlb->bounce_pointer(slot), buffer.data(), buffer.size()));
  const std::vector<std::byte> written = pattern(kMapBytes, 7);
  std::memcpy(guest.io_tlb->bounce_pointer(slot), written.data(), written.size());
  ASSERT_TRUE(unmap_single(*guest.dev, *dma, buffer.size(), Direction::bidirectional));
  EXPECT_TRUE(same_bytes(buffer.data(), written.data(), written.size()));
  ASSERT_TRUE(guest.io_tlb->check_invariants());

  // The grown pool given up: its frames go back with its memory.
  guest.unmap_all(live);
  ASSERT_TRUE(guest.io_tlb->remove_pool(*grown));
  guest.io_tlb->run_maintenance();
  EXPECT_EQ(guest.backend->stats().given_back, 1u);
  EXPECT_EQ(guest.hypervisor->free_frames(), kFrames - kPoolFrames);
  EXPECT_EQ(guest.backend->translator()->runs().size(), 1u);
}

TEST(XenExchangeGrowth, AnExchangeThatStopsPartWayLeavesTheGrownPoolOut) {
  Guest guest;
  auto live = guest.fill();
  const std::uint64_t free_before = guest.hypervisor->free_frames();
  guest.hypervisor->fail_after(kPoolFrames);  // one segment of the two
  auto grown = guest.io_tlb->add_pool(0, 2 * kPoolSlots, 1);
  ASSERT_FALSE(grown);
  EXPECT_EQ(grown.error().code(), Errc::system);
  const std::string& why = grown.error().message();
  EXPECT_NE(why.find("exchanged 64 of 128 frames"), std::string::npos) << why;
  EXPECT_NE(why.find("below 0xffffff"), std::string::npos) << why;

  // Nothing taken, nothing added: the device still finds no room.
  EXPECT_EQ(guest.hypervisor->free_frames(), free_before);
  EXPECT_EQ(guest.backend->stats().failed, 1u);
  EXPECT_EQ(guest.backend->translator()->runs().size(), 1u);
  EXPECT_TRUE(guest.io_tlb->stats().dynamic.empty());
  ASSERT_TRUE(guest.io_tlb->check_invariants());
  std::vector<std::byte> buffer = pattern(kMapBytes, 5);
  auto refused = map_single(*guest.dev, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::pool_full);

  // The fault was for one exchange: the pool made again is served.
  grown = guest.io_tlb->add_pool(0, 2 * kPoolSlots, 1);
  ASSERT_TRUE(grown) << grown.error().message();
  auto served = map_single(*guest.dev, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(served) << served.error().message();
  EXPECT_LE(served->value() + buffer.size() - 1, kLimit);
  ASSERT_TRUE(unmap_single(*guest.dev, *served, buffer.size(), Direction::to_device));
  guest.unmap_all(live);
}

TEST(XenExchangeGrowth, GrowthTriesHalfThePoolWhenItsExchangeStops) {
  // The worker grows by itself; the first pool it makes is refused by the
  // exchange, and it tries half the size, as when memory runs short. One
  // grown pool at most.
  Guest guest(false, {}, false,
              {.enabled = true, .pool_nslabs = 2 * kPoolSlots, .max_nslabs = 3 * kPoolSlots});
  guest.hypervisor->fail_after(kPoolFrames);  // one segment of the two
  auto live = guest.fill();                   // past the watermark: the worker grows
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (guest.io_tlb->stats().growth.grow_events == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    guest.io_tlb->run_maintenance();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const GrowthStats growth = guest.io_tlb->stats().growth;
  ASSERT_EQ(growth.grow_events, 1u);
  EXPECT_EQ(growth.grown_smaller, 1u);
  EXPECT_EQ(guest.backend->stats().failed, 1u);
  EXPECT_EQ(guest.backend->stats().exchanged, 2u);
  EXPECT_EQ(guest.hypervisor->free_frames(), kFrames - 2 * kPoolFrames);
  ASSERT_EQ(guest.io_tlb->stats().dynamic.size(), 1u);
  EXPECT_EQ(guest.io_tlb->stats().dynamic[0].nslabs, kPoolSlots);

  std::vector<std::byte> buffer = pattern(kMapBytes, 17);
  auto dma = map_single(*guest.dev, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(dma) << dma.error().message();
  EXPECT_LE(dma->value() + buffer.size() - 1, kLimit);
  const PhysAddr slot = guest.dev->dma_to_phys(*dma);
  EXPECT_GE(slot.value(), guest.io_tlb->stats().dynamic[0].start);
  EXPECT_TRUE(same_bytes(guest.io_tlb->bounce_pointer(slot), buffer.data(), buffer.size()));
  ASSERT_TRUE(unmap_single(*guest.dev, *dma, buffer.size(), Direction::to_device));
  guest.unmap_all(live);
  ASSERT_TRUE(guest.io_tlb->check_invariants());
}

TEST(XenExchangeGrowth, NoFramesBelowTheLimitLeavesTheGrownPoolOut) {
  Guest guest;
  // Take all but half a pool's worth of the hypervisor's frames.
  const std::uint64_t free = guest.hypervisor->free_frames();
  auto hoard = guest.hypervisor->exchange(free - kPoolFrames / 2, kLimit, 64);
  ASSERT_TRUE(hoard);
  auto grown = guest.io_tlb->add_pool(0, kPoolSlots, 1);
  ASSERT_FALSE(grown);
  EXPECT_EQ(grown.error().code(), Errc::unreachable) << grown.error().message();
  EXPECT_EQ(guest.hypervisor->free_frames(), kPoolFrames / 2);
  EXPECT_TRUE(guest.io_tlb->stats().dynamic.empty());
  ASSERT_TRUE(guest.io_tlb->check_invariants());
}

TEST(XenExchangeGrowth, ATransientPoolIsExchangedAndItsFramesComeBack) {
  Guest guest(/*transient=*/true);
  auto live = guest.fill();
  std::vector<std::byte> buffer = pattern(kMapBytes, 3);
  auto dma = map_single(*guest.dev, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(dma) << dma.error().message();
  EXPECT_LE(dma->value() + buffer.size() - 1, kLimit);
  EXPECT_EQ(guest.io_tlb->stats().growth.transient_pools, 1u);
  const PhysAddr slot = guest.dev->dma_to_phys(*dma);
  ASSERT_TRUE(guest.io_tlb->contains(slot));
  EXPECT_TRUE(same_bytes(guest.io_tlb->bounce_pointer(slot), buffer.data(), buffer.size()));
  EXPECT_EQ(guest.backend->stats().exchanged, 2u);
  EXPECT_LT(guest.hypervisor->free_frames(), kFrames - kPoolFrames);

  ASSERT_TRUE(unmap_single(*guest.dev, *dma, buffer.size(), Direction::to_device));
  guest.io_tlb->run_maintenance();  // the transient pool's memory goes
  EXPECT_EQ(guest.backend->stats().given_back, 1u);
  EXPECT_EQ(guest.hypervisor->free_frames(), kFrames - kPoolFrames);

  // A transient pool whose exchange fails: the map is refused.
  guest.hypervisor->fail_after(0);
  auto refused = map_single(*guest.dev, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_FALSE(refused);
  EXPECT_EQ(guest.hypervisor->free_frames(), kFrames - kPoolFrames);
  EXPECT_EQ(guest.backend->stats().failed, 1u);
  EXPECT_EQ(guest.io_tlb->stats().growth.transient_pools, 0u);
  ASSERT_TRUE(guest.io_tlb->check_invariants());
  guest.unmap_all(live);
}

struct HookCall {
  CacheOp op;
  std::uint64_t machine;
};

TEST(XenExchangeGrowth, TheCacheHookGetsTheGrownPoolsMachineAddresses) {
  std::vector<HookCall> calls;
  Guest guest(false, [&](CacheOp op, PhysAddr addr, std::uint64_t, Direction) {
    calls.push_back({op, addr.value()});
  });
  auto live = guest.fill();
  ASSERT_TRUE(guest.io_tlb->add_pool(0, kPoolSlots, 1));
  calls.clear();
  std::vector<std::byte> buffer = pattern(kMapBytes, 11);
  auto dma = map_single(*guest.dev, buffer.data(), buffer.size(), Direction::bidirectional);
  ASSERT_TRUE(dma) << dma.error().message();
  ASSERT_TRUE(unmap_single(*guest.dev, *dma, buffer.size(), Direction::bidirectional));
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].op, CacheOp::for_device);
  EXPECT_EQ(calls[0].machine, dma->value());
  EXPECT_EQ(calls[1].op, CacheOp::for_cpu);
  EXPECT_EQ(calls[1].machine, dma->value());
  guest.unmap_all(live);
}

TEST(XenExchangeGrowth, ExchangedPagesAreNotFlushedAsForeign) {
  std::vector<HookCall> calls;
  Guest guest(
      false,
      [&](CacheOp op, PhysAddr addr, std::uint64_t, Direction) {
        calls.push_back({op, addr.value()});
      },
      /*foreign_only=*/true);
  std::vector<std::byte> buffer = pattern(kMapBytes, 13);
  auto dma = map_single(*guest.dev, buffer.data(), buffer.size(), Direction::bidirectional);
  ASSERT_TRUE(dma) << dma.error().message();
  ASSERT_TRUE(unmap_single(*guest.dev, *dma, buffer.size(), Direction::bidirectional));
  EXPECT_TRUE(calls.empty()) << "the bounce pool is the guest's own memory";
  EXPECT_EQ(guest.dev->stats().cache_syncs, 2u);
}

}  // namespace
}  // namespace swiotlb
