// A device that bounces every streaming mapping through one pool it sees
// whole (Device::bounces_through_one_pool) maps and unmaps through the run
// cache first, through its route (IoTlb::map_streaming, unmap_streaming).
// Which devices take that path, and that it answers exactly as the full
// path does: the same bounce slots, bytes, errors and counters, for random
// sequences of maps, unmaps and misuse, against a twin device that the
// full path serves.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/core/constants.h"

namespace swiotlb {
namespace {

using testing::device_view;
using testing::make_device;
using testing::make_io_tlb;
using testing::pattern;

// A translation that changes nothing: the twin sees every address as the
// one-pool device does, but has dma ranges, so it takes the full path.
DmaRangeMap identity_ranges() {
  auto made = DmaRangeMap::create({{0, 0, std::uint64_t{1} << 62}});
  EXPECT_TRUE(made) << made.error().message();
  return made ? std::move(*made) : DmaRangeMap();
}

TEST(DmaOnePool, WhichDevicesTakeIt) {
  auto forced = make_io_tlb(1024, /*force=*/true, "fast");
  auto unforced = make_io_tlb(1024, /*force=*/false, "fast");
  ASSERT_TRUE(forced && unforced);
  auto plain = make_device(forced.get());
  EXPECT_TRUE(plain->bounces_through_one_pool());
  EXPECT_TRUE(plain->one_pool_holds(forced->start()));
  EXPECT_TRUE(plain->one_pool_holds(PhysAddr(forced->end().value() - 1)));
  EXPECT_FALSE(plain->one_pool_holds(forced->end()));
  EXPECT_FALSE(plain->one_pool_holds(PhysAddr(forced->start().value() - 1)));
  EXPECT_FALSE(make_device(unforced.get())->one_pool_holds(unforced->start()));
  // Bounces only when it must: the buffer decides, per map.
  EXPECT_FALSE(make_device(unforced.get())->bounces_through_one_pool());
  EXPECT_FALSE(make_device(nullptr)->bounces_through_one_pool());
  // A translation, even one that changes nothing, is worked out per map.
  EXPECT_FALSE(
      make_device(forced.get(), {.dma_ranges = identity_ranges()})->bounces_through_one_pool());
  // A device that reaches only part of the pool is checked per map, and
  // one that reaches none of it has no pool at all.
  const std::uint64_t last = forced->end().value() - 1;
  EXPECT_FALSE(
      make_device(forced.get(), {.dma_mask = last - kSlotSize})->bounces_through_one_pool());
  EXPECT_TRUE(make_device(forced.get(), {.dma_mask = last})->bounces_through_one_pool());
  EXPECT_FALSE(make_device(forced.get(), {.dma_mask = forced->start().value() - 1})
                   ->bounces_through_one_pool());
  // Behind an IOMMU the domain, not the pool, gives the addresses.
  iova::DeviceIovaSpec spec;
  spec.mask_bits = 48;
  auto domain = IommuDomain::create(spec);
  ASSERT_TRUE(domain) << domain.error().message();
  EXPECT_FALSE(make_device(forced.get(), {.iommu = *domain})->bounces_through_one_pool());
}

// The route of the run cache's hit (IoTlb::map_streaming) is settled with
// the device: its id, masks and pool; none where the cache never serves.
TEST(DmaOnePool, TheRouteIsTheDevicesOwn) {
  auto forced = make_io_tlb(1024, /*force=*/true, "fast");
  ASSERT_TRUE(forced);
  auto device = make_device(forced.get(), {.min_align_mask = 0xfff});
  const BounceRoute* route = device->streaming_route();
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->pool, device->streaming_pools().front().pool);
  EXPECT_EQ(route->slots.owner, device->id());
  EXPECT_EQ(route->slots.min_align_mask, 0xfffu);
  auto kernel = make_io_tlb(1024, /*force=*/true, "linux");
  ASSERT_TRUE(kernel);
  auto on_kernel = make_device(kernel.get());
  EXPECT_TRUE(on_kernel->bounces_through_one_pool());
  EXPECT_EQ(on_kernel->streaming_route(), nullptr);
  auto unforced = make_io_tlb(1024, /*force=*/false, "fast");
  ASSERT_TRUE(unforced);
  EXPECT_EQ(make_device(unforced.get())->streaming_route(), nullptr);
}

// One side of the comparison: an IoTlb, a device on it, and the mappings
// it holds (each with its own buffer).
struct Side {
  struct Live {
    DmaAddr dma;
    std::uint64_t size;
    Direction dir;
    Attrs attrs;
    std::vector<std::byte> storage;  // the buffer, `start` bytes in
    std::size_t start;
    std::byte* data() { return storage.data() + start; }
  };
  std::unique_ptr<IoTlb> io_tlb;
  std::unique_ptr<Device> dev;
  std::vector<Live> live;

  std::uint64_t offset(DmaAddr dma) const { return dma.value() - io_tlb->start().value(); }
};

Side make_side(const std::string& policy, bool one_pool, std::uint64_t min_align_mask) {
  Side side;
  side.io_tlb = make_io_tlb(512, /*force=*/true, policy);
  EXPECT_TRUE(side.io_tlb);
  DeviceConfig config{.name = one_pool ? "one-pool" : "full-path"};
  config.min_align_mask = min_align_mask;
  if (!one_pool) {
    config.dma_ranges = identity_ranges();
  }
  side.dev = make_device(side.io_tlb.get(), std::move(config));
  EXPECT_TRUE(side.dev);
  EXPECT_EQ(side.dev->bounces_through_one_pool(), one_pool);
  return side;
}

// What both sides must agree on after every step.
void expect_same_state(const Side& a, const Side& b, int step) {
  const PoolStats sa = a.io_tlb->pool().stats();
  const PoolStats sb = b.io_tlb->pool().stats();
  EXPECT_EQ(sa.used, sb.used) << "step " << step;
  EXPECT_EQ(sa.hiwater, sb.hiwater) << "step " << step;
  EXPECT_EQ(sa.maps, sb.maps) << "step " << step;
  EXPECT_EQ(sa.failures, sb.failures) << "step " << step;
  EXPECT_EQ(sa.cached, sb.cached) << "step " << step;
  EXPECT_EQ(sa.cache_hits, sb.cache_hits) << "step " << step;
  EXPECT_EQ(a.io_tlb->used(), b.io_tlb->used()) << "step " << step;
  EXPECT_EQ(a.io_tlb->hiwater(), b.io_tlb->hiwater()) << "step " << step;
  const DeviceStats da = a.dev->stats();
  const DeviceStats db = b.dev->stats();
  EXPECT_EQ(da.debug_errors, db.debug_errors) << "step " << step;
  EXPECT_EQ(da.map_failures, db.map_failures) << "step " << step;
  EXPECT_EQ(da.cache_syncs, db.cache_syncs) << "step " << step;
}

std::uint64_t pick_size(std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0:
      return 1 + rng() % 512;
    case 1:
      return 1 + rng() % 4096;
    case 2:
      return 1 + rng() % (34 * kSlotSize);  // around the longest cached run (32 slots)
    default:
      return 1 + rng() % (160 * kSlotSize);
  }
}

// The same random maps, unmaps and misuse on both sides, step by step.
void run_twins(const std::string& policy, std::uint64_t min_align_mask, std::uint64_t seed) {
  SCOPED_TRACE(policy + " seed " + std::to_string(seed) + " min_align_mask " +
               std::to_string(min_align_mask));
  Side one = make_side(policy, true, min_align_mask);
  Side full = make_side(policy, false, min_align_mask);
  std::mt19937_64 rng(seed);
  // What the sequence went through, so that a run that never reached a
  // case does not pass for one that checked it.
  int refused = 0;
  int misused = 0;
  int double_unmaps = 0;
  constexpr Direction kDirs[] = {Direction::to_device, Direction::from_device,
                                 Direction::bidirectional};
  for (int step = 0; step < 3000; ++step) {
    const bool do_map = one.live.empty() || rng() % 100 < 52;
    if (do_map) {
      const std::uint64_t size = pick_size(rng);
      const Direction dir = kDirs[rng() % 3];
      const Attrs attrs =
          rng() % 8 == 0 ? Attrs(Attr::skip_cpu_sync) | Attr::no_warn : Attrs(Attr::no_warn);
      // Both buffers start at the same offset in a page, so that kept bits
      // (min_align_mask) ask the same of both pools.
      const std::uint64_t in_page = rng() % 4096;
      const std::vector<std::byte> data = pattern(size, static_cast<unsigned>(step));
      std::vector<Result<DmaAddr>> got;  // one-pool side, then full side
      for (Side* side : {&one, &full}) {
        Side::Live entry{DmaAddr(), size, dir, attrs, std::vector<std::byte>(size + 8192), 0};
        const std::uint64_t base = PhysAddr::from_pointer(entry.storage.data()).value();
        entry.start =
            static_cast<std::size_t>(((base + 4095) & ~std::uint64_t{4095}) + in_page - base);
        std::memcpy(entry.data(), data.data(), size);
        Result<DmaAddr> mapped = map_single(*side->dev, entry.data(), size, dir, attrs);
        if (mapped) {
          entry.dma = *mapped;
          side->live.push_back(std::move(entry));
        }
        got.push_back(std::move(mapped));
      }
      ASSERT_EQ(got[0].has_value(), got[1].has_value()) << "step " << step;
      if (got[0]) {
        EXPECT_EQ(one.offset(*got[0]), full.offset(*got[1])) << "step " << step;
        // A map always fills the bounce buffer, skip_cpu_sync or not.
        EXPECT_EQ(std::memcmp(device_view(*got[0]), data.data(), size), 0) << "step " << step;
      } else {
        EXPECT_EQ(got[0].error().code(), got[1].error().code()) << "step " << step;
        ++refused;
      }
    } else {
      const std::size_t k = rng() % one.live.size();
      const auto misuse = static_cast<unsigned>(rng() % 20);
      Status outcome[2];
      for (Side* side : {&one, &full}) {
        Side::Live& entry = side->live[k];
        const std::uint64_t claimed = misuse == 0 ? entry.size + 1 : entry.size;
        Direction dir = entry.dir;
        if (misuse == 1) {  // the wrong direction
          dir = entry.dir == Direction::to_device ? Direction::from_device : Direction::to_device;
        }
        // What the device wrote, which an unmap from the device copies back.
        std::memset(device_view(entry.dma), 0x5a, entry.size);
        outcome[side == &one ? 0 : 1] =
            unmap_single(*side->dev, entry.dma, claimed, dir, entry.attrs);
      }
      ASSERT_EQ(outcome[0].has_value(), outcome[1].has_value()) << "step " << step;
      if (!outcome[0]) {
        EXPECT_EQ(outcome[0].error().code(), outcome[1].error().code()) << "step " << step;
        EXPECT_LE(misuse, 1u) << outcome[0].error().message();
        ++misused;
      } else {
        EXPECT_GT(misuse, 1u) << "step " << step;
        EXPECT_EQ(std::memcmp(one.live[k].data(), full.live[k].data(), one.live[k].size), 0)
            << "step " << step;
        const DmaAddr gone[2] = {one.live[k].dma, full.live[k].dma};
        for (Side* side : {&one, &full}) {
          side->live.erase(side->live.begin() + static_cast<std::ptrdiff_t>(k));
        }
        if (misuse == 2) {
          // A second unmap of the same address: refused alike.
          Status again[2];
          for (int s = 0; s < 2; ++s) {
            Side& side = s == 0 ? one : full;
            again[s] = unmap_single(*side.dev, gone[s], 512, Direction::to_device);
          }
          ASSERT_EQ(again[0].has_value(), again[1].has_value()) << "step " << step;
          EXPECT_FALSE(again[0]) << "step " << step;
          ++double_unmaps;
          if (!again[0]) {
            EXPECT_EQ(again[0].error().code(), again[1].error().code()) << "step " << step;
          }
        }
      }
    }
    expect_same_state(one, full, step);
    if (::testing::Test::HasFailure()) {
      return;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(misused, 0);
  EXPECT_GT(double_unmaps, 0);
  if (policy == "fast") {
    EXPECT_GT(one.io_tlb->pool().stats().cache_hits, 0u);
  }
  for (Side* side : {&one, &full}) {
    while (!side->live.empty()) {
      const Side::Live& entry = side->live.back();
      EXPECT_TRUE(unmap_single(*side->dev, entry.dma, entry.size, entry.dir, entry.attrs));
      side->live.pop_back();
    }
    EXPECT_TRUE(side->io_tlb->check_invariants());
    EXPECT_EQ(side->io_tlb->used(), 0u);
  }
  expect_same_state(one, full, -1);
}

TEST(DmaOnePool, AnswersAsTheFullPathDoes) {
  for (const char* policy : {"fast", "linux"}) {
    for (std::uint64_t seed : {1, 2, 3}) {
      run_twins(policy, 0, seed);
    }
  }
}

TEST(DmaOnePool, AnswersAsTheFullPathDoesWithKeptBits) {
  for (std::uint64_t seed : {4, 5}) {
    run_twins("fast", 0xfff, seed);
  }
}

TEST(DmaOnePool, CopiesBackWhatTheDeviceWrote) {
  auto io_tlb = make_io_tlb(1024, /*force=*/true, "fast");
  auto dev = make_device(io_tlb.get());
  ASSERT_TRUE(dev->bounces_through_one_pool());
  std::vector<std::byte> buffer(3000, std::byte{0});
  for (int round = 0; round < 3; ++round) {  // the second and third maps hit the cache
    auto dma = map_single(*dev, buffer.data(), buffer.size(), Direction::from_device);
    ASSERT_TRUE(dma) << dma.error().message();
    std::memset(device_view(*dma), 0x30 + round, buffer.size());
    ASSERT_TRUE(unmap_single(*dev, *dma, buffer.size(), Direction::from_device));
    EXPECT_EQ(buffer[0], std::byte(0x30 + round));
    EXPECT_EQ(buffer[2999], std::byte(0x30 + round));
  }
  EXPECT_EQ(io_tlb->pool().stats().cache_hits, 2u);
  EXPECT_EQ(io_tlb->used(), 0u);
}

TEST(DmaOnePool, ANonCoherentDeviceStillHasItsCachesMaintained) {
  auto io_tlb = make_io_tlb(1024, /*force=*/true, "fast");
  std::vector<CacheOp> ops;
  auto dev = make_device(io_tlb.get(), {.coherent = false,
                                        .cache_hook = [&](CacheOp op, PhysAddr, std::uint64_t,
                                                          Direction) { ops.push_back(op); }});
  ASSERT_TRUE(dev->bounces_through_one_pool());
  std::vector<std::byte> buffer = pattern(512, 3);
  for (int round = 0; round < 2; ++round) {
    auto dma = map_single(*dev, buffer.data(), buffer.size(), Direction::bidirectional);
    ASSERT_TRUE(dma);
    ASSERT_TRUE(unmap_single(*dev, *dma, buffer.size(), Direction::bidirectional));
  }
  EXPECT_EQ(ops, (std::vector<CacheOp>{CacheOp::for_device, CacheOp::for_cpu, CacheOp::for_device,
                                       CacheOp::for_cpu}));
  EXPECT_EQ(io_tlb->pool().stats().cache_hits, 1u);
}

}  // namespace
}  // namespace swiotlb
