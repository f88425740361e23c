// Dynamic replay that follows a recorded kernel's pool events: the
// synthetic 6.12 trace in tests/data, whose every answer was worked out by
// hand from the kernel's rules (below), replayed map by map.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/sim/dynamic_replay.h"
#include "swiotlb/sim/trace_parser.h"
#include "swiotlb/sim/trace_writer.h"

namespace swiotlb::sim {
namespace {

using ::testing::ElementsAreArray;

const std::string kSynthetic =
    std::string(SWIOTLB_TEST_DATA) + "/linux-6.12-dynamic-synthetic.trace";

// The kernel's rules (6.12 kernel/dma/swiotlb.c) the answers come from:
//  - swiotlb_find_slots: for i = 0 .. default_nareas - 1 (here 4), every
//    pool newest first (the default pool last) that has more than i areas,
//    its area (cpu + i) & (nareas - 1); an area is skipped at once when
//    nslots > area_nslabs - used. Nothing found: schedule_work, then a
//    transient pool of exactly nr_slots(size) slots in one area, searched
//    once (swiotlb_search_pool_area at area 0, from slot 0); no room in it:
//    the pool is freed and the map fails.
//  - In an area: stride = (max(alloc_align_mask, iotlb_align_mask) >> 11)
//    + 1 where a map of a page or more with no masks gets alloc_align_mask
//    0xfff, alloc_align_mask |= 0x7ff and iotlb_align_mask = min_align_mask
//    & ~alloc_align_mask; a slot is skipped (+1) when its address has
//    alloc_align_mask bits or differs from orig in iotlb_align_mask bits;
//    an aligned slot is taken when list[slot] >= nslots, else +stride. The
//    area's index moves to the slot after the run (0 past the area's end).
//  - The bounce address is the slot's plus orig & min_align_mask & 0x7ff
//    (0 for every map here: no orig has bits in 0x7ff).
//  - inc_used_and_hiwater(nslots) for every slot run, transient ones too;
//    swiotlb_del_transient at the unmap takes the pool's nslabs back (the
//    same count); io_tlb_nslabs counts the default and grown pools only.
//
// The pools: default P0 at 0x1000000, 512 slots in 4 areas of 128 (area a
// starts at 0x1000000 + a * 0x40000); grown P1 at 0x2000000, the same
// shape; transient pools above 4 GiB. vda has min_align_mask 0, nvme 0xfff.
//
//  line 11-14 (cpus 0-3, 256 KiB = 128 slots, stride 2): each fills area
//          `cpu` of P0 from its slot 0: 0x1000000, 0x1040000, 0x1080000,
//          0x10c0000. used 512.
//  line 16 (cpu 0, a page = 2 slots): P0 areas 0, 1, 2, 3 are full ->
//          transient t1, 2 slots at 0x140000000 (line 15); slot 0 is page
//          aligned: 0x140000000. used 514.
//  line 17 (cpu 1, nvme, 64 KiB = 32 slots, orig 2 KiB into a page):
//          P0 areas 1, 2, 3, 0 full -> a transient pool of 32 slots, 64 KiB
//          aligned by the page allocator. iotlb_align_mask 0x800: slot 0
//          (bit clear) differs from orig (bit set); the odd slots match, but
//          slot 1 has 31 free slots to the pool's end, slot 3 has 29 ... ->
//          not found: the pool is freed and the map fails (all ones). No
//          pool_add for it. used 514.
//  line 18: the worker's pool P1 comes.
//  line 19 (cpu 2, 128 slots): i = 0: P1 area 2, empty: slot 256 of P1 =
//          0x2080000. used 642.
//  line 20 (cpu 2, 8 KiB = 4 slots, stride 2): i = 0: P1 area 2 full, P0
//          area 2 full; i = 1: P1 area 3: slot 384 = 0x20c0000. used 646.
//  line 21-22: the unmap of t1's map deletes t1 (used 644).
//  line 23: frees P0 area 0 (used 516).
//  line 24 (cpu 1, nvme, a page = 2 slots, orig ...800): alloc_align_mask
//          0x7ff (the page rule needs no min_align_mask), iotlb_align_mask
//          0x800, stride 2. P1 area 1 from index 0: slot 128 (0x2040000)
//          lacks bit 0x800 -> +1; slot 129 (0x2040800) matches, list 127:
//          0x2040800. The area's index moves to 3. used 518.
//  line 25 (cpu 0, 128 slots): P1 area 0 is empty and comes before P0
//          area 0 (free since line 23): 0x2000000. used 646.
//  line 26 (cpu 0, 128 slots): P1 area 0 full; P0 area 0, index 0:
//          0x1000000. used 774.
//  line 28 (cpu 3, 128 slots): i = 0: P1 area 3 (4 used), P0 area 3;
//          i = 1: P1 area 0, P0 area 0; i = 2: P1 area 1 (2 used), P0 area
//          1; i = 3: P1 area 2, P0 area 2: all too full -> transient t2, 128
//          slots at 0x140040000 (line 27), slot 0 aligned: 0x140040000. used
//          902, transient slots 128.
//  line 29 (cpu 1, 2 KiB = 1 slot, stride 1): P1 area 1 from its index 3:
//          slot 131 = 0x2041800. used 903: the high-water mark.
//  line 30-31: the unmap of t2's map deletes t2. used 775, transient 0.
struct Expected {
  std::uint32_t line;
  std::uint64_t tlb;
};
constexpr std::uint64_t kFailed = ~std::uint64_t{0};
const std::vector<Expected> kMaps = {
    {11, 0x1000000}, {12, 0x1040000},   {13, 0x1080000}, {14, 0x10c0000}, {16, 0x140000000},
    {17, kFailed},   {19, 0x2080000},   {20, 0x20c0000}, {24, 0x2040800}, {25, 0x2000000},
    {26, 0x1000000}, {28, 0x140040000}, {29, 0x2041800},
};

struct Tried {
  std::uint32_t line;
  std::uint32_t pool;  // 0: P0, 1: P1, T: transient
  std::uint32_t area;
  bool found;
  bool operator==(const Tried&) const = default;
  friend std::ostream& operator<<(std::ostream& out, const Tried& t) {
    return out << "{line " << t.line << ", pool "
               << (t.pool == kTransientPool ? std::string("T") : std::to_string(t.pool))
               << ", area " << t.area << (t.found ? ", found}" : ", full}");
  }
};
constexpr std::uint32_t T = kTransientPool;

// The searches of the walk-through above, in order.
const std::vector<Tried> kSearches = {
    {11, 0, 0, true},  {12, 0, 1, true},  {13, 0, 2, true},  {14, 0, 3, true},  {16, 0, 0, false},
    {16, 0, 1, false}, {16, 0, 2, false}, {16, 0, 3, false}, {16, T, 0, true},  {17, 0, 1, false},
    {17, 0, 2, false}, {17, 0, 3, false}, {17, 0, 0, false}, {17, T, 0, false}, {19, 1, 2, true},
    {20, 1, 2, false}, {20, 0, 2, false}, {20, 1, 3, true},  {24, 1, 1, true},  {25, 1, 0, true},
    {26, 1, 0, false}, {26, 0, 0, true},  {28, 1, 3, false}, {28, 0, 3, false}, {28, 1, 0, false},
    {28, 0, 0, false}, {28, 1, 1, false}, {28, 0, 1, false}, {28, 1, 2, false}, {28, 0, 2, false},
    {28, T, 0, true},  {29, 1, 1, true},
};

Trace synthetic() {
  Result<Trace> trace = load_trace(kSynthetic);
  EXPECT_TRUE(trace) << trace.error().message();
  return trace ? std::move(*trace) : Trace{};
}

TEST(DynamicFollow, TheTraceHoldsTheWorkedAnswers) {
  const Trace trace = synthetic();
  std::vector<Expected> recorded;
  for (const TraceEvent& e : trace.events) {
    if (e.op == TraceOp::map) {
      recorded.push_back({e.line, e.tlb});
    }
  }
  ASSERT_EQ(recorded.size(), kMaps.size());
  for (std::size_t i = 0; i < kMaps.size(); ++i) {
    EXPECT_EQ(recorded[i].line, kMaps[i].line);
    EXPECT_EQ(recorded[i].tlb, kMaps[i].tlb) << "line " << kMaps[i].line;
  }
  ASSERT_EQ(trace.pool_events.size(), 5u);
  const TracePoolEvent& grown = trace.pool_events[1];
  EXPECT_EQ(grown.op, TracePoolOp::add);
  EXPECT_EQ(grown.kind, TracePoolKind::grown);
  EXPECT_EQ(grown.name, "p1");
  EXPECT_FALSE(grown.cpu.has_value());
  EXPECT_EQ(grown.start, 0x2000000u);
  EXPECT_EQ(grown.nslabs, 512u);
  EXPECT_EQ(grown.nareas, 4u);
  EXPECT_EQ(grown.before_event, 6u);  // after the maps of lines 11-17
  EXPECT_EQ(grown.line, 18u);
  EXPECT_EQ(trace.pool_events[2].op, TracePoolOp::del);
  EXPECT_EQ(trace.pool_events[2].before_event, 9u);
}

TEST(DynamicFollow, EveryMapOnTheKernelsSlot) {
  std::vector<Tried> tried;
  DynamicReplayOptions options;
  options.on_attempt = [&tried](const DynamicAttempt& a) {
    tried.push_back({a.line, a.pool, a.area, a.found});
  };
  Result<DynamicReplayReport> report = replay_dynamic(synthetic(), options);
  ASSERT_TRUE(report) << report.error().message();
  const DynamicReplayReport& r = *report;
  EXPECT_TRUE(r.follows_pool_events);
  EXPECT_THAT(tried, ElementsAreArray(kSearches));
  ASSERT_TRUE(r.slot_agreement);
  EXPECT_EQ(r.slot_agreement->compared, kMaps.size());
  EXPECT_EQ(r.slot_agreement->matched, kMaps.size())
      << "first mismatch at line " << r.slot_agreement->first_mismatch_line.value_or(0);
  EXPECT_EQ(r.pool_events, 5u);
  EXPECT_EQ(r.pool_events_not_followed, 0u);
  // The kernel's counters at the end (the trace's comment).
  EXPECT_EQ(r.final_used_slots, 775u);
  EXPECT_EQ(r.hiwater_slots, 903u);
  EXPECT_EQ(r.transient_slots_final, 0u);
  EXPECT_EQ(r.transient_slots_peak, 128u);
  EXPECT_EQ(r.total_slots_final, 1024u);
  EXPECT_EQ(r.transient_pools, 2u);  // the failed one was freed before it counted
  EXPECT_EQ(r.failures, 1u);
  EXPECT_EQ(r.kernel_failed_also_here, 1u);
  ASSERT_EQ(r.pools.size(), 2u);
  EXPECT_EQ(r.pools[1].start, 0x2000000u);
  EXPECT_EQ(r.pools[1].nareas, 4u);
  EXPECT_EQ(r.pools[1].added_at_event, 6u);
  EXPECT_EQ(r.pools_grown, 1u);
}

// The streamed replay (a text past the streaming threshold, read on a second
// thread) sees the pool events at the same places.
TEST(DynamicFollow, StreamedTextFollowsTheSameWay) {
  const Trace trace = synthetic();
  std::string text = format_trace(trace);
  // Pad with comment lines past the size at which the text is streamed.
  std::string padding;
  while (padding.size() < (std::size_t{1} << 21)) {
    padding += "# padding to make the text long enough to stream\n";
  }
  const std::size_t first_event = text.find("\nmap ");
  text.insert(first_event + 1, padding);
  Result<DynamicReplayReport> report = replay_dynamic_text(text, {}, {});
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_TRUE(report->follows_pool_events);
  ASSERT_TRUE(report->slot_agreement);
  EXPECT_EQ(report->slot_agreement->matched, kMaps.size());
  EXPECT_EQ(report->hiwater_slots, 903u);
  EXPECT_EQ(report->final_used_slots, 775u);
}

// A pool event the replay cannot follow is counted, and the replay goes on:
// here the trace claims a transient pool for a map that finds room.
TEST(DynamicFollow, CountsPoolEventsItCannotFollow) {
  const std::string text =
      "# swiotlb-trace v1\n"
      "# pool default start=0x1000000 nslabs=128 nareas=1\n"
      "# device d min_align_mask=0x0\n"
      "pool_add - - t transient 0x140000000 1 1\n"
      "map - 0 d 0x10000000 2048 - 0x0 2 0x0 0x1000000\n"
      "pool_add - - g grown 0x2000000 128 1\n"
      "map - 0 d 0x10001000 2048 - 0x0 2 0x0 0x2000000\n"
      "pool_del - - g\n";
  Result<DynamicReplayReport> report = replay_dynamic_text(text, {}, {});
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_EQ(report->pool_events, 3u);
  // Line 4 (no transient pool was needed) and line 8 (the grown pool still
  // holds the map of line 7).
  EXPECT_EQ(report->pool_events_not_followed, 2u);
  EXPECT_EQ(report->first_pool_events_not_followed, (std::vector<std::uint32_t>{4, 8}));
  ASSERT_TRUE(report->slot_agreement);
  EXPECT_EQ(report->slot_agreement->compared, 2u);
  EXPECT_EQ(report->slot_agreement->matched, 2u);
}

// A grown pool deleted while empty goes, and later maps no longer find it.
TEST(DynamicFollow, DeletesAGrownPoolWhereTheTraceSays) {
  const std::string text =
      "# swiotlb-trace v1\n"
      "# pool default start=0x1000000 nslabs=128 nareas=1\n"
      "# device d min_align_mask=0x0\n"
      "pool_add - - g grown 0x2000000 128 1\n"
      "map - 0 d 0x10000000 2048 - 0x0 2 0x0 0x2000000\n"
      "unmap - 0 d 0x2000000 2048 2 0x0\n"
      "pool_del - - g\n"
      "map - 0 d 0x10001000 2048 - 0x0 2 0x0 0x1000000\n";
  Result<DynamicReplayReport> report = replay_dynamic_text(text, {}, {});
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_EQ(report->pool_events_not_followed, 0u);
  ASSERT_EQ(report->pools.size(), 2u);
  EXPECT_EQ(report->pools[1].given_back_at_event, 2u);
  EXPECT_EQ(report->pools_given_back, 1u);
  EXPECT_EQ(report->total_slots_final, 128u);
  ASSERT_TRUE(report->slot_agreement);
  EXPECT_EQ(report->slot_agreement->matched, 2u);
}

}  // namespace
}  // namespace swiotlb::sim
