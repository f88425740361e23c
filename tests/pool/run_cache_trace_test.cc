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
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "swiotlb/pool/fast_policy.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kPoolStart = 0x79b31000;
constexpr std::uint64_t kNvmeMinAlign = 0xfff;

struct Event {
  bool map = false;
  std::uint64_t orig = 0;
  std::uint64_t size = 0;
  std::uint64_t align = 0;
  std::uint64_t tlb = 0;  // as the kernel recorded it: names the mapping
};

std::vector<Event> read_trace() {
  std::ifstream in(std::string(SWIOTLB_TEST_DATA) + "/linux-6.1-nvme-randrw-256k-qd32.trace");
  EXPECT_TRUE(in.is_open());
  std::vector<Event> events;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::istringstream fields(line);
    std::string op, t_ns, cpu, dev;
    fields >> op >> t_ns >> cpu >> dev;
    Event e;
    if (op == "map") {
      std::string orig, mapping_size, alloc_size, align, dir, attrs, tlb;
      fields >> orig >> mapping_size >> alloc_size >> align >> dir >> attrs >> tlb;
      e = {true, std::stoull(orig, nullptr, 0), std::stoull(mapping_size, nullptr, 0),
           std::stoull(align, nullptr, 0), std::stoull(tlb, nullptr, 0)};
    } else if (op == "unmap") {
      std::string tlb;
      fields >> tlb;
      e.tlb = std::stoull(tlb, nullptr, 0);
    } else {
      continue;
    }
    events.push_back(e);
  }
  return events;
}

// The trace's maps with each unmap held back until `depth` more maps have
// been made: the same requests, more of them live at once. Mappings are
// named by their position, since recorded addresses repeat.
std::vector<Event> deepen(const std::vector<Event>& trace, std::size_t depth) {
  std::vector<Event> out;
  std::deque<std::uint64_t> live;
  std::uint64_t name = 0;
  for (const Event& e : trace) {
    if (!e.map) {
      continue;
    }
    Event m = e;
    m.tlb = ++name;
    out.push_back(m);
    live.push_back(m.tlb);
    if (live.size() > depth) {
      out.push_back({false, 0, 0, 0, live.front()});
      live.pop_front();
    }
  }
  for (std::uint64_t tlb : live) {
    out.push_back({false, 0, 0, 0, tlb});
  }
  return out;
}

// Replays `events` into a `fast` pool of `slots` slots; for each map,
// whether it was served.
std::vector<bool> replay(const std::vector<Event>& events, std::uint64_t slots, bool magazines,
                         PoolStats& stats) {
  auto made =
      SlotPool::create({PhysAddr(kPoolStart), slots, 1}, std::make_shared<FastPolicy>(magazines));
  EXPECT_TRUE(made);
  SlotPool& pool = **made;
  std::vector<bool> served;
  std::map<std::uint64_t, PhysAddr> live;  // recorded name -> our address
  for (const Event& e : events) {
    if (e.map) {
      SlotRequest r;
      r.orig = PhysAddr(e.orig);
      r.mapping_size = e.size;
      r.alloc_align_mask = e.align;
      r.min_align_mask = kNvmeMinAlign;
      r.seg_boundary_mask = 0xffffffff;
      r.pool_dma_start = DmaAddr(kPoolStart);
      Result<SlotMapping> m = pool.map(r);
      served.push_back(m.has_value());
      if (!m && pool.cached() != 0) {
        // Runs left in the cache (of areas too full to search): with them
        // all free, the map still finds no room.
        pool.drain_cache();
        EXPECT_FALSE(pool.map(r)) << "a map failed for want of slots parked in the cache";
      }
      if (m) {
        live[e.tlb] = m->tlb_addr;
      }
    } else if (auto it = live.find(e.tlb); it != live.end()) {
      EXPECT_TRUE(pool.unmap(it->second, kNvmeMinAlign));
      live.erase(it);
    }
  }
  EXPECT_TRUE(pool.check_invariants());
  EXPECT_EQ(pool.used(), 0u);
  pool.drain_cache();
  EXPECT_EQ(pool.largest_free_run(), 128u);
  stats = pool.stats();
  return served;
}

void expect_no_map_lost(const std::vector<Event>& events, std::uint64_t slots) {
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
  const std::vector<Event> trace = read_trace();
  ASSERT_EQ(trace.size(), 564u);
  for (std::uint64_t slots : {8192u, 1024u, 256u, 128u}) {
    expect_no_map_lost(trace, slots);
  }
}

TEST(RunCacheTrace, DeeperQueuesFailNoMoreMaps) {
  const std::vector<Event> trace = read_trace();
  for (std::size_t depth : {8u, 32u, 128u}) {
    const std::vector<Event> deep = deepen(trace, depth);
    for (std::uint64_t slots : {8192u, 2048u, 512u, 256u}) {
      expect_no_map_lost(deep, slots);
    }
  }
}

}  // namespace
}  // namespace swiotlb
