// The always-on checks: every misuse is an error value, counted on the
// device, and leaves the mapping (and the pool) as it was.
#include <gtest/gtest.h>

#include <vector>

#include "support/dma_fixture.h"

namespace swiotlb {
namespace {

using testing::make_device;
using testing::make_io_tlb;

class DmaDebugChecks : public ::testing::TestWithParam<bool> {
 protected:
  // Parameter: whether the pool forces bouncing (bounced) or not (direct).
  void SetUp() override {
    io_tlb_ = make_io_tlb(1024, GetParam());
    dev_ = make_device(io_tlb_.get(), {.name = "dev"});
    other_ = make_device(io_tlb_.get(), {.name = "other"});
    buffer_.resize(8192);
    auto dma = map_single(*dev_, buffer_.data(), buffer_.size(), Direction::from_device);
    ASSERT_TRUE(dma);
    dma_ = *dma;
  }
  void TearDown() override { EXPECT_TRUE(io_tlb_->pool().check_invariants()); }
  void expect_error(const Status& s, Errc code) {
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code(), code) << s.error().message();
  }

  std::unique_ptr<IoTlb> io_tlb_;
  std::unique_ptr<Device> dev_;
  std::unique_ptr<Device> other_;
  std::vector<std::byte> buffer_;
  DmaAddr dma_;
};

INSTANTIATE_TEST_SUITE_P(BouncedAndDirect, DmaDebugChecks, ::testing::Bool());

TEST_P(DmaDebugChecks, UnmapOfAnAddressNeverMapped) {
  expect_error(unmap_single(*dev_, dma_ + 4096, 4096, Direction::from_device), Errc::not_mapped);
  EXPECT_EQ(dev_->stats().debug_errors, 1u);
  EXPECT_TRUE(unmap_single(*dev_, dma_, 8192, Direction::from_device));
}

TEST_P(DmaDebugChecks, UnmapWithAnotherSize) {
  expect_error(unmap_single(*dev_, dma_, 4096, Direction::from_device), Errc::mapping_mismatch);
  EXPECT_TRUE(unmap_single(*dev_, dma_, 8192, Direction::from_device)) << "still live";
}

TEST_P(DmaDebugChecks, UnmapWithAnotherDirection) {
  expect_error(unmap_single(*dev_, dma_, 8192, Direction::to_device), Errc::mapping_mismatch);
  EXPECT_EQ(dev_->stats().debug_errors, 1u);
  EXPECT_TRUE(unmap_single(*dev_, dma_, 8192, Direction::from_device));
}

TEST_P(DmaDebugChecks, DoubleUnmap) {
  EXPECT_TRUE(unmap_single(*dev_, dma_, 8192, Direction::from_device));
  expect_error(unmap_single(*dev_, dma_, 8192, Direction::from_device), Errc::not_mapped);
  EXPECT_EQ(dev_->stats().debug_errors, 1u);
}

TEST_P(DmaDebugChecks, SyncBeyondTheMapping) {
  expect_error(sync_single_for_cpu(*dev_, dma_ + 8000, 500, Direction::from_device),
               Errc::out_of_range);
  expect_error(sync_single_for_device(*dev_, dma_ + 8192, 1, Direction::from_device),
               GetParam() ? Errc::not_mapped : Errc::not_mapped);
  EXPECT_EQ(dev_->stats().debug_errors, 2u);
  EXPECT_TRUE(sync_single_for_cpu(*dev_, dma_ + 8000, 192, Direction::from_device));
  EXPECT_TRUE(unmap_single(*dev_, dma_, 8192, Direction::from_device));
}

TEST_P(DmaDebugChecks, SyncWithAnotherDirection) {
  expect_error(sync_single_for_cpu(*dev_, dma_, 8192, Direction::bidirectional),
               Errc::mapping_mismatch);
  EXPECT_TRUE(unmap_single(*dev_, dma_, 8192, Direction::from_device));
}

TEST_P(DmaDebugChecks, TeardownWithLiveMappings) {
  Status closed = dev_->close();
  expect_error(closed, Errc::busy);
  EXPECT_NE(closed.error().message().find("1 live mappings"), std::string::npos);
  EXPECT_EQ(dev_->stats().debug_errors, 1u);
  EXPECT_TRUE(unmap_single(*dev_, dma_, 8192, Direction::from_device));
  EXPECT_TRUE(dev_->close());
}

TEST_P(DmaDebugChecks, AnotherDeviceCannotUnmapIt) {
  if (!GetParam()) {
    // Direct mappings are per device: the other device has none at all.
    expect_error(unmap_single(*other_, dma_, 8192, Direction::from_device), Errc::not_mapped);
  } else {
    // The other device never bounced (its dma_uses_io_tlb is clear), so it
    // takes the address for a direct mapping it does not have.
    expect_error(unmap_single(*other_, dma_, 8192, Direction::from_device), Errc::not_mapped);
  }
  EXPECT_EQ(other_->stats().debug_errors, 1u);
  EXPECT_TRUE(unmap_single(*dev_, dma_, 8192, Direction::from_device));
}

// With the checks off a direct mapping is not recorded: the caller's word
// is taken, as the kernel takes it without CONFIG_DMA_API_DEBUG.
TEST(DmaDebugOff, DirectMappingsAreTakenOnTrust) {
  auto io_tlb = make_io_tlb(1024, false);
  auto dev = make_device(io_tlb.get(), {.name = "prod", .debug = DmaDebugMode::off});
  ASSERT_FALSE(dev->debug().enabled());
  std::vector<std::byte> buffer(8192);
  auto dma = map_single(*dev, buffer.data(), buffer.size(), Direction::from_device);
  ASSERT_TRUE(dma);
  EXPECT_EQ(dev->stats().live_direct, 0u);
  EXPECT_TRUE(sync_single_for_cpu(*dev, *dma, 8192, Direction::from_device));
  EXPECT_TRUE(unmap_single(*dev, *dma + 4096, 4096, Direction::from_device));
  EXPECT_EQ(dev->stats().debug_errors, 0u);
  EXPECT_TRUE(dev->close());
}

// A bounced mapping is checked by its pool's record either way.
TEST(DmaDebugOff, BouncedMappingsAreStillChecked) {
  auto io_tlb = make_io_tlb(1024, true);
  auto dev = make_device(io_tlb.get(), {.name = "prod", .debug = DmaDebugMode::off});
  std::vector<std::byte> buffer(8192);
  auto dma = map_single(*dev, buffer.data(), buffer.size(), Direction::from_device);
  ASSERT_TRUE(dma);
  Status wrong = unmap_single(*dev, *dma, 4096, Direction::from_device);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), Errc::mapping_mismatch);
  EXPECT_EQ(dev->stats().debug_errors, 1u);
  EXPECT_FALSE(dev->close()) << "a live bounced mapping is still seen";
  EXPECT_TRUE(unmap_single(*dev, *dma, 8192, Direction::from_device));
  EXPECT_TRUE(dev->close());
}

TEST(DmaDebugMode, ProcessDefaultIsTakenAtCreation) {
  auto io_tlb = make_io_tlb(1024, false);
  ASSERT_TRUE(dma_debug_default()) << "the DMA tests turn the checks on";
  set_dma_debug_default(false);
  auto off = make_device(io_tlb.get(), {.name = "off"});
  set_dma_debug_default(true);
  auto on = make_device(io_tlb.get(), {.name = "on"});
  auto forced_on = make_device(io_tlb.get(), {.name = "forced", .debug = DmaDebugMode::on});
  EXPECT_FALSE(off->debug().enabled());
  EXPECT_TRUE(on->debug().enabled());
  EXPECT_TRUE(forced_on->debug().enabled());
  EXPECT_TRUE(dma_debug_enabled(DmaDebugMode::on));
  EXPECT_FALSE(dma_debug_enabled(DmaDebugMode::off));
}

}  // namespace
}  // namespace swiotlb
