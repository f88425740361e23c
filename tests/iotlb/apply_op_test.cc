// apply(op, IoTlb): each op does what the IoTlb's own call does, time moves
// a simulation clock and runs the maintenance due, and the ops an IoTlb
// does not take are refused with nothing changed.
#include "swiotlb/iotlb/apply_op.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>

namespace swiotlb::ops {
namespace {

using ::testing::HasSubstr;

struct Sim {
  std::shared_ptr<SimulationBackend> clock = std::make_shared<SimulationBackend>(0x40000000);
  std::unique_ptr<IoTlb> tlb;
};

Sim make(bool by_caller, bool grows = true) {
  Sim sim;
  IoTlbOptions o;
  o.nslabs = 128;
  o.policy = "linux";
  o.backend = sim.clock;
  o.growth.enabled = grows;
  o.growth.by_caller = by_caller;
  o.growth.pool_nslabs = 128;
  o.growth.shrink_after = std::chrono::milliseconds(8);
  auto tlb = IoTlb::create(o);
  EXPECT_TRUE(tlb) << tlb.error().message();
  if (tlb) {
    sim.tlb = std::move(*tlb);
  }
  return sim;
}

Map map_of(std::uint64_t size) {
  Map m;
  m.orig = 0x7000000;
  m.size = size;
  m.dir = Direction::from_device;
  m.attrs = static_cast<std::uint32_t>(Attr::no_warn);
  return m;
}

TEST(ApplyOnIoTlb, MapSyncAndUnmapAreTheIoTlbsOwn) {
  Sim sim = make(true);
  ASSERT_TRUE(sim.tlb);
  Applied got = apply(map_of(4096), *sim.tlb, sim.clock.get());
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_TRUE(sim.tlb->pool().contains(PhysAddr(*got)));
  EXPECT_EQ(sim.tlb->used(), 2u);
  EXPECT_EQ(bounce_request(map_of(4096), *sim.tlb).pool_dma_start.value(),
            sim.tlb->start().value());

  EXPECT_TRUE(apply(Sync{*got, 4096, Direction::from_device, SyncFor::cpu}, *sim.tlb));
  EXPECT_TRUE(apply(Sync{*got + 8, 8, Direction::from_device, SyncFor::device}, *sim.tlb));
  Applied other_dir = apply(Sync{*got, 8, Direction::to_device, SyncFor::cpu}, *sim.tlb);
  ASSERT_FALSE(other_dir);
  EXPECT_EQ(other_dir.error().code(), Errc::mapping_mismatch);

  Applied no_claim = apply(Unmap{*got, 0, 0, Direction::from_device, 0}, *sim.tlb);
  ASSERT_FALSE(no_claim);
  EXPECT_THAT(no_claim.error().message(), HasSubstr("without its size"));
  Applied wrong = apply(Unmap{*got, 4097, 0, Direction::from_device, 0}, *sim.tlb);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), Errc::mapping_mismatch);
  EXPECT_EQ(sim.tlb->used(), 2u);
  ASSERT_TRUE(apply(Unmap{*got, 4096, 0, Direction::from_device, 0}, *sim.tlb));
  EXPECT_EQ(sim.tlb->used(), 0u);
  EXPECT_TRUE(sim.tlb->check_invariants());
}

TEST(ApplyOnIoTlb, GrowAddsAPoolMapsThenUse) {
  Sim sim = make(true);
  ASSERT_TRUE(sim.tlb);
  // The configured pool full: one segment-sized map each.
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(apply(map_of(128 * 1024), *sim.tlb));
  }
  Applied full = apply(map_of(4096), *sim.tlb, sim.clock.get());
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code(), Errc::pool_full);
  Applied start = apply(Grow{256, 2}, *sim.tlb);
  ASSERT_TRUE(start) << start.error().message();
  EXPECT_EQ(sim.tlb->stats().growth.grown_pools, 1u);
  EXPECT_EQ(sim.tlb->stats().growth.grown_nslabs, 256u);
  Applied got = apply(map_of(4096), *sim.tlb);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_GE(*got, *start);
  EXPECT_LT(*got, *start + 256 * 2048);
  // A geometry the IoTlb cannot make is its own error.
  EXPECT_FALSE(apply(Grow{100, 3}, *sim.tlb));
  EXPECT_TRUE(sim.tlb->check_invariants());
}

TEST(ApplyOnIoTlb, AnIoTlbThatDoesNotGrowRefusesGrow) {
  Sim sim = make(false, false);
  ASSERT_TRUE(sim.tlb);
  Applied refused = apply(Grow{128, 1}, *sim.tlb);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::invalid_argument);
  EXPECT_EQ(sim.tlb->stats().growth.grown_pools, 0u);
}

TEST(ApplyOnIoTlb, TicksMoveTheClockAndIdlePoolsShrink) {
  Sim sim = make(false);
  ASSERT_TRUE(sim.tlb);
  Applied a = apply(map_of(128 * 1024), *sim.tlb);
  Applied b = apply(map_of(128 * 1024), *sim.tlb);
  ASSERT_TRUE(a && b);
  // The full pool asked for growth; the maintenance a tick runs adds it.
  ASSERT_TRUE(apply(Tick{0}, *sim.tlb, sim.clock.get()));
  EXPECT_EQ(sim.tlb->stats().growth.grown_pools, 1u);
  ASSERT_TRUE(apply(Unmap{*a, 128 * 1024, 0, Direction::from_device, 0}, *sim.tlb));
  ASSERT_TRUE(apply(Unmap{*b, 128 * 1024, 0, Direction::from_device, 0}, *sim.tlb));
  const auto before = sim.clock->now();
  // 7 ms: not yet idle for shrink_after (8 ms).
  ASSERT_TRUE(apply(Tick{7'000'000}, *sim.tlb, sim.clock.get()));
  EXPECT_EQ(sim.clock->now() - before, std::chrono::milliseconds(7));
  EXPECT_EQ(sim.tlb->stats().growth.grown_pools, 1u);
  ASSERT_TRUE(apply(Tick{2'000'000}, *sim.tlb, sim.clock.get()));
  EXPECT_EQ(sim.tlb->stats().growth.grown_pools, 0u);
  EXPECT_EQ(sim.tlb->growth_stats().shrunk_pools, 1u);
  EXPECT_TRUE(sim.tlb->check_invariants());
}

TEST(ApplyOnIoTlb, ATickWithoutAClockAndIovaOpsAreRefused) {
  Sim sim = make(true);
  ASSERT_TRUE(sim.tlb);
  Applied no_clock = apply(Tick{1000}, *sim.tlb);
  ASSERT_FALSE(no_clock);
  EXPECT_THAT(no_clock.error().message(), HasSubstr("without a simulation clock"));
  for (const Op& op :
       {Op(IovaReserve{1, 2}), Op(IovaAlloc{0, 1, 100, false}), Op(IovaFree{0, 5, 1})}) {
    Applied refused = apply(op, *sim.tlb, sim.clock.get());
    ASSERT_FALSE(refused) << op_name(op);
    EXPECT_THAT(refused.error().message(), HasSubstr("an IoTlb takes no"));
  }
  EXPECT_EQ(sim.tlb->used(), 0u);
}

}  // namespace
}  // namespace swiotlb::ops
