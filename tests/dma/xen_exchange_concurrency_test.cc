// The frame translation of a translated device changes while it maps: one
// thread adds and removes grown pools, whose exchanges add runs to the
// translation and take them out, while others map and unmap through the
// same device. Every mapping must be below the device's limit and bounce
// its bytes; run it under ThreadSanitizer too (the tsan build).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/dma/xen_exchange_backend.h"

namespace swiotlb {
namespace {

using testing::pattern;
using testing::same_bytes;

constexpr std::uint64_t kLimit = 0xffffff;  // 24 bits: every pool needs its exchange
constexpr std::uint64_t kPoolSlots = kSegmentSlots;
constexpr std::uint64_t kMapBytes = 16384;  // 8 slots
constexpr int kMappers = 3;
constexpr int kLiveEach = 8;  // 3 x 8 x 8 slots: twice the default pool
constexpr int kRounds = 60;

TEST(XenExchangeConcurrency, MapsWhileGrownPoolsAreExchangedAndGivenBack) {
  auto hypervisor = std::make_shared<FrameExchange>(0x100, 3072);
  auto backend = XenExchangeBackend::create(
      {.inner = make_region_backend({.placement = RegionPlacement::anywhere}),
       .hypervisor = hypervisor,
       .limit = kLimit});
  ASSERT_TRUE(backend);
  IoTlbOptions options{.nslabs = kPoolSlots, .force_bounce = true};
  options.backend = *backend;
  options.growth.enabled = true;
  options.growth.by_caller = true;
  auto io_tlb = IoTlb::create(options);
  ASSERT_TRUE(io_tlb) << io_tlb.error().message();
  auto dev = Device::create(
      {.name = "pv", .dma_mask = kLimit, .translator = (*backend)->translator()}, io_tlb->get());
  ASSERT_TRUE(dev);

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> mapped{0};
  std::atomic<std::uint64_t> in_grown{0};  // maps served by a grown pool
  std::atomic<std::uint64_t> beyond_reach{0};
  std::atomic<std::uint64_t> wrong_bytes{0};
  std::vector<std::thread> mappers;
  for (int t = 0; t < kMappers; ++t) {
    mappers.emplace_back([&, t] {
      std::vector<std::vector<std::byte>> buffers;
      for (int i = 0; i < kLiveEach; ++i) {
        buffers.push_back(pattern(kMapBytes, static_cast<unsigned>(t * 16 + i)));
      }
      std::vector<DmaAddr> live(kLiveEach, DmaAddr(kInvalidAddress));
      std::vector<std::byte> written(kMapBytes, std::byte{0x5a});
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < kLiveEach; ++i) {
          std::vector<std::byte>& b = buffers[static_cast<std::size_t>(i)];
          DmaAddr& dma = live[static_cast<std::size_t>(i)];
          if (dma.value() != kInvalidAddress) {
            // The device wrote it: the bytes come back at unmap.
            std::memcpy((*io_tlb)->bounce_pointer((*dev)->dma_to_phys(dma)), written.data(),
                        written.size());
            EXPECT_TRUE(unmap_single(**dev, dma, b.size(), Direction::bidirectional));
            wrong_bytes += same_bytes(b.data(), written.data(), b.size()) ? 0 : 1;
            b = pattern(kMapBytes, static_cast<unsigned>(t * 16 + i));
            dma = DmaAddr(kInvalidAddress);
            continue;
          }
          auto m = map_single(**dev, b.data(), b.size(), Direction::bidirectional);
          if (!m) {
            continue;  // every pool full now
          }
          mapped.fetch_add(1, std::memory_order_relaxed);
          beyond_reach += m->value() + b.size() - 1 > kLimit ? 1 : 0;
          const PhysAddr slot = (*dev)->dma_to_phys(*m);
          wrong_bytes += slot.value() != kInvalidAddress &&
                                 same_bytes((*io_tlb)->bounce_pointer(slot), b.data(), b.size())
                             ? 0
                             : 1;
          in_grown +=
              slot.value() >= (*io_tlb)->end().value() || slot.value() < (*io_tlb)->start().value()
                  ? 1
                  : 0;
          dma = *m;
        }
      }
      for (int i = 0; i < kLiveEach; ++i) {
        if (live[static_cast<std::size_t>(i)].value() != kInvalidAddress) {
          EXPECT_TRUE(unmap_single(**dev, live[static_cast<std::size_t>(i)], kMapBytes,
                                   Direction::bidirectional));
        }
      }
    });
  }

  // Pools come and go under the mappers: each added one is exchanged, each
  // one removed hands its frames back.
  // Until grown pools have served maps, or a deadline on a slow machine.
  std::vector<PhysAddr> grown;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int round = 0;
       (round < kRounds || in_grown.load() == 0) && std::chrono::steady_clock::now() < deadline;
       ++round) {
    if (auto added = (*io_tlb)->add_pool(0, kPoolSlots, 1)) {
      grown.push_back(*added);
    }
    if (grown.size() > 2 || (round % 3 == 2 && !grown.empty())) {
      if ((*io_tlb)->remove_pool(grown.front())) {
        grown.erase(grown.begin());
      }
      (*io_tlb)->run_maintenance();
    }
    std::this_thread::yield();
  }
  stop.store(true);
  for (std::thread& t : mappers) {
    t.join();
  }
  for (const PhysAddr start : grown) {
    EXPECT_TRUE((*io_tlb)->remove_pool(start));
  }
  (*io_tlb)->run_maintenance();

  EXPECT_GT(mapped.load(), 0u);
  EXPECT_GT(in_grown.load(), 0u);
  EXPECT_EQ(beyond_reach.load(), 0u);
  EXPECT_EQ(wrong_bytes.load(), 0u);
  const XenExchangeStats stats = (*backend)->stats();
  EXPECT_GT(stats.exchanged, 1u);
  EXPECT_EQ(stats.given_back, stats.exchanged - 1) << "all but the default pool's";
  EXPECT_EQ(hypervisor->free_frames(), 3072 - ((kPoolSlots << kSlotShift) >> kPageShift));
  EXPECT_TRUE((*io_tlb)->check_invariants());
}

}  // namespace
}  // namespace swiotlb
