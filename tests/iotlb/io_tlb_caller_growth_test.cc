// Growth handed to the caller (Growth::by_caller: add_pool, remove_pool),
// the simulation backend's exact placement, and transient pools of exactly
// the slots a map needs (TransientSize::exact_slots), on the simulation
// backend, where addresses are known in advance.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/backend.h"
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kBase = 0x1000000;

struct Sim {
  std::shared_ptr<SimulationBackend> backend;
  std::unique_ptr<IoTlb> tlb;
};

// A default pool of one 128-slot area at kBase, pools added by the caller,
// transient pools of the kernel's size.
Sim make_sim() {
  Sim sim;
  sim.backend = std::make_shared<SimulationBackend>(kBase);
  IoTlbOptions options;
  options.nslabs = 128;
  options.policy = "linux";
  options.backend = sim.backend;
  options.search_order = PoolSearchOrder::kernel;
  options.growth.enabled = true;
  options.growth.by_caller = true;
  options.transient = true;
  options.transient_size = IoTlbOptions::TransientSize::exact_slots;
  Result<std::unique_ptr<IoTlb>> tlb = IoTlb::create(options);
  EXPECT_TRUE(tlb) << tlb.error().message();
  if (tlb) {
    sim.tlb = std::move(*tlb);
  }
  return sim;
}

BounceRequest request(std::uint64_t orig, std::uint64_t size, std::uint64_t min_align_mask = 0) {
  BounceRequest r;
  r.orig = PhysAddr(orig);
  r.size = size;
  r.min_align_mask = min_align_mask;
  r.pool_dma_start = DmaAddr(kBase);
  r.dir = Direction::from_device;
  r.attrs = Attr::no_warn;
  r.owner = 1;
  r.cpu = 0;
  return r;
}

Status unmap(IoTlb& tlb, PhysAddr addr, const BounceRequest& r) {
  return tlb.unmap(addr, r.min_align_mask, {r.size, r.dir, r.owner}, Attr::skip_cpu_sync);
}

TEST(CallerGrowth, AddsPoolsWhereTheCallerPlacesThemAndNeverByItself) {
  Sim sim = make_sim();
  ASSERT_TRUE(sim.tlb);
  EXPECT_TRUE(sim.tlb->grows());
  EXPECT_FALSE(sim.tlb->grows_by_itself());
  // Fill the default pool; a failed search asks for no growth.
  const BounceRequest whole = request(0x10000000, 128 * kSlotSize);
  Result<PhysAddr> first = sim.tlb->map(whole);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->value(), kBase);
  sim.tlb->run_maintenance();
  EXPECT_EQ(sim.tlb->growth_stats().grow_events, 0u);

  sim.backend->place_next(0x2000000);
  Result<PhysAddr> added = sim.tlb->add_pool(0, 256, 2);
  ASSERT_TRUE(added) << added.error().message();
  EXPECT_EQ(added->value(), 0x2000000u);
  EXPECT_EQ(sim.tlb->growth_stats().grow_events, 1u);
  // The new pool takes the next map, in its area cpu & 1.
  BounceRequest page = request(0x10100000, kPageSize);
  page.cpu = 1;
  Result<PhysAddr> second = sim.tlb->map(page);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->value(), 0x2000000u + 128 * kSlotSize);

  // A pool that overlaps another is refused; so is a bad geometry.
  sim.backend->place_next(0x2000000 + kPageSize);
  Result<PhysAddr> overlapping = sim.tlb->add_pool(0, 128, 1);
  ASSERT_FALSE(overlapping);
  EXPECT_EQ(overlapping.error().code(), Errc::invalid_argument);
  EXPECT_FALSE(sim.tlb->add_pool(0, 100, 1));
  EXPECT_FALSE(sim.tlb->add_pool(3, 128, 1));

  // Removal waits for the pool to be empty.
  Status busy = sim.tlb->remove_pool(PhysAddr(0x2000000));
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code(), Errc::busy);
  ASSERT_TRUE(unmap(*sim.tlb, *second, page));
  EXPECT_TRUE(sim.tlb->remove_pool(PhysAddr(0x2000000)));
  EXPECT_FALSE(sim.tlb->contains(PhysAddr(0x2000000)));
  Status gone = sim.tlb->remove_pool(PhysAddr(0x2000000));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Errc::not_mapped);
  EXPECT_EQ(sim.tlb->growth_stats().shrunk_pools, 1u);
  sim.tlb->run_maintenance();
  EXPECT_TRUE(sim.tlb->check_invariants());
}

TEST(CallerGrowth, RemovalNeedsGrowthByTheCaller) {
  auto backend = std::make_shared<SimulationBackend>(kBase);
  IoTlbOptions options;
  options.nslabs = 128;
  options.backend = backend;
  options.growth.enabled = true;
  Result<std::unique_ptr<IoTlb>> tlb = IoTlb::create(options);
  ASSERT_TRUE(tlb);
  Result<PhysAddr> added = (*tlb)->add_pool(0, 128, 1);
  ASSERT_TRUE(added);
  Status removed = (*tlb)->remove_pool(*added);
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error().code(), Errc::invalid_argument);
}

// The kernel's transient pool: nr_slots of the map, at the placed address,
// counted in used and hiwater, and gone at its unmap.
TEST(CallerGrowth, ExactTransientPoolHoldsAnAlignedMap) {
  Sim sim = make_sim();
  ASSERT_TRUE(sim.tlb);
  ASSERT_TRUE(sim.tlb->map(request(0x10000000, 128 * kSlotSize)));
  sim.backend->place_next(0x140000000);
  const BounceRequest page = request(0x10100000, kPageSize);
  Result<PhysAddr> mapped = sim.tlb->map(page);
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_EQ(mapped->value(), 0x140000000u);
  EXPECT_EQ(sim.tlb->growth_stats().transient_nslabs, 2u);
  EXPECT_EQ(sim.tlb->used(), 130u);
  EXPECT_EQ(sim.tlb->hiwater(), 130u);
  ASSERT_TRUE(unmap(*sim.tlb, *mapped, page));
  EXPECT_EQ(sim.tlb->growth_stats().transient_nslabs, 0u);
  EXPECT_EQ(sim.tlb->used(), 128u);
  EXPECT_EQ(sim.tlb->hiwater(), 130u);
}

// NVMe's case: min_align_mask 0xfff and a buffer 2 KiB into a page need an
// odd first slot, and an exact pool's odd slots are one short.
TEST(CallerGrowth, ExactTransientPoolThatCannotAlignFailsTheMap) {
  Sim sim = make_sim();
  ASSERT_TRUE(sim.tlb);
  ASSERT_TRUE(sim.tlb->map(request(0x10000000, 128 * kSlotSize)));
  const BounceRequest nvme = request(0x20000800, 32 * kSlotSize, 0xfff);
  Result<PhysAddr> mapped = sim.tlb->map(nvme);
  ASSERT_FALSE(mapped);
  EXPECT_EQ(mapped.error().code(), Errc::pool_full);
  const GrowthStats g = sim.tlb->growth_stats();
  EXPECT_EQ(g.transient_pools_total, 0u);
  EXPECT_EQ(g.transient_failures, 1u);
  EXPECT_EQ(g.transient_nslabs, 0u);
  EXPECT_EQ(sim.tlb->used(), 128u);
  // The same map from a page-aligned buffer fits its exact pool.
  Result<PhysAddr> aligned = sim.tlb->map(request(0x20001000, 32 * kSlotSize, 0xfff));
  ASSERT_TRUE(aligned) << aligned.error().message();
  EXPECT_EQ(sim.tlb->growth_stats().transient_nslabs, 32u);
}

// The tier's used and high-water mark over a configured pool and a grown
// one: the configured pool counts its own slots, the tier the others', and
// the mark is the kernel's used_hiwater of the total at every step.
TEST(CallerGrowth, TheTiersHighWaterMarkIsTheTotalsOverEveryPool) {
  auto backend = std::make_shared<SimulationBackend>(kBase);
  IoTlbOptions options;
  options.nslabs = 128;
  options.policy = "linux";
  options.backend = backend;
  options.search_order = PoolSearchOrder::oldest_first;  // the configured pool first
  options.growth.enabled = true;
  options.growth.by_caller = true;
  Result<std::unique_ptr<IoTlb>> made = IoTlb::create(options);
  ASSERT_TRUE(made) << made.error().message();
  IoTlb& tlb = **made;
  backend->place_next(0x2000000);
  ASSERT_TRUE(tlb.add_pool(0, 256, 1));
  std::uint64_t used = 0;
  std::uint64_t peak = 0;
  std::vector<std::pair<PhysAddr, BounceRequest>> live;
  auto map = [&](std::uint64_t slots) {
    const BounceRequest r = request(0x10000000 + live.size() * 0x100000, slots * kSlotSize);
    Result<PhysAddr> mapped = tlb.map(r);
    ASSERT_TRUE(mapped) << mapped.error().message();
    live.emplace_back(*mapped, r);
    used += slots;
    peak = std::max(peak, used);
  };
  auto unmap_at = [&](std::size_t i) {
    ASSERT_TRUE(unmap(tlb, live[i].first, live[i].second));
    used -= nr_slots(live[i].second.size);
    live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
  };
  auto check = [&](const char* when) {
    EXPECT_EQ(tlb.used(0), used) << when;
    EXPECT_EQ(tlb.hiwater(0), peak) << when;
    EXPECT_TRUE(tlb.check_invariants()) << when;
  };
  map(100);  // the configured pool (128 slots)
  check("configured only");
  map(64);  // no room there: the grown pool
  check("both pools");
  unmap_at(0);  // the configured pool empties, the grown one still holds 64
  map(20);      // back in the configured pool, while the grown one holds slots
  map(90);      // 20 + 90 + 64 = 174: a new peak made by a configured map
  check("a peak made in the configured pool while the grown one holds slots");
  EXPECT_EQ(tlb.pool(0).used(), 110u);  // the maps went where this test says
  unmap_at(0);
  unmap_at(0);
  unmap_at(0);
  check("all gone");
  tlb.reset_hiwater();
  peak = used;
  map(10);
  peak = 10;
  check("after a reset");
  unmap_at(0);
}

}  // namespace
}  // namespace swiotlb
