// Many threads mapping, syncing and unmapping through one pool at once,
// each checking its own bytes. Run under ThreadSanitizer in CI.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "support/dma_fixture.h"

namespace swiotlb {
namespace {

using testing::device_view;
using testing::make_device;
using testing::make_io_tlb;

void worker(Device& dev, unsigned seed, int rounds, std::atomic<std::uint64_t>& bad,
            std::atomic<std::uint64_t>& full) {
  std::mt19937 rng(seed);
  std::vector<std::byte> buffer(64 * 1024);
  for (int r = 0; r < rounds; ++r) {
    const std::size_t size = 1 + rng() % buffer.size();
    const Direction dir = static_cast<Direction>(rng() % 3);
    const auto fill = static_cast<std::byte>(rng());
    std::memset(buffer.data(), std::to_integer<int>(fill), size);
    auto dma = map_single(dev, buffer.data(), size, dir, Attr::no_warn);
    if (!dma) {
      full.fetch_add(1);
      continue;
    }
    // The device sees what the CPU had, whatever the direction...
    if (device_view(*dma)[0] != fill || device_view(*dma)[size - 1] != fill) {
      bad.fetch_add(1);
    }
    // ...and writes its answer.
    std::memset(device_view(*dma), 0x5c, size);
    if (!sync_single_for_cpu(dev, *dma, size, dir) || !unmap_single(dev, *dma, size, dir)) {
      bad.fetch_add(1);
      continue;
    }
    const std::byte expect = copies_from_device(dir) ? std::byte{0x5c} : fill;
    if (buffer[0] != expect || buffer[size - 1] != expect) {
      bad.fetch_add(1);
    }
  }
}

class DmaConcurrency : public ::testing::TestWithParam<int> {};
INSTANTIATE_TEST_SUITE_P(Threads, DmaConcurrency, ::testing::Values(2, 4, 8));

TEST_P(DmaConcurrency, ThreadsShareAPoolWithoutLosingAByte) {
  const int threads = GetParam();
  for (const char* policy : {"fast", "linux", "linux-6.1"}) {
    auto io_tlb = make_io_tlb(2048, true, policy, 4);
    ASSERT_TRUE(io_tlb);
    std::vector<std::unique_ptr<Device>> devices;
    for (int t = 0; t < threads; ++t) {
      devices.push_back(make_device(io_tlb.get(), {.name = "dev"}));
    }
    std::atomic<std::uint64_t> bad{0};
    std::atomic<std::uint64_t> full{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back(worker, std::ref(*devices[static_cast<std::size_t>(t)]),
                        static_cast<unsigned>(t + 1), 300, std::ref(bad), std::ref(full));
    }
    for (auto& th : pool) {
      th.join();
    }
    EXPECT_EQ(bad.load(), 0u) << policy;
    EXPECT_EQ(io_tlb->pool().used(), 0u) << policy;
    EXPECT_TRUE(io_tlb->pool().check_invariants()) << policy;
    for (auto& d : devices) {
      EXPECT_TRUE(d->close());
    }
  }
}

}  // namespace
}  // namespace swiotlb
