// The machine of seed 003: an iproc/Stingray board whose memory banks sit at
// 2 GiB (2 GiB), 34 GiB (14 GiB), 576 GiB (16 GiB) and 640 GiB (16 GiB),
// behind a PCI host bridge whose inbound windows (2-4 GiB, 32-64 GiB,
// 512-768 GiB) pass only part of the address space. Every IOVA handed out
// must land inside a window; sweeping the domain until it is exhausted must
// hand out every granule the kernel leaves unreserved, and no more.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <vector>

#include "swiotlb/iova/aperture.h"
#include "swiotlb/iova/device_domain.h"

namespace swiotlb::iova {
namespace {

constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;
constexpr std::uint64_t kGranule = 4096;

const std::vector<DmaWindow> kBanks = {{2 * kGiB, 4 * kGiB - 1},
                                       {34 * kGiB, 48 * kGiB - 1},
                                       {576 * kGiB, 592 * kGiB - 1},
                                       {640 * kGiB, 656 * kGiB - 1}};
const std::vector<DmaWindow> kInbound = {
    {2 * kGiB, 4 * kGiB - 1}, {32 * kGiB, 64 * kGiB - 1}, {512 * kGiB, 768 * kGiB - 1}};

DeviceIovaSpec seed003_spec(unsigned mask_bits) {
  DeviceIovaSpec spec;
  spec.granule = kGranule;
  spec.mask_bits = mask_bits;
  spec.cpu_count = 2;
  spec.inbound = kInbound;
  spec.regions = {{kX86MsiWindow.start, kX86MsiWindow.end, ReservedType::msi}};
  return spec;
}

bool inside_one_of(const std::vector<DmaWindow>& ranges, std::uint64_t start, std::uint64_t end) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const DmaWindow& r) { return r.start <= start && end <= r.end; });
}

std::uint64_t granules_in(const std::vector<DmaWindow>& ranges) {
  std::uint64_t total = 0;
  for (const DmaWindow& r : ranges) {
    total += (r.end - r.start + 1) / kGranule;
  }
  return total;
}

// Allocates `bytes` until the domain says no, checking every IOVA against
// the valid ranges. Returns how many it got.
std::uint64_t sweep(DeviceIovaDomain& dev, const std::vector<DmaWindow>& valid, std::uint64_t bytes,
                    std::vector<std::uint64_t>* taken) {
  std::uint64_t count = 0;
  while (true) {
    Result<DmaAddr> iova = dev.alloc(static_cast<unsigned>(count % 2), bytes);
    if (!iova) {
      EXPECT_EQ(iova.error().code(), Errc::pool_full) << iova.error().message();
      return count;
    }
    const std::uint64_t start = iova->value();
    EXPECT_TRUE(inside_one_of(valid, start, start + bytes - 1))
        << std::hex << "IOVA 0x" << start << " + 0x" << bytes << " is in a hole";
    EXPECT_EQ(start % std::bit_ceil(bytes), 0u);
    taken->push_back(bytes / kGranule);
    ++count;
  }
}

TEST(Seed003Test, TheBanksSitInsideTheWindows) {
  for (const DmaWindow& bank : kBanks) {
    EXPECT_TRUE(inside_one_of(kInbound, bank.start, bank.end)) << format_dma_window(bank);
  }
  // ... but a 1:1 IOVA for the 640 GiB bank needs a 40-bit device at least.
  Result<std::vector<DmaWindow>> valid36 = device_valid_ranges(seed003_spec(36));
  ASSERT_TRUE(valid36);
  EXPECT_FALSE(inside_one_of(*valid36, kBanks[3].start, kBanks[3].end));
  Result<std::vector<DmaWindow>> valid40 = device_valid_ranges(seed003_spec(40));
  ASSERT_TRUE(valid40);
  // The low bank straddles the MSI window, which no IOVA may cover.
  EXPECT_FALSE(inside_one_of(*valid40, kBanks[0].start, kBanks[0].end));
  for (std::size_t i = 1; i < kBanks.size(); ++i) {
    EXPECT_TRUE(inside_one_of(*valid40, kBanks[i].start, kBanks[i].end)) << i;
  }
}

// A 32-bit device: only the 2-4 GiB window. 16-granule IOVAs first (the
// cached path), then single granules for what alignment left over.
TEST(Seed003Test, SweepA32BitDeviceToExhaustion) {
  const DeviceIovaSpec spec = seed003_spec(32);
  auto dev = DeviceIovaDomain::create(spec).value();
  const std::vector<DmaWindow> valid = device_valid_ranges(spec).value();
  ASSERT_EQ(valid.size(), 2u);  // 2 GiB..MSI, MSI..4 GiB
  std::vector<std::uint64_t> taken;
  // 0x8000 chunks of 16 in the window; the kernel's hole below 2 GiB takes
  // the window's first granule (and so its first chunk), the MSI window 16.
  EXPECT_EQ(sweep(*dev, valid, 16 * kGranule, &taken), 0x8000u - 1 - 16);
  EXPECT_EQ(sweep(*dev, valid, kGranule, &taken), 15u);
  std::uint64_t granules = 0;
  for (std::uint64_t g : taken) {
    granules += g;
  }
  EXPECT_EQ(granules, granules_in(valid) - 1);  // every granule but the kernel's extra one
  EXPECT_TRUE(dev->domain().check_invariants());
}

// A 40-bit device: all three windows and the hole above 768 GiB. Big
// IOVAs (through the tree), then smaller ones, then single granules.
TEST(Seed003Test, SweepA40BitDeviceToExhaustion) {
  const DeviceIovaSpec spec = seed003_spec(40);
  auto dev = DeviceIovaDomain::create(spec).value();
  const std::vector<DmaWindow> valid = device_valid_ranges(spec).value();
  std::vector<std::uint64_t> taken;
  // 256 MiB: 8 + 128 + 1024 in the windows, less the first of each window
  // (the kernel's extra granule) and the one holding the MSI window.
  EXPECT_EQ(sweep(*dev, valid, 256 << 20, &taken), 8u + 128 + 1024 - 3 - 1);
  // 16 MiB: 15 in each of those four.
  EXPECT_EQ(sweep(*dev, valid, 16 << 20, &taken), 4u * 15);
  // Single granules: what is left of the three first-chunks and the MSI one.
  EXPECT_EQ(sweep(*dev, valid, kGranule, &taken), 3u * 4095 + (4096 - 256));
  std::uint64_t granules = 0;
  for (std::uint64_t g : taken) {
    granules += g;
  }
  EXPECT_EQ(granules, granules_in(valid) - 3);
  EXPECT_EQ(dev->domain().live_count(), taken.size());
  EXPECT_TRUE(dev->domain().check_invariants());
}

// Frees and reallocations keep every IOVA inside a window too.
TEST(Seed003Test, ChurnStaysInsideTheWindows) {
  const DeviceIovaSpec spec = seed003_spec(40);
  auto dev = DeviceIovaDomain::create(spec).value();
  const std::vector<DmaWindow> valid = device_valid_ranges(spec).value();
  std::vector<std::pair<DmaAddr, std::uint64_t>> live;
  std::uint64_t state = 12345;
  const auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  for (int step = 0; step < 20000; ++step) {
    const unsigned cpu = static_cast<unsigned>(next() % 2);
    if (!live.empty() && next() % 3 == 0) {
      const std::size_t i = next() % live.size();
      ASSERT_TRUE(dev->free(cpu, live[i].first, live[i].second));
      live[i] = live.back();
      live.pop_back();
      continue;
    }
    const std::uint64_t bytes = (next() % 64 + 1) * kGranule;
    Result<DmaAddr> iova = dev->alloc(cpu, bytes);
    ASSERT_TRUE(iova) << iova.error().message();
    const std::uint64_t granules = fast_alloc_size(bytes / kGranule);
    ASSERT_TRUE(inside_one_of(valid, iova->value(), iova->value() + granules * kGranule - 1))
        << std::hex << iova->value();
    live.emplace_back(*iova, bytes);
  }
  EXPECT_TRUE(dev->domain().check_invariants());
}

}  // namespace
}  // namespace swiotlb::iova
