// Xen's fixup of a bounce pool (frames exchanged for machine-contiguous
// ones below the device's limit), and cache maintenance by machine address
// for foreign pages only.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/dma/xen_fixup.h"

namespace swiotlb {
namespace {

using testing::make_device;
using testing::make_io_tlb;
using testing::pattern;
using testing::same_bytes;

constexpr std::uint64_t k4G = 0xffffffff;
constexpr std::uint64_t kExchangeFirstMfn = 0x100;  // 1 MiB
constexpr std::uint64_t kExchangeFrames = 4096;

// A paravirtualised guest's view of the pool: its frames scattered in
// reverse order over machine memory far above 4 GiB.
std::shared_ptr<const FrameTranslator> scattered_pool(const IoTlb& io_tlb) {
  FrameTranslator::Builder builder;
  const std::uint64_t first = io_tlb.start().value() >> kPageShift;
  const std::uint64_t frames = (io_tlb.end() - io_tlb.start()) >> kPageShift;
  for (std::uint64_t i = 0; i < frames; ++i) {
    EXPECT_TRUE(builder.map(first + i, 0x1000000 + (frames - 1 - i) * 2));
  }
  return builder.build();
}

TEST(XenFixup, APoolBecomesReachableOnlyAfterTheExchange) {
  auto io_tlb = make_io_tlb(kSegmentSlots, /*force=*/true);
  ASSERT_TRUE(io_tlb);
  auto scattered = scattered_pool(*io_tlb);
  auto before = make_device(io_tlb.get(), {.name = "pv", .dma_mask = k4G, .translator = scattered});
  ASSERT_TRUE(before);
  EXPECT_TRUE(before->streaming_pools().empty());
  std::vector<std::byte> buffer = pattern(4096, 1);
  auto refused = map_single(*before, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::unreachable);

  FrameExchange hypervisor(kExchangeFirstMfn, kExchangeFrames);
  auto fixed = xen_swiotlb_fixup(*io_tlb, scattered, hypervisor, k4G);
  ASSERT_TRUE(fixed) << fixed.error().message();
  const std::uint64_t pool_frames = (io_tlb->end() - io_tlb->start()) >> kPageShift;
  EXPECT_EQ(hypervisor.free_frames(), kExchangeFrames - pool_frames);
  EXPECT_TRUE(before->streaming_pools().empty()) << "the old translator is unchanged";

  auto after = make_device(io_tlb.get(), {.name = "pv", .dma_mask = k4G, .translator = *fixed});
  ASSERT_TRUE(after);
  ASSERT_EQ(after->streaming_pools().size(), 1u);
  EXPECT_EQ(after->streaming_pools()[0].dma_start.value(), kExchangeFirstMfn << kPageShift);
  auto dma = map_single(*after, buffer.data(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(dma) << dma.error().message();
  EXPECT_LE(dma->value() + buffer.size() - 1, k4G);
  const PhysAddr slot = after->dma_to_phys(*dma);
  ASSERT_TRUE(io_tlb->contains(slot));
  EXPECT_TRUE(same_bytes(io_tlb->bounce_pointer(slot), buffer.data(), buffer.size()));
  EXPECT_TRUE(unmap_single(*after, *dma, buffer.size(), Direction::to_device));
}

TEST(XenFixup, AnExchangeWithNoFramesBelowTheLimitFails) {
  auto io_tlb = make_io_tlb(kSegmentSlots, /*force=*/true);
  ASSERT_TRUE(io_tlb);
  auto scattered = scattered_pool(*io_tlb);
  FrameExchange hypervisor(std::uint64_t{1} << 21, kExchangeFrames);  // from 8 GiB up
  auto fixed = xen_swiotlb_fixup(*io_tlb, scattered, hypervisor, k4G);
  ASSERT_FALSE(fixed);
  EXPECT_EQ(fixed.error().code(), Errc::unreachable) << fixed.error().message();
  EXPECT_EQ(hypervisor.free_frames(), kExchangeFrames);
}

TEST(XenFixup, AnExchangeThatStopsPartWayChangesNothing) {
  auto io_tlb = make_io_tlb(2 * kSegmentSlots, /*force=*/true);
  ASSERT_TRUE(io_tlb);
  auto scattered = scattered_pool(*io_tlb);
  FrameExchange hypervisor(kExchangeFirstMfn, kExchangeFrames);
  hypervisor.fail_after(64);  // one segment of two
  auto fixed = xen_swiotlb_fixup(*io_tlb, scattered, hypervisor, k4G);
  ASSERT_FALSE(fixed);
  EXPECT_EQ(fixed.error().code(), Errc::system);
  EXPECT_NE(fixed.error().message().find("exchanged 64 of 128 frames"), std::string::npos)
      << fixed.error().message();
  EXPECT_EQ(hypervisor.free_frames(), kExchangeFrames);
  auto dev = make_device(io_tlb.get(), {.name = "pv", .dma_mask = k4G, .translator = scattered});
  EXPECT_TRUE(dev->streaming_pools().empty());

  // The fault was for one exchange: the next one goes through.
  fixed = xen_swiotlb_fixup(*io_tlb, scattered, hypervisor, k4G);
  ASSERT_TRUE(fixed) << fixed.error().message();
  dev = make_device(io_tlb.get(), {.name = "pv", .dma_mask = k4G, .translator = *fixed});
  EXPECT_EQ(dev->streaming_pools().size(), 1u);
}

TEST(XenFixup, AFailureHandsBackTheFramesOfThePoolsExchangedBeforeIt) {
  IoTlbOptions options{.nslabs = kSegmentSlots, .force_bounce = true};
  options.high_nslabs = 2 * kSegmentSlots;
  auto made = IoTlb::create(options);
  ASSERT_TRUE(made) << made.error().message();
  const IoTlb& io_tlb = **made;
  ASSERT_EQ(io_tlb.pool_count(), 2u);
  // Room below 16 MiB for the default pool (64 frames), not the high one.
  constexpr std::uint64_t k16M = 0xffffff;
  ASSERT_GT(io_tlb.pool_info(0).start.value(), k16M);
  ASSERT_GT(io_tlb.pool_info(1).start.value(), k16M);
  FrameExchange hypervisor(kExchangeFirstMfn, 96);
  auto fixed = xen_swiotlb_fixup(io_tlb, FrameTranslator::Builder().build(), hypervisor, k16M);
  ASSERT_FALSE(fixed);
  EXPECT_EQ(fixed.error().code(), Errc::unreachable) << fixed.error().message();
  EXPECT_EQ(hypervisor.free_frames(), 96u) << "the default pool's frames are back";
}

TEST(XenFixup, AReachablePoolIsLeftAlone) {
  auto io_tlb = make_io_tlb(kSegmentSlots, /*force=*/true);
  ASSERT_TRUE(io_tlb);
  auto identity = FrameTranslator::Builder().build();
  FrameExchange hypervisor(kExchangeFirstMfn, kExchangeFrames);
  auto fixed = xen_swiotlb_fixup(*io_tlb, identity, hypervisor, ~std::uint64_t{0});
  ASSERT_TRUE(fixed);
  EXPECT_EQ(fixed->get(), identity.get());
  EXPECT_EQ(hypervisor.free_frames(), kExchangeFrames);
}

// Two pages of this process: one local, one the translator says is a
// foreign guest's page at machine frame kForeignMfn.
struct TwoPages {
  static constexpr std::uint64_t kForeignMfn = 0x7777;
  std::byte* memory = static_cast<std::byte*>(std::aligned_alloc(kPageSize, 2 * kPageSize));
  ~TwoPages() { std::free(memory); }
  std::byte* local() const { return memory; }
  std::byte* foreign() const { return memory + kPageSize; }
  std::shared_ptr<const FrameTranslator> translator() const {
    FrameTranslator::Builder builder;
    EXPECT_TRUE(builder.map(PhysAddr::from_pointer(foreign()).value() >> kPageShift, kForeignMfn));
    return builder.build();
  }
};

struct HookCall {
  CacheOp op;
  std::uint64_t addr;
};

TEST(XenCache, TheHookIsGivenMachineAddresses) {
  TwoPages pages;
  ASSERT_NE(pages.memory, nullptr);
  std::vector<HookCall> calls;
  DeviceConfig config{.name = "arm-dom0", .coherent = false, .translator = pages.translator()};
  config.cache_hook = [&](CacheOp op, PhysAddr addr, std::uint64_t, Direction) {
    calls.push_back({op, addr.value()});
  };
  auto dev = make_device(nullptr, config);
  auto dma = map_single(*dev, pages.foreign(), kPageSize, Direction::to_device);
  ASSERT_TRUE(dma) << dma.error().message();
  EXPECT_EQ(dma->value(), TwoPages::kForeignMfn << kPageShift);
  ASSERT_TRUE(unmap_single(*dev, *dma, kPageSize, Direction::to_device));
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].op, CacheOp::for_device);
  EXPECT_EQ(calls[0].addr, TwoPages::kForeignMfn << kPageShift);
  EXPECT_EQ(calls[1].op, CacheOp::for_cpu);
  EXPECT_EQ(calls[1].addr, TwoPages::kForeignMfn << kPageShift);
}

TEST(XenCache, AFlushCanBeLimitedToForeignPages) {
  TwoPages pages;
  ASSERT_NE(pages.memory, nullptr);
  std::vector<HookCall> calls;
  DeviceConfig config{.name = "arm-dom0",
                      .coherent = false,
                      .translator = pages.translator(),
                      .cache_hook_foreign_only = true};
  config.cache_hook = [&](CacheOp op, PhysAddr addr, std::uint64_t, Direction) {
    calls.push_back({op, addr.value()});
  };
  auto dev = make_device(nullptr, config);
  auto local = map_single(*dev, pages.local(), kPageSize, Direction::bidirectional);
  ASSERT_TRUE(local);
  ASSERT_TRUE(sync_single_for_cpu(*dev, *local, kPageSize, Direction::bidirectional));
  ASSERT_TRUE(unmap_single(*dev, *local, kPageSize, Direction::bidirectional));
  EXPECT_TRUE(calls.empty()) << "a local page is maintained by the CPU, not the hypercall";
  EXPECT_EQ(dev->stats().cache_syncs, 3u);

  auto foreign = map_single(*dev, pages.foreign(), kPageSize, Direction::bidirectional);
  ASSERT_TRUE(foreign);
  ASSERT_TRUE(unmap_single(*dev, *foreign, kPageSize, Direction::bidirectional));
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].addr, TwoPages::kForeignMfn << kPageShift);
  EXPECT_EQ(calls[1].addr, TwoPages::kForeignMfn << kPageShift);
}

}  // namespace
}  // namespace swiotlb
