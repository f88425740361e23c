// Dynamic replay: the recorded 6.1 trace through a default pool too small
// for it, so that pools grow; a limit that stops growth; shrink; and a
// hand-made trace whose every search is worked out by hand.
#include "swiotlb/sim/dynamic_replay.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/backend.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/sim/report_json.h"
#include "swiotlb/sim/trace_parser.h"

namespace swiotlb::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kSample =
    std::string(SWIOTLB_TEST_DATA) + "/linux-6.1-nvme-randrw-256k-qd32.trace";

DynamicReplayReport replay_or_die(const Trace& trace, const DynamicReplayOptions& options) {
  Result<DynamicReplayReport> report = replay_dynamic(trace, options);
  EXPECT_TRUE(report) << report.error().message();
  return report ? std::move(*report) : DynamicReplayReport{};
}

Trace sample() {
  Result<Trace> trace = load_trace(kSample);
  EXPECT_TRUE(trace) << trace.error().message();
  return trace ? std::move(*trace) : Trace{};
}

DynamicReplayOptions small_default(DynamicOrder order) {
  DynamicReplayOptions options;
  options.nslabs = 1024;  // a quarter of the trace's peak demand (3970 slots)
  options.order = order;
  return options;
}

std::uint64_t maps_in_pools(const DynamicReplayReport& r) {
  std::uint64_t maps = 0;
  for (const DynamicPoolReport& pool : r.pools) {
    maps += pool.maps;
  }
  return maps;
}

void expect_all_served_and_freed(const DynamicReplayReport& r) {
  EXPECT_EQ(r.maps, 282u);
  EXPECT_EQ(r.unmaps, 282u);
  EXPECT_EQ(r.failures, 0u);
  EXPECT_EQ(r.would_spin, 0u);
  EXPECT_EQ(r.rejected, 0u);
  EXPECT_EQ(r.unmatched_unmaps, 0u);
  EXPECT_EQ(r.unmaps_of_failed_maps, 0u);
  EXPECT_EQ(r.lost_unmaps, 0u);
  EXPECT_EQ(r.final_used_slots, 0u);
  EXPECT_EQ(r.transient_pools_final, 0u);
  EXPECT_EQ(r.transient_slots_final, 0u);
  // Every map landed in a listed pool or a transient one.
  EXPECT_EQ(maps_in_pools(r) + r.transient_pools, r.maps);
  for (const DynamicPoolReport& pool : r.pools) {
    EXPECT_EQ(pool.used_slots, 0u);
  }
}

TEST(DynamicReplay, SampleGrowsFromASmallDefaultPool) {
  const DynamicReplayReport r = replay_or_die(sample(), small_default(DynamicOrder::kernel));
  EXPECT_EQ(r.policy, "linux");  // dynamic pools are mainline's, whatever the trace's kernel
  EXPECT_EQ(r.nslabs, 1024u);
  EXPECT_EQ(r.max_nslabs, 16u * 1024u);
  expect_all_served_and_freed(r);
  EXPECT_GT(r.pools_grown, 0u);
  EXPECT_EQ(r.growth_refused, 0u);
  // A pool is grown for each map that found no room, one event later.
  EXPECT_EQ(r.pools_grown, r.maps_without_room);
  EXPECT_EQ(r.transient_pools, r.maps_without_room);
  EXPECT_EQ(r.pools.size(), 1 + r.pools_grown);
  EXPECT_EQ(r.grown_pools_final, r.pools_grown);  // the kernel never gives one back
  EXPECT_EQ(r.pools_given_back, 0u);
  EXPECT_EQ(r.total_slots_final, 1024 + 2048 * r.pools_grown);
  EXPECT_EQ(r.total_slots_peak, r.total_slots_final);
  EXPECT_GE(r.total_slots_peak, r.hiwater_slots - r.transient_slots_peak);
  EXPECT_GE(r.hiwater_slots, 3970u);  // the peak demand under `linux`
  EXPECT_EQ(r.final_bytes, r.total_slots_final << 11);
  EXPECT_EQ(r.pools[0].kind, DynamicPoolKind::default_pool);
  EXPECT_EQ(r.pools[0].start, r.start);  // where the trace's pool was
  for (std::size_t i = 1; i < r.pools.size(); ++i) {
    EXPECT_EQ(r.pools[i].kind, DynamicPoolKind::grown);
    EXPECT_EQ(r.pools[i].nslabs, 2048u);
    // Non-overlapping, above the default pool, in the order grown.
    EXPECT_GE(r.pools[i].start, r.pools[i - 1].start + (r.pools[i - 1].nslabs << 11));
    EXPECT_GT(r.pools[i].added_at_event, r.pools[i - 1].added_at_event);
  }
}

TEST(DynamicReplay, NoGrowthAtTheMaximumButTransientPools) {
  DynamicReplayOptions options = small_default(DynamicOrder::kernel);
  options.max_nslabs = 1024;
  const DynamicReplayReport r = replay_or_die(sample(), options);
  expect_all_served_and_freed(r);
  EXPECT_EQ(r.pools_grown, 0u);
  EXPECT_EQ(r.pools.size(), 1u);
  EXPECT_GT(r.maps_without_room, 0u);
  EXPECT_EQ(r.growth_refused, r.maps_without_room);
  EXPECT_EQ(r.transient_pools, r.maps_without_room);
  EXPECT_GT(r.transient_slots_peak, 0u);
  EXPECT_EQ(r.total_slots_peak, 1024u);
  EXPECT_EQ(r.peak_bytes, (1024 + r.transient_slots_peak) << 11);
  EXPECT_EQ(r.final_bytes, 1024u << 11);
}

TEST(DynamicReplay, OldestFirstWithShrinkGivesPoolsBack) {
  const DynamicReplayReport kernel = replay_or_die(sample(), small_default(DynamicOrder::kernel));
  DynamicReplayOptions options = small_default(DynamicOrder::oldest);
  // The trace is a steady queue depth of 32 to its end: a pool is idle only
  // for a few events at a time.
  options.shrink_after = 4;
  const DynamicReplayReport oldest = replay_or_die(sample(), options);
  expect_all_served_and_freed(oldest);
  EXPECT_EQ(oldest.order, DynamicOrder::oldest);
  EXPECT_GT(oldest.pools_given_back, 0u);
  EXPECT_LT(oldest.grown_pools_final, kernel.grown_pools_final);
  EXPECT_LT(oldest.final_bytes, kernel.final_bytes);
  EXPECT_EQ(oldest.grown_pools_final + oldest.pools_given_back, oldest.pools_grown);
  std::uint64_t given_back = 0;
  for (const DynamicPoolReport& pool : oldest.pools) {
    if (pool.given_back_at_event) {
      ++given_back;
      EXPECT_EQ(pool.kind, DynamicPoolKind::grown);
      EXPECT_GE(*pool.given_back_at_event, pool.added_at_event + 4);
    }
  }
  EXPECT_EQ(given_back, oldest.pools_given_back);
}

TEST(DynamicReplay, ADefaultPoolLargeEnoughNeverGrows) {
  DynamicReplayOptions options;  // the trace's 8192 slots
  const DynamicReplayReport r = replay_or_die(sample(), options);
  expect_all_served_and_freed(r);
  EXPECT_EQ(r.nslabs, 8192u);
  EXPECT_EQ(r.pools_grown, 0u);
  EXPECT_EQ(r.transient_pools, 0u);
  EXPECT_EQ(r.maps_without_room, 0u);
}

// A default pool of two one-segment areas at 0x100000 and grown pools of the
// same size (so also two areas). Worked by hand (`T` a transient pool):
//  line 5 (cpu 0, a segment): area 0 of the default pool fills.
//  line 6 (cpu 1, a segment): area 1 fills.
//  line 7 (cpu 0, a page): both areas full -> a transient pool at 0x180000
//          (the next 256 KiB boundary above the default pool); growth asked.
//  line 8 (cpu 1, a page): pool 1 was grown before it, at 0x200000 (512 KiB
//          aligned, above the transient pool). kernel: pool 1 area 1 first.
//          oldest: the default pool's areas 1, 0 first.
//  line 9: unmaps line 5, so default area 0 is free again.
//  line 10 (cpu 1, a segment): kernel: area offset 0 in every pool newest
//          first (pool 1 area 1 has 2 slots taken: no; pool 0 area 1: no),
//          then offset 1 (pool 1 area 0: yes). oldest: pool 0 area 1, no;
//          area 0, yes.
constexpr const char* kHandMade =
    "# swiotlb-trace v1\n"
    "# kernel 6.6.0-test\n"
    "# pool default start=0x100000 nslabs=256 nareas=2\n"
    "# device d0 min_align_mask=0x0\n"
    "map - 0 d0 0x10000000 262144 - 0x0 1 0x0 -\n"
    "map - 1 d0 0x20000000 262144 - 0x0 1 0x0 -\n"
    "map - 0 d0 0x30000000 4096 - 0x0 1 0x0 -\n"
    "map - 1 d0 0x40000000 4096 - 0x0 1 0x0 -\n"
    "unmap - 0 d0 0x10000000 262144 1 0x0\n"
    "map - 1 d0 0x50000000 262144 - 0x0 1 0x0 -\n"
    "unmap - 0 d0 0x20000000 262144 1 0x0\n"
    "unmap - 0 d0 0x30000000 4096 1 0x0\n"
    "unmap - 0 d0 0x40000000 4096 1 0x0\n"
    "unmap - 0 d0 0x50000000 262144 1 0x0\n";

struct Tried {
  std::uint32_t line;
  std::uint32_t pool;
  std::uint32_t area;
  bool found;
  bool operator==(const Tried&) const = default;
  friend std::ostream& operator<<(std::ostream& out, const Tried& t) {
    return out << "{line " << t.line << ", pool "
               << (t.pool == kTransientPool ? std::string("T") : std::to_string(t.pool))
               << ", area " << t.area << (t.found ? ", found}" : ", full}");
  }
};

std::vector<Tried> tried_in(DynamicOrder order, DynamicReplayReport* out = nullptr) {
  Result<Trace> trace = parse_trace(kHandMade);
  EXPECT_TRUE(trace) << trace.error().message();
  std::vector<Tried> tried;
  DynamicReplayOptions options;
  options.grow_nslabs = 256;
  options.order = order;
  options.on_attempt = [&tried](const DynamicAttempt& a) {
    tried.push_back({a.line, a.pool, a.area, a.found});
  };
  DynamicReplayReport r = replay_or_die(*trace, options);
  if (out != nullptr) {
    *out = std::move(r);
  }
  return tried;
}

constexpr std::uint32_t T = kTransientPool;

TEST(DynamicReplay, KernelOrderNewestFirstAreasInterleaved) {
  DynamicReplayReport r;
  const std::vector<Tried> tried = tried_in(DynamicOrder::kernel, &r);
  EXPECT_THAT(tried,
              ElementsAre(Tried{5, 0, 0, true}, Tried{6, 0, 1, true}, Tried{7, 0, 0, false},
                          Tried{7, 0, 1, false}, Tried{7, T, 0, true}, Tried{8, 1, 1, true},
                          Tried{10, 1, 1, false}, Tried{10, 0, 1, false}, Tried{10, 1, 0, true}));
  EXPECT_EQ(r.failures, 0u);
  EXPECT_EQ(r.final_used_slots, 0u);
  EXPECT_EQ(r.transient_pools, 1u);
  // A page and its slack, in whole pages: 4 slots (the kernel's nr_slots
  // would be 2; docs/growth.md).
  EXPECT_EQ(r.transient_slots_peak, 4u);
  EXPECT_EQ(r.transient_pools_final, 0u);
  ASSERT_EQ(r.pools.size(), 2u);
  EXPECT_EQ(r.pools[1].start, 0x200000u);
  EXPECT_EQ(r.pools[1].nareas, 2u);
  EXPECT_EQ(r.pools[1].added_at_event, 3u);  // before the 4th event, line 8
  EXPECT_EQ(r.pools[1].maps, 2u);
  EXPECT_EQ(r.pools[0].maps, 2u);
  EXPECT_EQ(r.hiwater_slots, 260u);  // after line 8, and again after line 10
}

TEST(DynamicReplay, OldestOrderDefaultFirstPoolsWhole) {
  DynamicReplayReport r;
  const std::vector<Tried> tried = tried_in(DynamicOrder::oldest, &r);
  EXPECT_THAT(tried, ElementsAre(Tried{5, 0, 0, true}, Tried{6, 0, 1, true}, Tried{7, 0, 0, false},
                                 Tried{7, 0, 1, false}, Tried{7, T, 0, true}, Tried{8, 0, 1, false},
                                 Tried{8, 0, 0, false}, Tried{8, 1, 1, true},
                                 Tried{10, 0, 1, false}, Tried{10, 0, 0, true}));
  EXPECT_EQ(r.pools[0].maps, 3u);
  EXPECT_EQ(r.pools[1].maps, 1u);
  EXPECT_EQ(r.final_used_slots, 0u);
}

TEST(DynamicReplay, ShrinkGivesBackAnIdleGrownPool) {
  Result<Trace> trace = parse_trace(kHandMade);
  ASSERT_TRUE(trace) << trace.error().message();
  DynamicReplayOptions options;
  options.grow_nslabs = 256;
  options.order = DynamicOrder::oldest;
  options.shrink_after = 2;
  const DynamicReplayReport r = replay_or_die(*trace, options);
  // Pool 1's only mapping (line 8) is unmapped by event 8 (line 13); one
  // event follows, too few to see the pool idle for two.
  EXPECT_EQ(r.pools_given_back, 0u);
  EXPECT_EQ(r.grown_pools_final, 1u);

  std::string text = kHandMade;
  text += "sync_cpu - 0 d0 0x50000000 64 2\n";  // an event after the last unmap
  Result<Trace> longer = parse_trace(text);
  ASSERT_TRUE(longer) << longer.error().message();
  const DynamicReplayReport shrunk = replay_or_die(*longer, options);
  EXPECT_EQ(shrunk.pools_given_back, 1u);
  EXPECT_EQ(shrunk.grown_pools_final, 0u);
  EXPECT_EQ(shrunk.grown_pools_peak, 1u);
  EXPECT_EQ(shrunk.total_slots_final, 256u);
  EXPECT_EQ(shrunk.total_slots_peak, 512u);
  EXPECT_EQ(shrunk.pools[1].given_back_at_event, 10u);
  EXPECT_EQ(shrunk.pools[1].maps, 1u);
  EXPECT_EQ(shrunk.final_used_slots, 0u);
}

TEST(DynamicReplay, MapLargerThanASegmentFailsWithoutGrowth) {
  Result<Trace> trace = parse_trace(
      "# swiotlb-trace v1\n"
      "# pool default start=0x100000 nslabs=256 nareas=1\n"
      "# device d0 min_align_mask=0x0\n"
      "map - 0 d0 0x9000 300000 - 0x0 1 0x0 0xffffffffffffffff\n"
      "map - 0 d0 0xa000 4096 - 0x0 1 0x0 -\n");
  ASSERT_TRUE(trace) << trace.error().message();
  const DynamicReplayReport r = replay_or_die(*trace, {});
  EXPECT_EQ(r.failures, 1u);
  ASSERT_EQ(r.first_failures.size(), 1u);
  EXPECT_EQ(r.first_failures[0].line, 4u);
  EXPECT_EQ(r.kernel_failed_also_here, 1u);
  EXPECT_EQ(r.maps_without_room, 0u);
  EXPECT_EQ(r.pools_grown, 0u);
  EXPECT_EQ(r.transient_pools, 0u);
  EXPECT_EQ(r.final_used_slots, 2u);  // line 5 is never unmapped
}

TEST(DynamicReplay, BadOptionsAreErrors) {
  Result<Trace> trace = parse_trace(kHandMade);
  ASSERT_TRUE(trace);
  DynamicReplayOptions options;
  options.grow_nslabs = 100;
  Result<DynamicReplayReport> r = replay_dynamic(*trace, options);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("multiple of 128"));
  options = {};
  options.shrink_after = 0;
  EXPECT_FALSE(replay_dynamic(*trace, options));
  options = {};
  options.policy = "bogus";
  EXPECT_FALSE(replay_dynamic(*trace, options));
  EXPECT_EQ(parse_dynamic_order("kernel").value(), DynamicOrder::kernel);
  EXPECT_EQ(parse_dynamic_order("oldest").value(), DynamicOrder::oldest);
  EXPECT_FALSE(parse_dynamic_order("newest"));
}

TEST(DynamicReplay, FileFormAndJson) {
  DynamicReplayOptions options = small_default(DynamicOrder::kernel);
  Result<DynamicReplayReport> r = replay_dynamic_file(kSample, {}, options);
  ASSERT_TRUE(r) << r.error().message();
  const DynamicReplayReport direct = replay_or_die(sample(), options);
  EXPECT_EQ(r->pools_grown, direct.pools_grown);
  EXPECT_EQ(r->hiwater_slots, direct.hiwater_slots);
  const nlohmann::json j = to_json(*r);
  EXPECT_EQ(j["dynamic"], true);
  EXPECT_EQ(j["order"], "kernel");
  EXPECT_EQ(j["failures"], 0);
  EXPECT_EQ(j["pools"].size(), 1 + r->pools_grown);
  EXPECT_EQ(j["pools"][0]["kind"], "default");
  EXPECT_TRUE(j["pools"][0]["given_back_at_event"].is_null());
  EXPECT_TRUE(j["shrink_after"].is_null());
  for (const char* key :
       {"maps_without_room", "pools_grown", "growth_refused", "pools_given_back",
        "grown_pools_final", "grown_pools_peak", "total_slots_peak", "transient_pools",
        "transient_slots_peak", "final_bytes", "peak_bytes", "hiwater_slots", "final_used_slots"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
}

// The same events through the replay and through an IoTlb on the
// simulation backend driven by hand, with the same rules: the same growth,
// transient pools and refusals. A synthetic trace: bursts of segment-sized
// and page-sized maps on four CPUs that outgrow a small default pool, each
// burst unmapped before the next.
std::string synthetic_trace() {
  std::string text =
      "# swiotlb-trace v1\n"
      "# kernel 6.6.0-synthetic\n"
      "# pool default start=0x40000000 nslabs=512 nareas=2\n"
      "# device d0 min_align_mask=0x0\n";
  std::uint64_t orig = 0x100000000;
  for (int burst = 0; burst < 6; ++burst) {
    std::vector<std::uint64_t> live;
    const int maps = 4 + burst * 3;
    for (int i = 0; i < maps; ++i) {
      const std::uint64_t size = (i % 3 == 0) ? 4096 : 65536 * (1 + i % 4);
      text += fmt::format("map - {} d0 {:#x} {} - 0x0 1 0x0 -\n", i % 4, orig, size);
      live.push_back(orig);
      live.push_back(size);
      orig += 0x100000;
    }
    if (burst == 2) {
      text += fmt::format("map - 0 d0 {:#x} 600000 - 0x0 1 0x0 -\n", orig);  // no pool holds it
      orig += 0x100000;
    }
    for (std::size_t i = 0; i < live.size(); i += 2) {
      text += fmt::format("unmap - 0 d0 {:#x} {} 1 0x0\n", live[i], live[i + 1]);
    }
  }
  return text;
}

struct Counts {
  std::uint64_t grown = 0;
  std::uint64_t transient = 0;
  std::uint64_t refused = 0;
  std::uint64_t hiwater = 0;
};

Counts drive_directly(const Trace& trace, PoolSearchOrder order) {
  auto backend = std::make_shared<SimulationBackend>(trace.pool->start);
  IoTlbOptions options;
  options.nslabs = trace.pool->nslabs;
  options.nareas = trace.pool->nareas;
  options.policy = "linux";
  options.backend = backend;
  options.search_order = order;
  options.growth = {.enabled = true,
                    .pool_nslabs = kDefaultGrowNslabs,
                    .pool_nareas = trace.pool->nareas,
                    .watermark_percent = 100};
  options.transient = true;
  auto made = IoTlb::create(options);
  EXPECT_TRUE(made) << made.error().message();
  if (!made) {
    return {};
  }
  IoTlb& tlb = **made;
  std::map<std::uint64_t, std::pair<PhysAddr, TraceEvent>> live;
  Counts counts;
  for (const TraceEvent& e : trace.events) {
    tlb.run_maintenance();
    if (e.op == TraceOp::map) {
      BounceRequest r;
      r.orig = PhysAddr(e.orig);
      r.size = e.size;
      r.pool_dma_start = DmaAddr(tlb.start().value());
      r.dir = e.dir;
      r.attrs = Attr::no_warn;
      r.owner = e.device;
      r.cpu = e.cpu;
      Result<PhysAddr> mapped = tlb.map(r);
      if (mapped) {
        live[e.orig] = {*mapped, e};
      } else {
        ++counts.refused;
      }
    } else if (e.op == TraceOp::unmap) {
      const auto it = live.find(e.tlb);  // the trace names a mapping by its original
      if (it != live.end()) {
        const TraceEvent& m = it->second.second;
        EXPECT_TRUE(tlb.unmap(it->second.first, 0, {m.size, m.dir, m.device}, Attr::skip_cpu_sync));
        live.erase(it);
      }
    }
    backend->advance();
    EXPECT_TRUE(tlb.check_invariants());
  }
  const IoTlbStats s = tlb.stats();
  counts.grown = s.growth.grow_events;
  counts.transient = s.growth.transient_pools_total;
  counts.hiwater = tlb.hiwater();
  return counts;
}

TEST(DynamicReplay, TheReplayIsTheLibraryOnTheSameEvents) {
  Result<Trace> trace = parse_trace(synthetic_trace());
  ASSERT_TRUE(trace) << trace.error().message();
  for (DynamicOrder order : {DynamicOrder::kernel, DynamicOrder::oldest}) {
    DynamicReplayOptions options;
    options.order = order;
    const DynamicReplayReport r = replay_or_die(*trace, options);
    const Counts direct =
        drive_directly(*trace, order == DynamicOrder::kernel ? PoolSearchOrder::kernel
                                                             : PoolSearchOrder::oldest_first);
    EXPECT_GT(r.pools_grown, 0u);
    EXPECT_GT(r.transient_pools, 0u);
    EXPECT_EQ(r.failures, 1u);  // the map no pool holds
    EXPECT_EQ(r.pools_grown, direct.grown) << to_string(order);
    EXPECT_EQ(r.transient_pools, direct.transient) << to_string(order);
    EXPECT_EQ(r.failures + r.would_spin + r.rejected, direct.refused) << to_string(order);
    EXPECT_EQ(r.hiwater_slots, direct.hiwater) << to_string(order);
    EXPECT_EQ(r.final_used_slots, 0u);
  }
}

}  // namespace
}  // namespace swiotlb::sim
