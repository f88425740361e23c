// WindowTable: a device reach that changes while readers translate.
#include "swiotlb/dma/window_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "swiotlb/dma/device.h"

namespace swiotlb {
namespace {

TEST(WindowTable, TranslatesInsideWindowsOnly) {
  WindowTable table(4);
  ASSERT_TRUE(table.add({0x100000, 0x10000000, 0x2000, 7}));
  EXPECT_EQ(table.to_dma(PhysAddr(0x100010), 16).value(), 0x10000010u);
  EXPECT_EQ(table.to_phys(DmaAddr(0x10001ff0), 16).value(), 0x101ff0u);
  EXPECT_EQ(table.to_dma(PhysAddr(0x101ff0), 32).value(), kInvalidAddress);  // runs past the end
  EXPECT_EQ(table.to_dma(PhysAddr(0xfffff)).value(), kInvalidAddress);
  ASSERT_TRUE(table.find(PhysAddr(0x100000)));
  EXPECT_EQ(table.find(PhysAddr(0x100000))->id, 7u);
  ASSERT_TRUE(table.remove(7));
  EXPECT_EQ(table.to_dma(PhysAddr(0x100010)).value(), kInvalidAddress);
  EXPECT_FALSE(table.remove(7));
}

TEST(WindowTable, RefusesOverlapsReusedIdsEmptyWindowsAndAFullTable) {
  WindowTable table(2);
  ASSERT_TRUE(table.add({0x100000, 0x10000000, 0x1000, 1}));
  EXPECT_EQ(table.add({0x100800, 0x20000000, 0x1000, 2}).error().code(), Errc::invalid_argument);
  EXPECT_EQ(table.add({0x200000, 0x10000800, 0x1000, 2}).error().code(), Errc::invalid_argument);
  EXPECT_EQ(table.add({0x200000, 0x20000000, 0x1000, 1}).error().code(), Errc::invalid_argument);
  EXPECT_EQ(table.add({0x200000, 0x20000000, 0, 2}).error().code(), Errc::invalid_argument);
  EXPECT_EQ(table.add({~std::uint64_t{0} - 10, 0x20000000, 0x1000, 2}).error().code(),
            Errc::invalid_argument);
  ASSERT_TRUE(table.add({0x200000, 0x20000000, 0x1000, 2}));
  EXPECT_EQ(table.add({0x300000, 0x30000000, 0x1000, 3}).error().code(), Errc::out_of_range);
  ASSERT_TRUE(table.remove(1));
  ASSERT_TRUE(table.add({0x300000, 0x30000000, 0x1000, 3}));  // the freed entry
  EXPECT_EQ(table.windows().size(), 2u);
}

TEST(WindowTable, ADeviceReachesExactlyItsWindows) {
  auto table = std::make_shared<WindowTable>(4);
  ASSERT_TRUE(table->add({0x100000, 0x10000000, 0x1000, 0}));
  auto dev = Device::create({.name = "windowed", .windows = table}, nullptr);
  ASSERT_TRUE(dev);
  EXPECT_EQ((*dev)->phys_to_dma(PhysAddr(0x100000)).value(), 0x10000000u);
  EXPECT_EQ((*dev)->phys_to_dma(PhysAddr(0x200000)).value(), kInvalidAddress);
  ASSERT_TRUE(table->add({0x200000, 0x20000000, 0x1000, 1}));
  EXPECT_EQ((*dev)->phys_to_dma(PhysAddr(0x200000)).value(), 0x20000000u);
  EXPECT_EQ((*dev)->dma_to_phys(DmaAddr(0x20000fff)).value(), 0x200fffu);
  ASSERT_TRUE(table->remove(1));
  EXPECT_EQ((*dev)->phys_to_dma(PhysAddr(0x200000)).value(), kInvalidAddress);
  auto ranges = DmaRangeMap::create({{0x100000, 0x100000, 0x1000}});
  ASSERT_TRUE(ranges);
  EXPECT_FALSE(Device::create({.dma_ranges = *ranges, .windows = table}, nullptr));
}

// Readers never see a half-written window: a window that stays is always
// found, at its own translation, while another entry is rewritten.
TEST(WindowTable, ReadersSeeWholeWindowsWhileAWriterChangesOthers) {
  WindowTable table(8);
  ASSERT_TRUE(table.add({0x100000, 0x10000000, 0x1000, 0}));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (std::uint32_t i = 0; i < 20000 && !stop.load(); ++i) {
      const std::uint64_t base = 0x1000000 + std::uint64_t{i % 16} * 0x10000;
      EXPECT_TRUE(table.add({base, base + 0x40000000, 0x8000 + (i % 7) * 0x1000, 1}));
      EXPECT_TRUE(table.remove(1));
    }
    stop.store(true);
  });
  std::uint64_t wrong = 0;
  while (!stop.load()) {
    wrong += table.to_dma(PhysAddr(0x100800)).value() != 0x10000800u ? 1 : 0;
    wrong += table.to_phys(DmaAddr(0x10000fff)).value() != 0x100fffu ? 1 : 0;
    const std::uint64_t torn = table.to_dma(PhysAddr(0x1000000 + 0x7fff)).value();
    wrong += torn != kInvalidAddress && torn != 0x1000000u + 0x7fff + 0x40000000 ? 1 : 0;
  }
  writer.join();
  EXPECT_EQ(wrong, 0u);
}

}  // namespace
}  // namespace swiotlb
