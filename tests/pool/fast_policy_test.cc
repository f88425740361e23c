// The `fast` policy: hand-worked cases for each rule it shares with the
// kernel (page alignment, min_align_mask bits below and above a slot,
// alloc_align_mask pad slots, segments, the device's segment boundary, area
// order), its own choice (address-ordered first fit), and a property test
// against a brute-force oracle: after any sequence of maps and unmaps, a map
// succeeds exactly when some area holds a run the kernel's rules accept,
// and then in the first such area, on such a run.
#include "swiotlb/pool/fast_policy.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "support/slot_oracle.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/pool/linux_policy.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kStart = 0x100000;

// "fast" is the policy with its run cache; "fast-uncached" the same without.
std::unique_ptr<SlotPool> make_pool(const std::string& policy, std::uint64_t slots,
                                    std::uint32_t areas, std::uint64_t start = kStart) {
  auto p = policy == "fast-uncached"
               ? Result<std::shared_ptr<const SlotPolicy>>(std::make_shared<FastPolicy>(false))
               : make_slot_policy(policy);
  EXPECT_TRUE(p);
  auto made = SlotPool::create({PhysAddr(start), slots, areas}, *p);
  EXPECT_TRUE(made) << made.error().message();
  return made ? std::move(*made) : nullptr;
}

struct Ask {
  std::uint64_t size = 0;
  std::uint64_t orig = 0x40000000;
  std::uint64_t min_align = 0;
  std::uint64_t align = 0;
  std::uint64_t boundary = ~std::uint64_t{0};
  unsigned cpu = 0;
};

SlotRequest request_for(const SlotPool& pool, const Ask& ask) {
  SlotRequest r;
  r.orig = PhysAddr(ask.orig);
  r.mapping_size = ask.size;
  r.min_align_mask = ask.min_align;
  r.alloc_align_mask = ask.align;
  r.seg_boundary_mask = ask.boundary;
  r.pool_dma_start = DmaAddr(pool.start().value());
  r.cpu = ask.cpu;
  return r;
}

// The data slot of the bounce address, or -1 when the map fails.
long map_slot(SlotPool& pool, const Ask& ask) {
  auto m = pool.map(request_for(pool, ask));
  EXPECT_TRUE(pool.check_invariants());
  if (!m) {
    return -1;
  }
  return static_cast<long>((m->tlb_addr - pool.start()) >> kSlotShift);
}

void unmap_slot(SlotPool& pool, long slot, std::uint64_t offset = 0, std::uint64_t min_align = 0) {
  auto info = pool.unmap(pool.start() + (static_cast<std::uint64_t>(slot) << kSlotShift) + offset,
                         min_align);
  ASSERT_TRUE(info) << info.error().message();
  ASSERT_TRUE(pool.check_invariants());
}

TEST(FastPolicy, IsRegistered) {
  auto policy = make_slot_policy("fast");
  ASSERT_TRUE(policy);
  EXPECT_EQ((*policy)->name(), "fast");
  EXPECT_NE(slot_policy_names().find("fast"), std::string_view::npos);
  EXPECT_EQ((*policy)->coherent_align_mask(3 * kPageSize),
            LinuxPolicy{}.coherent_align_mask(3 * kPageSize));
}

TEST(FastPolicy, FirstFitReusesTheLowestFreeRun) {
  auto pool = make_pool("fast-uncached", 256, 1);
  EXPECT_EQ(map_slot(*pool, {4096}), 0);
  EXPECT_EQ(map_slot(*pool, {4096}), 2);
  EXPECT_EQ(map_slot(*pool, {4096}), 4);
  unmap_slot(*pool, 2);
  EXPECT_EQ(map_slot(*pool, {512}), 2);   // the hole, not past the last mapping
  EXPECT_EQ(map_slot(*pool, {4096}), 6);  // slot 3 is free but not page-aligned
  EXPECT_EQ(map_slot(*pool, {512}), 3);
}

TEST(FastPolicy, PageAlignmentIsTestedOnTheAddress) {
  auto pool = make_pool("fast", 128, 1, 0x100800);
  EXPECT_EQ(map_slot(*pool, {4096}), 1);
  EXPECT_EQ(map_slot(*pool, {512}), 0);
}

TEST(FastPolicy, MinAlignKeepsTheLowBitsBelowAndAboveASlot) {
  auto pool = make_pool("fast", 128, 1);
  // 0xa00 under 0xfff: bit 0x800 set, so an odd slot, 0x200 into it.
  auto m = pool->map(request_for(*pool, {512, 0x12345a00, 0xfff}));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->tlb_addr.value(), kStart + 0xa00);
  // 0x2a00 under 0x3fff: the slot must supply bits 0x2800 as well: slot 5.
  m = pool->map(request_for(*pool, {512, 0x7772a00, 0x3fff}));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->tlb_addr.value(), kStart + 0x2a00);
  EXPECT_EQ(m->tlb_addr.value() & 0x3fff, 0x2a00u);
  unmap_slot(*pool, 5, 0x200, 0x3fff);
  unmap_slot(*pool, 1, 0x200, 0xfff);
  EXPECT_EQ(pool->used(), 0u);
}

TEST(FastPolicy, AllocAlignMaskAddsPadSlotsAsMainlineDoes) {
  auto pool = make_pool("fast", 128, 1);
  auto m = pool->map(request_for(*pool, {0x600, 0x12345a00, 0xfff, 0xfff}));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->tlb_addr.value(), kStart + 0xa00);  // one pad slot, then 0x200 into slot 1
  EXPECT_EQ(m->index.value(), 0u);
  EXPECT_EQ(m->nslots.value(), 2u);
  // A 16 KiB alignment: the next run starts at slot 8.
  m = pool->map(request_for(*pool, {512, 0, 0, 0x3fff}));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->tlb_addr.value(), kStart + 8 * kSlotSize);
  unmap_slot(*pool, 1, 0x200, 0xfff);
  unmap_slot(*pool, 8);
  EXPECT_EQ(pool->used(), 0u);
}

TEST(FastPolicy, RunsStayInsideASegment) {
  auto pool = make_pool("fast", 256, 1);
  EXPECT_EQ(map_slot(*pool, {120 * kSlotSize}), 0);
  EXPECT_EQ(map_slot(*pool, {12 * kSlotSize}), 128);  // 120..127 hold 8
  EXPECT_EQ(map_slot(*pool, {8 * kSlotSize}), 120);
  EXPECT_EQ(map_slot(*pool, {128 * kSlotSize + 1}), -1);
}

TEST(FastPolicy, RunsDoNotCrossTheDevicesSegmentBoundary) {
  auto pool = make_pool("fast", 128, 1);
  const std::uint64_t boundary = 0xffff;  // 32 slots
  EXPECT_EQ(map_slot(*pool, {30 * kSlotSize, 0, 0, 0, boundary}), 0);
  EXPECT_EQ(map_slot(*pool, {4 * kSlotSize, 0, 0, 0, boundary}), 32);  // 30..33 would cross
  EXPECT_EQ(map_slot(*pool, {2 * kSlotSize, 0, 0, 0, boundary}), 30);
  // The boundary is tested on the device's address: a pool seen at 8 KiB
  // past a boundary has its blocks end at slots 28, 60, ...
  auto shifted = make_pool("fast", 128, 1, 0x102000);
  EXPECT_EQ(map_slot(*shifted, {30 * kSlotSize, 0, 0, 0, boundary}), 28);
}

TEST(FastPolicy, StartsInTheAreaOfItsCpuAndMovesOn) {
  auto pool = make_pool("fast", 256, 2);
  EXPECT_EQ(map_slot(*pool, {128 * kSlotSize, 0x1000, 0, 0, ~std::uint64_t{0}, 0}), 0);
  EXPECT_EQ(map_slot(*pool, {512, 0x1000, 0, 0, ~std::uint64_t{0}, 0}), 128);
  EXPECT_EQ(map_slot(*pool, {512, 0x1000, 0, 0, ~std::uint64_t{0}, 3}), 129);
  auto stats = pool->stats();
  EXPECT_EQ(stats.areas[0].used, 128u);
  EXPECT_EQ(stats.areas[1].used, 2u);
}

TEST(FastPolicy, FullPoolFailsWithTheKernelsMessage) {
  auto pool = make_pool("fast", 128, 1);
  EXPECT_EQ(map_slot(*pool, {128 * kSlotSize}), 0);
  auto m = pool->map(request_for(*pool, {4096}));
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), Errc::pool_full);
  EXPECT_EQ(m.error().message(),
            "swiotlb buffer is full (sz: 4096 bytes), total 128 (slots), used 128 (slots)");
  EXPECT_EQ(pool->stats().failures, 1u);
}

TEST(FastPolicy, FindsTheOneRunLeftInANearlyFullPool) {
  auto pool = make_pool("fast", 1024, 1);
  for (long i = 0; i < 512; ++i) {
    ASSERT_EQ(map_slot(*pool, {4096}), 2 * i);
  }
  unmap_slot(*pool, 2 * 200);
  EXPECT_EQ(map_slot(*pool, {8192}), -1);
  EXPECT_EQ(map_slot(*pool, {4096, 0x40000800}), 400);  // min_align 0: orig's bits do not matter
  EXPECT_EQ(pool->used(), 1024u);
}

// ---- the oracle (tests/support/slot_oracle.h) ----------------------------

using oracle::run_fits;
using oracle::Shadow;

// The plan the pool makes for the request (SlotPool::make_plan).
SearchPlan plan_for(const SlotRequest& r) {
  return *oracle::plan_for(LinuxPolicy{}, r);
}

struct LiveRun {
  PhysAddr tlb;
  std::uint64_t min_align = 0;
  std::uint64_t first = 0;
  std::uint64_t nslots = 0;
};

std::uint64_t gen_mask(int max_bits) {
  return (std::uint64_t{1} << *rc::gen::inRange(0, max_bits + 1)) - 1;
}

// `few_sizes`: sizes from a short list, so that maps often ask for the
// length of a run just freed and the run cache serves them.
SlotRequest gen_request(const SlotPool& pool, std::uint64_t dma_start, bool few_sizes) {
  SlotRequest r;
  r.orig = PhysAddr(*rc::gen::element<int>(0, 1, 1, 1) == 0
                        ? 0
                        : *rc::gen::inRange<std::uint64_t>(1, std::uint64_t{1} << 36));
  r.mapping_size = few_sizes
                       ? *rc::gen::element<std::uint64_t>(512, 2048, 4096, 8192, 65536)
                       : *rc::gen::oneOf(rc::gen::inRange<std::uint64_t>(1, 4 * kPageSize + 1),
                                         rc::gen::inRange<std::uint64_t>(1, 2 * kSegmentBytes));
  if (few_sizes) {
    // Usually a device's usual settings, so that cached runs often fit.
    r.min_align_mask = *rc::gen::element<std::uint64_t>(0, 0, 0, 0xfff, gen_mask(14));
    r.alloc_align_mask = *rc::gen::element<std::uint64_t>(0, 0, 0, 0xfff);
    r.seg_boundary_mask = *rc::gen::element<std::uint64_t>(~std::uint64_t{0}, 0xffff);
    r.pool_dma_start = DmaAddr(dma_start);
    r.cpu = *rc::gen::inRange(0u, 8u);
    return r;
  }
  r.min_align_mask = *rc::gen::element<std::uint64_t>(0, 0, 0x7ff, 0xfff, 0x3fff, gen_mask(20));
  r.alloc_align_mask = *rc::gen::element<std::uint64_t>(0, 0, 0, 0xfff, gen_mask(20));
  r.seg_boundary_mask =
      *rc::gen::element<std::uint64_t>(~std::uint64_t{0}, ~std::uint64_t{0}, 0xffff, gen_mask(22));
  r.pool_dma_start = DmaAddr(dma_start);
  r.cpu = *rc::gen::inRange(0u, 8u);
  (void)pool;
  return r;
}

void map_against_oracle(SlotPool& pool, Shadow& shadow, std::vector<LiveRun>& live,
                        std::uint64_t dma_start, bool few_sizes) {
  const SlotRequest r = gen_request(pool, dma_start, few_sizes);
  const SearchPlan plan = plan_for(r);
  const std::optional<std::uint32_t> area = shadow.first_area_with_run(plan, r.cpu);
  Result<SlotMapping> m = pool.map(r);
  RC_ASSERT(m.has_value() == area.has_value());
  if (!m) {
    RC_ASSERT(m.error().code() == Errc::pool_full);
    return;
  }
  const std::uint64_t first = m->index.value();
  RC_ASSERT(m->area == *area);
  RC_ASSERT(m->nslots.value() == plan.nslots);
  RC_ASSERT(run_fits(plan, shadow.in_use, first));
  RC_ASSERT(m->tlb_addr ==
            pool.start() + ((first + plan.pad_slots) << kSlotShift) + plan.tlb_offset);
  if (r.orig.value() != 0 && (r.seg_boundary_mask & (r.min_align_mask | r.alloc_align_mask)) ==
                                 (r.min_align_mask | r.alloc_align_mask)) {
    const std::uint64_t dma_tlb = dma_start + (m->tlb_addr - pool.start());
    RC_ASSERT(((dma_tlb ^ r.orig.value()) & r.min_align_mask) == 0);
  }
  shadow.mark(first, plan.nslots, true);
  live.push_back({m->tlb_addr, r.min_align_mask, first, plan.nslots});
}

void unmap_one(SlotPool& pool, Shadow& shadow, std::vector<LiveRun>& live) {
  const auto at = *rc::gen::inRange<std::size_t>(0, live.size());
  const LiveRun run = live[at];
  live.erase(live.begin() + static_cast<std::ptrdiff_t>(at));
  Result<MappingInfo> info = pool.unmap(run.tlb, run.min_align);
  RC_ASSERT(info.has_value());
  RC_ASSERT(info->index.value() == run.first);
  RC_ASSERT(info->nslots.value() == run.nslots);
  shadow.mark(run.first, run.nslots, false);
}

// A pool of the policy named (see make_pool) against the oracle; the oracle
// knows nothing of the run cache: to it, an unmapped run is free.
void run_oracle(const std::string& policy, bool few_sizes) {
  Shadow shadow;
  shadow.areas = *rc::gen::element(1u, 2u, 4u);
  shadow.slots = shadow.areas * kSegmentSlots * *rc::gen::inRange<std::uint64_t>(1, 4);
  shadow.in_use.assign(shadow.slots, false);
  const std::uint64_t start = 0x100000 + *rc::gen::inRange<std::uint64_t>(0, 64) * kSlotSize;
  // Usually the device sees the pool where the CPU does; sometimes shifted,
  // sometimes not even slot-aligned (then no slot passes the alignment test).
  const std::uint64_t dma_start = *rc::gen::element<int>(0, 0, 1, 2) == 0
                                      ? start
                                      : start + *rc::gen::inRange<std::uint64_t>(0, 1u << 20) *
                                                    (*rc::gen::arbitrary<bool>() ? kSlotSize : 1);
  auto pool = make_pool(policy, shadow.slots, shadow.areas, start);
  RC_ASSERT(pool != nullptr);
  std::vector<LiveRun> live;
  const auto steps = *rc::gen::inRange(1, 300);
  for (int step = 0; step < steps; ++step) {
    if (live.empty() || *rc::gen::inRange(0, 10) < (few_sizes ? 5 : 7)) {
      map_against_oracle(*pool, shadow, live, dma_start, few_sizes);
    } else {
      unmap_one(*pool, shadow, live);
    }
    const Status ok = pool->check_invariants();
    RC_ASSERT_FALSE(!ok);
  }
  const PoolStats stats = pool->stats();
  RC_CLASSIFY(stats.cache_hits * 4 > stats.maps, "run cache served over a quarter of the maps");
}

RC_GTEST_PROP(FastPolicyOracle, FindsARunWheneverOneExists, ()) {
  run_oracle("fast", false);
}

RC_GTEST_PROP(FastPolicyOracle, FindsARunWheneverOneExistsWithoutTheRunCache, ()) {
  run_oracle("fast-uncached", false);
}

// Few sizes: most maps are served by the run cache, each checked against
// the same rules as a search's run (alignment, kept bits, boundary,
// segment), and the cache is drained whenever a search needs its runs.
RC_GTEST_PROP(FastPolicyOracle, RunsFromTheCacheKeepEveryRule, ()) {
  run_oracle("fast", true);
}

}  // namespace
}  // namespace swiotlb
