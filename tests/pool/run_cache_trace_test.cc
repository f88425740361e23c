// The `fast` run cache hides no slot from a map: the sample trace recorded
// on a Linux 6.1 kernel (tests/data/linux-6.1-nvme-randrw-256k-qd32.trace),
// and the same requests with more of them in flight at once, replayed into
// `fast` pools with and without the run cache, from the recorded size down
// to pools too small for the load. Whenever the pool with the cache fails
// a map, it fails it with the cache drained too (a search that fails
// drains it first), so the map failed for want of slots, not for slots
// parked in a magazine; and it
// fails no more maps in all than the pool without the cache. Map by map
// the two may differ either way, since they place runs differently (last
// freed against lowest free): the counts are printed. Both end with every
// slot free.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "swiotlb/ops/trace_ops.h"
#include "swiotlb/ops/trace_parser.h"
#include "swiotlb/pool/apply_op.h"
#include "swiotlb/pool/fast_policy.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kPoolStart = 0x79b31000;

// The sample trace's maps and unmaps (it has no syncs). A map's recorded
// address names the mapping its unmap gives back.
std::vector<ops::Op> read_trace() {
  Result<ops::Trace> trace =
      ops::load_trace(std::string(SWIOTLB_TEST_DATA) + "/linux-6.1-nvme-randrw-256k-qd32.trace");
  EXPECT_TRUE(trace) << trace.error().message();
  if (!trace) {
    return {};
  }
  std::vector<ops::Op> events;
  for (ops::Op& op : ops::ops_from_trace(*trace)) {
    if (std::holds_alternative<ops::Map>(op) || std::holds_alternative<ops::Unmap>(op)) {
      events.push_back(std::move(op));
    }
  }
  return events;
}

// The trace's maps with each unmap held back until `depth` more maps have
// been made: the same requests, more of them live at once. Mappings are
// named by their position, since recorded addresses repeat.
std::vector<ops::Op> deepen(const std::vector<ops::Op>& trace, std::size_t depth) {
  std::vector<ops::Op> out;
  std::deque<ops::Map> live;
  std::uint64_t name = 0;
  const auto unmap_of = [](const ops::Map& m) {
    return ops::Unmap{*m.recorded_tlb, m.size, m.min_align_mask, m.dir, 0};
  };
  for (const ops::Op& op : trace) {
    const ops::Map* map = std::get_if<ops::Map>(&op);
    if (map == nullptr) {
      continue;
    }
    ops::Map m = *map;
    m.recorded_tlb = ++name;
    out.emplace_back(m);
    live.push_back(m);
    if (live.size() > depth) {
      out.emplace_back(unmap_of(live.front()));
      live.pop_front();
    }
  }
  for (const ops::Map& m : live) {
    out.emplace_back(unmap_of(m));
  }
  return out;
}

// Replays `events` into a `fast` pool of `slots` slots; for each map,
// whether it was served.
std::vector<bool> replay(const std::vector<ops::Op>& events, std::uint64_t slots, bool magazines,
                         PoolStats& stats) {
  auto made =
      SlotPool::create({PhysAddr(kPoolStart), slots, 1}, std::make_shared<FastPolicy>(magazines));
  EXPECT_TRUE(made);
  SlotPool& pool = **made;
  std::vector<bool> served;
  std::map<std::uint64_t, std::uint64_t> live;  // recorded name -> our address
  for (const ops::Op& op : events) {
    if (const ops::Map* map = std::get_if<ops::Map>(&op)) {
      ops::Applied m = ops::apply(op, pool);
      served.push_back(m.has_value());
      if (!m && pool.cached() != 0) {
        // Runs left in the cache (of areas too full to search): with them
        // all free, the map still finds no room.
        pool.drain_cache();
        EXPECT_FALSE(ops::apply(op, pool)) << "a map failed for want of slots parked in the cache";
      }
      if (m) {
        live[*map->recorded_tlb] = *m;
      }
    } else if (const ops::Unmap* unmap = std::get_if<ops::Unmap>(&op)) {
      if (auto it = live.find(unmap->addr); it != live.end()) {
        ops::Unmap ours = *unmap;
        ours.addr = it->second;
        EXPECT_TRUE(ops::apply(ours, pool));
        live.erase(it);
      }
    }
  }
  EXPECT_TRUE(pool.check_invariants());
  EXPECT_EQ(pool.used(), 0u);
  pool.drain_cache();
  EXPECT_EQ(pool.largest_free_run(), 128u);
  stats = pool.stats();
  return served;
}

void expect_no_map_lost(const std::vector<ops::Op>& events, std::uint64_t slots) {
  PoolStats with{};
  PoolStats without{};
  const std::vector<bool> cached = replay(events, slots, true, with);
  const std::vector<bool> plain = replay(events, slots, false, without);
  ASSERT_EQ(cached.size(), plain.size());
  std::size_t only_plain = 0;
  std::size_t only_cached = 0;
  for (std::size_t i = 0; i < cached.size(); ++i) {
    only_plain += plain[i] && !cached[i] ? 1 : 0;
    only_cached += cached[i] && !plain[i] ? 1 : 0;
  }
  // (PoolStats::failures counts the retries above as well.)
  const auto failed_with =
      static_cast<std::size_t>(std::count(cached.begin(), cached.end(), false));
  const auto failed_without =
      static_cast<std::size_t>(std::count(plain.begin(), plain.end(), false));
  EXPECT_LE(failed_with, failed_without) << slots << " slots";
  std::printf(
      "%6llu slots, %zu maps: failed %zu with the run cache, %zu without; served by "
      "one only: %zu without, %zu with; %llu cache hits\n",
      static_cast<unsigned long long>(slots), cached.size(), failed_with, failed_without,
      only_plain, only_cached, static_cast<unsigned long long>(with.cache_hits));
  if (slots >= 1024) {
    EXPECT_GT(with.cache_hits, 0u);
  }
}

TEST(RunCacheTrace, TheSampleTraceFailsNoMoreMaps) {
  const std::vector<ops::Op> trace = read_trace();
  ASSERT_EQ(trace.size(), 564u);
  for (std::uint64_t slots : {8192u, 1024u, 256u, 128u}) {
    expect_no_map_lost(trace, slots);
  }
}

TEST(RunCacheTrace, DeeperQueuesFailNoMoreMaps) {
  const std::vector<ops::Op> trace = read_trace();
  for (std::size_t depth : {8u, 32u, 128u}) {
    const std::vector<ops::Op> deep = deepen(trace, depth);
    for (std::uint64_t slots : {8192u, 2048u, 512u, 256u}) {
      expect_no_map_lost(deep, slots);
    }
  }
}

}  // namespace
}  // namespace swiotlb
