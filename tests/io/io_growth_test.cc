// Pools that come later reach the ring: with a RingBackend, a pool the
// IoTlb grows is registered with the ring before any mapping in it is
// handed out, READ_FIXED/WRITE_FIXED I/O runs through it, and once it is
// given back it is neither registered nor reachable.
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "io_fixture.h"
#include "support/eventually.h"
#include "swiotlb/dma/dma_api.h"
#include "swiotlb/io/ring_backend.h"

namespace swiotlb::io::testing {
namespace {

class IoGrowth : public IoFixture {
 protected:
  void open_growing(std::chrono::milliseconds shrink_after) {
    ring_ = std::make_shared<RingBackend>(make_region_backend({}));
    IoTlbOptions to;
    to.nslabs = 128;  // 256 KiB: 16 I/Os of 64 KiB in flight need more
    to.backend = ring_;
    to.growth.enabled = true;
    to.growth.pool_nslabs = 1024;
    to.growth.shrink_after = shrink_after;
    IoDeviceOptions options;
    options.max_in_flight = 16;
    options.pools = ring_;
    open_with(std::move(to), std::move(options));
  }

  // Holds more than three quarters (the watermark) of the configured pool
  // in bounce mappings, so that the worker grows a pool, and waits until
  // it has: the I/O that follows then runs through the grown pool.
  void grow() {
    for (std::size_t bytes : {65536, 65536, 65536, 16384}) {
      held_.emplace_back(bytes);
    }
    for (std::vector<std::byte>& b : held_) {
      Result<DmaAddr> dma =
          map_single(dev_->device(), b.data() + 8, b.size() - 8, Direction::to_device);
      ASSERT_TRUE(dma) << dma.error().message();
      held_dma_.push_back(*dma);
    }
    ::swiotlb::testing::eventually([&] { return tlb_->stats().growth.grown_pools != 0; });
    ASSERT_EQ(tlb_->stats().growth.grown_pools, 1U);
  }

  void let_go() {
    for (std::size_t i = 0; i < held_dma_.size(); ++i) {
      EXPECT_TRUE(
          unmap_single(dev_->device(), held_dma_[i], held_[i].size() - 8, Direction::to_device));
    }
    held_dma_.clear();
  }

  bool registered(std::uint64_t start) const {
    for (const WindowMapping& w : dev_->windows()) {
      if (w.cpu_start == start) {
        return true;
      }
    }
    return false;
  }

  std::shared_ptr<RingBackend> ring_;
  std::vector<std::vector<std::byte>> held_;
  std::vector<DmaAddr> held_dma_;
};

TEST_F(IoGrowth, AGrownPoolIsRegisteredWithTheRing) {
  open_growing(std::chrono::milliseconds(0));
  if (IsSkipped()) {
    return;
  }
  grow();
  Result<JobResult> r =
      run_ring_job(*dev_, spec(RwMode::randrw, BufferSource::unaligned, 65536, 400));
  let_go();
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_FALSE(r->error) << r->error->message();
  EXPECT_EQ(r->verify_errors, 0U) << r->first_verify_error;
  EXPECT_GT(r->verified_blocks, 0U);
  const IoTlbStats stats = tlb_->stats();
  ASSERT_GE(stats.growth.grow_events, 1U);
  std::uint64_t grown_maps = 0;
  for (const DynamicPoolStats& p : stats.dynamic) {
    if (p.kind == PoolKind::grown) {
      EXPECT_TRUE(registered(p.start)) << p.name;
      EXPECT_NE(dev_->device().phys_to_dma(PhysAddr(p.start)).value(), kInvalidAddress);
      grown_maps += p.maps;
    }
  }
  // I/O went through the grown pool: fixed-buffer I/O there would have
  // failed (EFAULT) had it not been registered.
  EXPECT_GT(grown_maps, 0U);
  EXPECT_GT(dev_->stats().bounced, 0U);
  EXPECT_EQ(dev_->stats().failed, 0U);
  EXPECT_EQ(pool_used(), 0U);
  expect_file_matches();
}

TEST_F(IoGrowth, AGrownPoolGivenBackLeavesTheRingAndTheReach) {
  open_growing(std::chrono::milliseconds(100));
  if (IsSkipped()) {
    return;
  }
  grow();
  Result<JobResult> r =
      run_ring_job(*dev_, spec(RwMode::randwrite, BufferSource::unaligned, 65536, 200));
  let_go();
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_FALSE(r->error) << r->error->message();
  ASSERT_GE(tlb_->stats().growth.grow_events, 1U);
  std::uint64_t start = 0;
  for (const DynamicPoolStats& p : tlb_->stats().dynamic) {
    if (p.kind == PoolKind::grown) {
      start = p.start;
    }
  }
  ASSERT_NE(start, 0U);
  ASSERT_TRUE(registered(start));
  const std::size_t windows = dev_->windows().size();
  // Idle, the grown pool is given back by the worker: unregistered, and
  // the Device no longer reaches it. The pool leaves the IoTlb's table at
  // once and its memory (registration and reach) after a grace period, so
  // the test waits for all three.
  ::swiotlb::testing::eventually([&] {
    return tlb_->stats().growth.grown_pools == 0 && !registered(start) &&
           dev_->device().phys_to_dma(PhysAddr(start)).value() == kInvalidAddress;
  });
  ASSERT_EQ(tlb_->stats().growth.grown_pools, 0U);
  EXPECT_FALSE(registered(start));
  EXPECT_LT(dev_->windows().size(), windows);
  EXPECT_EQ(dev_->device().phys_to_dma(PhysAddr(start)).value(), kInvalidAddress);
  // And I/O goes on, through the pools still registered.
  Result<JobResult> again =
      run_ring_job(*dev_, spec(RwMode::randrw, BufferSource::unaligned, 4096, 200));
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_FALSE(again->error);
  EXPECT_EQ(again->verify_errors, 0U);
  expect_file_matches();
}

TEST(IoGrowthSetup, ARingBackendThatIsNotTheIoTlbsIsRefused) {
  auto ring = std::make_shared<RingBackend>(make_region_backend({}));
  IoTlbOptions to;
  to.nslabs = 128;
  Result<std::unique_ptr<IoTlb>> tlb = IoTlb::create(to);
  ASSERT_TRUE(tlb);
  IoDeviceOptions options;
  options.pools = ring;
  Result<std::unique_ptr<IoDevice>> dev = IoDevice::create(0, tlb->get(), options);
  ASSERT_FALSE(dev);
  EXPECT_EQ(dev.error().code(), Errc::invalid_argument);
}

}  // namespace
}  // namespace swiotlb::io::testing
