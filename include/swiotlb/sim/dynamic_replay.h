// Replaying a trace with pools that grow: the kernel's dynamic swiotlb
// (CONFIG_SWIOTLB_DYNAMIC, Linux 6.6 and later) as the library runs it.
//
// The replay runs a real IoTlb on the simulation backend (iotlb/backend.h:
// synthetic addresses, no memory, no copies) and translates trace events
// into its calls; every rule of growth, transient pools, search order and
// shrink is IoTlb's, stated once in docs/growth.md with the kernel's rule
// beside it. What the replay adds:
//  - The default pool has the trace's geometry (or the options' overrides)
//    at the trace's address; grown pools have `grow_nslabs` slots and the
//    default pool's areas (cut so that each holds a segment).
//  - Before each event the IoTlb's maintenance runs (the growth a map asked
//    for, shrink, reclaim): the kernel grows on a workqueue, so a pool is
//    not there for the map that asked for it, and the soonest it could help
//    is the next event. The clock moves one tick per event, so shrink_after
//    counts events.
//  - Growth is asked for when a search fails, and (watermark_percent below
//    100) when the newest pool passes the watermark after a map.
//  - A map no pool has room for gets a transient pool (IoTlb's, in whole
//    pages); a map larger than a segment is refused with no growth.
//  - Pools live at synthetic, non-overlapping addresses above the default
//    pool, each aligned to its size rounded up to a power of two (as the
//    page allocator aligns its blocks), never reused.
//
// Search order (DynamicOrder, IoTlb's PoolSearchOrder):
//  - kernel: for each area offset, every pool newest first (the default
//    pool last) that has that many areas, in area (cpu + offset) & (nareas
//    - 1): swiotlb_find_slots since 6.12.
//  - oldest: the default pool first, then grown pools oldest first, each
//    pool's areas in turn from the CPU's (IoTlb's default).
//
// Following a recorded kernel: a trace with pool events (pool_add,
// pool_del; docs/trace-format.md) says where and when the kernel's pools
// came and went, and the replay then does exactly that instead of growing
// by the rules above (IoTlb growth by_caller):
//  - a grown pool_add adds a pool with the trace's start, nslabs and nareas
//    between the events where the trace has it; a grown pool_del removes
//    it (refused while it holds mappings);
//  - a transient pool_add names the address of the transient pool the next
//    map gets, if that map finds every pool full; the transient decision is
//    the kernel's (IoTlb TransientSize::exact_slots): a pool of exactly the
//    map's slots, one area, that fails the map when its first slot lacks
//    the alignment. A transient pool_del checks that the unmap before it
//    deleted the pool;
//  - every map whose kernel address the trace has is compared with it
//    (slot_agreement): the same bounce address, or a failure where the
//    kernel failed. Transient maps and failures count like any other.
// Pool events the replay could not follow (an overlap, a pool still in
// use, a transient pool the map did not need) are counted, and the replay
// goes on. A trace without pool events replays by the growth rules, and
// slot agreement is not measured (the pools are not the kernel's).
//
// Bookkeeping of kernel failures, lost and unmatched unmaps is replay.h's.
//
// The default policy is `linux` whatever the trace's kernel, since dynamic
// pools exist only in kernels from 6.6 on; `linux-6.1` may still be asked.
//
// Failure modes: fails only when no pool can be built (no geometry, an
// impossible geometry, an unknown policy, a grow_nslabs that is not a whole
// number of segments); the text and file forms also fail as parse_trace does.
//
// Thread safety: a replay only reads its Trace; replays may run at once.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/trace.h"
#include "swiotlb/sim/trace_parser.h"

namespace swiotlb::sim {

enum class DynamicOrder : std::uint8_t {
  kernel,  // newest grown pool first, default last, areas interleaved
  oldest,  // default first, then grown oldest first, a pool's areas together
};

SWIOTLB_API std::string_view to_string(DynamicOrder order);
// "kernel" or "oldest"; Errc::invalid_argument otherwise.
SWIOTLB_API Result<DynamicOrder> parse_dynamic_order(std::string_view name);

// The 4 MiB pool the kernel grows by.
inline constexpr std::uint64_t kDefaultGrowNslabs = 2048;

// Pool index of a transient pool in a DynamicAttempt.
inline constexpr std::uint32_t kTransientPool = ~std::uint32_t{0};

// One area of one pool that a map searched, in the order searched.
struct DynamicAttempt {
  std::uint32_t line = 0;  // the map's line in the trace
  std::uint32_t pool = 0;  // index into DynamicReplayReport::pools, or kTransientPool
  std::uint32_t area = 0;
  bool found = false;
};
using AttemptFn = std::function<void(const DynamicAttempt&)>;

struct DynamicReplayOptions {
  // "linux", "linux-6.1" or "fast"; empty: "linux" (see above).
  std::string policy;
  // Overrides of the trace's `# pool` line, for the default pool.
  std::optional<std::uint64_t> nslabs;
  std::optional<std::uint32_t> nareas;
  std::optional<std::uint64_t> start;
  // Slots per grown pool: a non-zero multiple of 128.
  std::uint64_t grow_nslabs = kDefaultGrowNslabs;
  // Default and grown slots together; empty: 16 times the default pool.
  std::optional<std::uint64_t> max_nslabs;
  DynamicOrder order = DynamicOrder::kernel;
  // Events a grown pool stays empty and untouched before it is given back;
  // empty: never (the kernel's behaviour).
  std::optional<std::uint64_t> shrink_after;
  // Growth is also asked for when the newest pool is more than this full
  // after a map (IoTlb's watermark); 100: only when a search fails, as the
  // kernel does.
  unsigned watermark_percent = 100;
  // How many failed maps and unmatched unmaps keep their line numbers.
  std::size_t failures_kept = 5;
  ProgressFn progress;
  // Called for every area a map searches (tests, explanations); may be empty.
  AttemptFn on_attempt;
};

enum class DynamicPoolKind : std::uint8_t { default_pool, grown };

SWIOTLB_API std::string_view to_string(DynamicPoolKind kind);

// A default or grown pool, given back or not. Transient pools are counted
// in the report, not listed.
struct DynamicPoolReport {
  DynamicPoolKind kind = DynamicPoolKind::default_pool;
  std::uint64_t start = 0;
  std::uint64_t nslabs = 0;
  std::uint32_t nareas = 1;
  std::uint64_t added_at_event = 0;  // events replayed before it was there
  std::optional<std::uint64_t> given_back_at_event;
  std::uint64_t maps = 0;           // maps it served
  std::uint64_t used_slots = 0;     // at the end
  std::uint64_t hiwater_slots = 0;  // most in use at once
};

struct DynamicReplayReport {
  std::string policy;
  DynamicOrder order = DynamicOrder::kernel;
  std::uint64_t nslabs = 0;  // the default pool
  std::uint32_t nareas = 0;
  std::uint64_t start = 0;
  std::uint64_t grow_nslabs = 0;
  std::uint64_t max_nslabs = 0;
  std::optional<std::uint64_t> shrink_after;

  std::uint64_t events = 0;
  std::uint64_t maps = 0;
  std::uint64_t unmaps = 0;
  std::uint64_t syncs = 0;

  // Maps that got no slots at all, not even a transient pool, by cause.
  std::uint64_t failures = 0;    // larger than a segment, or no room in a transient pool
  std::uint64_t would_spin = 0;  // the linux-6.1 model would hang in some pool
  std::uint64_t rejected = 0;    // sizes the policy refuses
  std::vector<FailedMap> first_failures;

  std::uint64_t kernel_failed_maps = 0;
  std::uint64_t kernel_failed_also_here = 0;
  std::uint64_t unmatched_unmaps = 0;
  std::vector<std::uint32_t> first_unmatched_lines;
  std::uint64_t unmaps_of_failed_maps = 0;
  std::uint64_t lost_unmaps = 0;

  // Growth.
  std::uint64_t maps_without_room = 0;  // maps no pool had room for: each asks for growth
  std::uint64_t pools_grown = 0;
  std::uint64_t growth_refused = 0;  // growth asked for at max_nslabs
  std::uint64_t pools_given_back = 0;
  std::uint64_t grown_pools_final = 0;
  std::uint64_t grown_pools_peak = 0;
  std::uint64_t total_slots_final = 0;  // default + grown
  std::uint64_t total_slots_peak = 0;

  // Transient pools, counted in the slots of their whole pages (when the
  // replay follows pool events: in their exact slots, as the kernel's
  // io_tlb_transient_nslabs).
  std::uint64_t transient_pools = 0;  // made in all
  std::uint64_t transient_pools_final = 0;
  std::uint64_t transient_slots_final = 0;
  std::uint64_t transient_slots_peak = 0;

  // Slots in use in all pools, transient ones included.
  std::uint64_t hiwater_slots = 0;
  std::uint64_t final_used_slots = 0;
  // Memory the pools hold: default, grown and transient slots, 2 KiB each.
  std::uint64_t final_bytes = 0;
  std::uint64_t peak_bytes = 0;

  std::vector<DynamicPoolReport> pools;  // default first, then grown in order

  // Whether pools came and went where the trace's pool events say (see
  // above); then the rest of this block is measured.
  bool follows_pool_events = false;
  std::optional<SlotAgreement> slot_agreement;
  std::uint64_t pool_events = 0;
  std::uint64_t pool_events_not_followed = 0;
  std::vector<std::uint32_t> first_pool_events_not_followed;  // their lines

  std::uint64_t bad_lines = 0;
  std::vector<BadLine> first_bad_lines;
};

SWIOTLB_API Result<DynamicReplayReport> replay_dynamic(const Trace& trace,
                                                       const DynamicReplayOptions& options);

// Parses `text` (trace v1) and replays it; large texts are parsed on a
// second thread, as replay_trace_text does.
SWIOTLB_API Result<DynamicReplayReport> replay_dynamic_text(std::string_view text,
                                                            const ParseOptions& parse,
                                                            const DynamicReplayOptions& options);

// Reads the file at `path` (mapped, not copied) and replays it.
SWIOTLB_API Result<DynamicReplayReport> replay_dynamic_file(const std::string& path,
                                                            const ParseOptions& parse,
                                                            const DynamicReplayOptions& options);

}  // namespace swiotlb::sim
