// Waiting and queued maps through the DMA API: single buffers and
// scatter-gather lists, deadlines, and first come, first served.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/core/constants.h"

namespace swiotlb {
namespace {

using namespace std::chrono_literals;
using testing::device_view;
using testing::make_device;
using testing::pattern;
using testing::same_bytes;

// One segment of slots, every mapping bounced; a default wait far longer
// than any deadline the tests give, so that a deadline that is not passed
// on would show.
std::unique_ptr<IoTlb> small_io_tlb(std::chrono::milliseconds wait_timeout = 30s) {
  IoTlbOptions options;
  options.nslabs = kSegmentSlots;
  options.force_bounce = true;
  options.policy = "linux";
  options.wait_timeout = wait_timeout;
  auto made = IoTlb::create(options);
  EXPECT_TRUE(made) << made.error().message();
  return made ? std::move(*made) : nullptr;
}

ScatterEntry entry_for(std::vector<std::byte>& bytes) {
  return {PhysAddr::from_pointer(bytes.data()), static_cast<std::uint32_t>(bytes.size()), {}, 0};
}

TEST(DmaWait, AWaitEndsAtTheCallersDeadline) {
  auto io_tlb = small_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> filler(kSegmentBytes);
  auto held = map_single(*dev, filler.data(), filler.size(), Direction::to_device);
  ASSERT_TRUE(held);

  std::vector<std::byte> buffer(4096);
  const auto start = std::chrono::steady_clock::now();
  auto dma =
      map_single_until(*dev, buffer.data(), buffer.size(), Direction::to_device, start + 50ms);
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(dma);
  EXPECT_EQ(dma.error().code(), Errc::timed_out) << dma.error().message();
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 20s) << "the IoTlb's 30 s wait_timeout was used, not the deadline";
  EXPECT_EQ(dev->stats().map_failures, 1u);
  EXPECT_TRUE(unmap_single(*dev, *held, filler.size(), Direction::to_device));
}

TEST(DmaWait, AWaiterGetsTheRoomAnotherThreadFrees) {
  auto io_tlb = small_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> filler(kSegmentBytes);
  auto held = map_single(*dev, filler.data(), filler.size(), Direction::to_device);
  ASSERT_TRUE(held);

  std::vector<std::byte> buffer = pattern(8192, 3);
  auto waiter = std::async(std::launch::async, [&] {
    return map_single_until(*dev, buffer.data(), buffer.size(), Direction::to_device,
                            std::chrono::steady_clock::now() + 20s);
  });
  // Frees once the waiter is in the queue.
  while (io_tlb->stats().waits.waiting_now == 0) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(unmap_single(*dev, *held, filler.size(), Direction::to_device));
  Result<DmaAddr> dma = waiter.get();
  ASSERT_TRUE(dma) << dma.error().message();
  EXPECT_TRUE(same_bytes(device_view(*dma), buffer.data(), buffer.size()));
  EXPECT_EQ(io_tlb->stats().waits.waits, 1u);
  EXPECT_TRUE(unmap_single(*dev, *dma, buffer.size(), Direction::to_device));
}

TEST(DmaWait, ADirectMappingNeverWaits) {
  auto io_tlb = testing::make_io_tlb(kSegmentSlots, /*force=*/false);
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> buffer(4096);
  auto dma = map_single_until(*dev, buffer.data(), buffer.size(), Direction::to_device,
                              std::chrono::steady_clock::now());
  ASSERT_TRUE(dma);
  EXPECT_FALSE(io_tlb->contains(PhysAddr(dma->value())));
  EXPECT_TRUE(unmap_single(*dev, *dma, buffer.size(), Direction::to_device));
}

TEST(DmaWait, AScatterGatherListWaitsForItsLastEntry) {
  auto io_tlb = small_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> filler(kSegmentBytes / 2);
  auto held = map_single(*dev, filler.data(), filler.size(), Direction::to_device);
  ASSERT_TRUE(held);
  // Two entries fit in the free half; the third has to wait.
  std::vector<std::vector<std::byte>> buffers = {
      pattern(kSegmentBytes / 4, 1), pattern(kSegmentBytes / 4, 2), pattern(kSegmentBytes / 4, 3)};
  std::vector<ScatterEntry> sg;
  for (auto& b : buffers) {
    sg.push_back(entry_for(b));
  }
  auto mapper = std::async(std::launch::async, [&] {
    return map_sg_until(*dev, sg, Direction::to_device, std::chrono::steady_clock::now() + 20s);
  });
  while (io_tlb->stats().waits.waiting_now == 0) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(unmap_single(*dev, *held, filler.size(), Direction::to_device));
  Result<std::size_t> mapped = mapper.get();
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_EQ(*mapped, 3u);
  for (std::size_t i = 0; i < sg.size(); ++i) {
    EXPECT_TRUE(same_bytes(device_view(sg[i].dma_address), buffers[i].data(), buffers[i].size()));
  }
  EXPECT_TRUE(unmap_sg(*dev, sg, Direction::to_device));
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

TEST(DmaWait, AScatterGatherListThatTimesOutGivesBackWhatItHeld) {
  auto io_tlb = small_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> filler(kSegmentBytes / 2);
  auto held = map_single(*dev, filler.data(), filler.size(), Direction::to_device);
  ASSERT_TRUE(held);
  const std::uint64_t used = io_tlb->pool().used();
  std::vector<std::vector<std::byte>> buffers(3, std::vector<std::byte>(kSegmentBytes / 4));
  std::vector<ScatterEntry> sg;
  for (auto& b : buffers) {
    sg.push_back(entry_for(b));
  }
  auto mapped =
      map_sg_until(*dev, sg, Direction::to_device, std::chrono::steady_clock::now() + 30ms);
  ASSERT_FALSE(mapped);
  EXPECT_EQ(mapped.error().code(), Errc::timed_out);
  EXPECT_EQ(io_tlb->pool().used(), used);
  EXPECT_TRUE(unmap_single(*dev, *held, filler.size(), Direction::to_device));
}

// Collects queued outcomes in the order they arrive.
struct Arrivals {
  std::mutex lock;
  std::vector<int> order;
  std::vector<Result<DmaAddr>> results;
  std::promise<void> all;
  std::size_t expected = 0;

  DmaMapCallback callback(int tag) {
    return [this, tag](Result<DmaAddr> dma) {
      std::lock_guard guard(lock);
      order.push_back(tag);
      results.push_back(std::move(dma));
      if (order.size() == expected) {
        all.set_value();
      }
    };
  }
};

TEST(DmaQueued, MapsAtOnceWhenThereIsRoom) {
  auto io_tlb = small_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> buffer = pattern(4096, 5);
  Arrivals arrivals;
  arrivals.expected = 1;
  const DmaQueued how = map_page_queued(*dev, PhysAddr::from_pointer(buffer.data()), buffer.size(),
                                        Direction::to_device, std::nullopt, arrivals.callback(0));
  EXPECT_EQ(how, DmaQueued::done);
  ASSERT_EQ(arrivals.results.size(), 1u) << "the callback ran before the call returned";
  ASSERT_TRUE(arrivals.results[0]);
  EXPECT_TRUE(same_bytes(device_view(*arrivals.results[0]), buffer.data(), buffer.size()));
  EXPECT_TRUE(unmap_single(*dev, *arrivals.results[0], buffer.size(), Direction::to_device));
}

TEST(DmaQueued, QueuedMapsCompleteInTheOrderTheyCame) {
  auto io_tlb = small_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> filler(kSegmentBytes);
  auto held = map_single(*dev, filler.data(), filler.size(), Direction::to_device);
  ASSERT_TRUE(held);

  std::vector<std::vector<std::byte>> buffers = {pattern(4096, 1), pattern(65536, 2),
                                                 pattern(4096, 3), pattern(8192, 4)};
  Arrivals arrivals;
  arrivals.expected = buffers.size();
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    const DmaQueued how = map_page_queued(
        *dev, PhysAddr::from_pointer(buffers[i].data()), buffers[i].size(), Direction::to_device,
        std::chrono::steady_clock::now() + 20s, arrivals.callback(static_cast<int>(i)));
    EXPECT_EQ(how, DmaQueued::queued);
  }
  ASSERT_TRUE(unmap_single(*dev, *held, filler.size(), Direction::to_device));
  ASSERT_EQ(arrivals.all.get_future().wait_for(20s), std::future_status::ready);
  EXPECT_EQ(arrivals.order, (std::vector<int>{0, 1, 2, 3}));
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    ASSERT_TRUE(arrivals.results[i]) << arrivals.results[i].error().message();
    EXPECT_TRUE(
        same_bytes(device_view(*arrivals.results[i]), buffers[i].data(), buffers[i].size()));
    EXPECT_TRUE(unmap_single(*dev, *arrivals.results[i], buffers[i].size(), Direction::to_device));
  }
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

TEST(DmaQueued, AQueuedMapTimesOutAtItsDeadline) {
  auto io_tlb = small_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> filler(kSegmentBytes);
  auto held = map_single(*dev, filler.data(), filler.size(), Direction::to_device);
  ASSERT_TRUE(held);
  std::vector<std::byte> buffer(4096);
  Arrivals arrivals;
  arrivals.expected = 1;
  EXPECT_EQ(map_page_queued(*dev, PhysAddr::from_pointer(buffer.data()), buffer.size(),
                            Direction::to_device, std::chrono::steady_clock::now() + 30ms,
                            arrivals.callback(0)),
            DmaQueued::queued);
  ASSERT_EQ(arrivals.all.get_future().wait_for(20s), std::future_status::ready)
      << "the IoTlb's 30 s wait_timeout was used, not the deadline";
  ASSERT_FALSE(arrivals.results[0]);
  EXPECT_EQ(arrivals.results[0].error().code(), Errc::timed_out);
  EXPECT_EQ(dev->stats().map_failures, 1u);
  EXPECT_TRUE(unmap_single(*dev, *held, filler.size(), Direction::to_device));
}

TEST(DmaQueued, AScatterGatherListKeepsItsPlaceAndItsOrder) {
  auto io_tlb = small_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> filler(kSegmentBytes / 2);
  auto held = map_single(*dev, filler.data(), filler.size(), Direction::to_device);
  ASSERT_TRUE(held);
  std::vector<std::vector<std::byte>> buffers = {
      pattern(kSegmentBytes / 4, 1), pattern(kSegmentBytes / 4, 2), pattern(kSegmentBytes / 4, 3)};
  std::vector<ScatterEntry> sg;
  for (auto& b : buffers) {
    sg.push_back(entry_for(b));
  }
  std::mutex lock;
  std::vector<std::string> order;
  std::promise<Result<std::size_t>> sg_result;
  const DmaQueued how =
      map_sg_queued(*dev, sg, Direction::to_device, std::chrono::steady_clock::now() + 20s,
                    [&](Result<std::size_t> mapped) {
                      {
                        std::lock_guard guard(lock);
                        order.emplace_back("sg");
                      }
                      sg_result.set_value(std::move(mapped));
                    });
  EXPECT_EQ(how, DmaQueued::queued);
  // A single map queued after the list is served after it.
  std::vector<std::byte> later = pattern(4096, 9);
  std::promise<Result<DmaAddr>> later_result;
  EXPECT_EQ(map_page_queued(*dev, PhysAddr::from_pointer(later.data()), later.size(),
                            Direction::to_device, std::chrono::steady_clock::now() + 20s,
                            [&](Result<DmaAddr> dma) {
                              {
                                std::lock_guard guard(lock);
                                order.emplace_back("later");
                              }
                              later_result.set_value(std::move(dma));
                            }),
            DmaQueued::queued);
  ASSERT_TRUE(unmap_single(*dev, *held, filler.size(), Direction::to_device));
  Result<std::size_t> mapped = sg_result.get_future().get();
  Result<DmaAddr> single = later_result.get_future().get();
  ASSERT_TRUE(mapped) << mapped.error().message();
  ASSERT_TRUE(single) << single.error().message();
  EXPECT_EQ(*mapped, 3u);
  EXPECT_EQ(order, (std::vector<std::string>{"sg", "later"}));
  for (std::size_t i = 0; i < sg.size(); ++i) {
    EXPECT_TRUE(same_bytes(device_view(sg[i].dma_address), buffers[i].data(), buffers[i].size()));
  }
  EXPECT_TRUE(unmap_sg(*dev, sg, Direction::to_device));
  EXPECT_TRUE(unmap_single(*dev, *single, later.size(), Direction::to_device));
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

TEST(DmaQueued, AScatterGatherListThatTimesOutGivesBackWhatItHeld) {
  auto io_tlb = small_io_tlb();
  auto dev = make_device(io_tlb.get());
  std::vector<std::byte> filler(kSegmentBytes / 2);
  auto held = map_single(*dev, filler.data(), filler.size(), Direction::to_device);
  ASSERT_TRUE(held);
  const std::uint64_t used = io_tlb->pool().used();
  std::vector<std::vector<std::byte>> buffers(3, std::vector<std::byte>(kSegmentBytes / 4));
  std::vector<ScatterEntry> sg;
  for (auto& b : buffers) {
    sg.push_back(entry_for(b));
  }
  std::promise<Result<std::size_t>> result;
  EXPECT_EQ(map_sg_queued(*dev, sg, Direction::to_device, std::chrono::steady_clock::now() + 30ms,
                          [&](Result<std::size_t> mapped) { result.set_value(std::move(mapped)); }),
            DmaQueued::queued);
  Result<std::size_t> mapped = result.get_future().get();
  ASSERT_FALSE(mapped);
  EXPECT_EQ(mapped.error().code(), Errc::timed_out);
  EXPECT_EQ(io_tlb->pool().used(), used);
  EXPECT_TRUE(unmap_single(*dev, *held, filler.size(), Direction::to_device));
}

TEST(DmaQueued, ADirectListIsDoneAtOnce) {
  auto io_tlb = testing::make_io_tlb(kSegmentSlots, /*force=*/false);
  auto dev = make_device(io_tlb.get());
  std::vector<std::vector<std::byte>> buffers(2, std::vector<std::byte>(4096));
  std::vector<ScatterEntry> sg;
  for (auto& b : buffers) {
    sg.push_back(entry_for(b));
  }
  std::optional<Result<std::size_t>> outcome;
  EXPECT_EQ(map_sg_queued(*dev, sg, Direction::to_device, std::nullopt,
                          [&](Result<std::size_t> mapped) { outcome = std::move(mapped); }),
            DmaQueued::done);
  ASSERT_TRUE(outcome.has_value());
  ASSERT_TRUE(*outcome);
  EXPECT_EQ(**outcome, 2u);
  EXPECT_TRUE(unmap_sg(*dev, sg, Direction::to_device));
}

}  // namespace
}  // namespace swiotlb
