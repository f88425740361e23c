// Replaying a trace through a SlotPool: which maps a pool of a given size
// and policy would have served, and whether it picks the kernel's slots.
//
// Every event runs through one SlotPool, accounting only: no data is copied
// and no memory backs the pool's addresses. The pool is built from the
// trace's `# pool` line, or from ReplayOptions where they say so.
//
// How events meet the pool:
//  - map: a SlotRequest from the event and its device's `# device` line
//    (min_align_mask, seg_boundary_mask); the pool's DMA start is its start.
//    The mapping is remembered under the kernel's address (the map's `tlb`)
//    or, when the trace did not record it, under the map's `orig`.
//  - unmap: looks its `tlb` up among the remembered mappings and unmaps ours.
//    An address that names no mapping is not an error: it is counted in
//    unmatched_unmaps (with its first lines), and the replay goes on.
//  - A map the kernel failed (tlb all ones) is replayed too. When this pool
//    serves it, the slots are given back at once, since the trace has no
//    unmap for it (the kernel's caller saw an error).
//  - A map at an address that is still live in the table means the trace
//    lost that mapping's unmap (trace_pipe drops events when its buffer
//    overflows): our old mapping is unmapped first and counted in lost_unmaps.
//  - sync_cpu, sync_dev: counted; they move no slots.
//
// Slot agreement is measured when the trace carries the kernel's addresses
// and the pool has the trace's geometry (same start, nslabs, nareas): a map
// agrees when it got the kernel's bounce address, or failed where the
// kernel failed. A trace that starts mid-stream is replayed from the state
// it shows (PoolStateReport); maps made while that state is not known are
// left out of the comparison and counted. Such a trace is replayed twice
// when its earlier mappings only show on the way (an unmap of an address
// never mapped): once to find them, once from the pool they leave.
//
// Failure modes: replay_trace fails only when no pool can be built (no
// `# pool` line and no geometry in the options, an impossible geometry, an
// unknown policy name). Failed maps are results, not errors. The text and
// file forms also fail as parse_trace does (trace_parser.h).
//
// Speed: replay_trace_text and replay_trace_file parse on a second thread,
// a few thousand events ahead of the replay, so that a large trace costs
// about the longer of its parse and its replay, not their sum, and its
// events are never all in memory at once.
//
// Thread safety: a replay only reads its Trace, so several replays (of one
// trace, under different options) may run at once on different threads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/sim/trace.h"
#include "swiotlb/sim/trace_parser.h"

namespace swiotlb::sim {

// The largest pool a replay models: 2^24 slots (32 GiB). The bookkeeping of
// a replay is tens of bytes per slot, so the library's own maximum (2^31)
// would ask for tens of GB; a larger pool (from the trace or an option) is
// refused with Errc::invalid_argument.
inline constexpr std::uint64_t kMaxReplaySlots = std::uint64_t{1} << 24;

// Called now and then during a replay (every few tens of thousands of
// events), from the replaying thread.
struct ReplayProgress {
  std::uint64_t events_done = 0;
  std::uint64_t events_total = 0;  // 0 when not known yet (streaming replay)
  double fraction = 0;             // of the work done, 0 to 1
};
using ProgressFn = std::function<void(const ReplayProgress&)>;

struct ReplayOptions {
  // "linux" or "linux-6.1"; empty: default_policy_for(trace).
  std::string policy;
  // Overrides of the trace's `# pool` line.
  std::optional<std::uint64_t> nslabs;
  std::optional<std::uint32_t> nareas;
  std::optional<std::uint64_t> start;
  // Stop at the first map this pool cannot serve (sizing needs no more).
  bool stop_at_first_failure = false;
  // How many failed maps and unmatched unmaps keep their line numbers.
  std::size_t failures_kept = 5;
  ProgressFn progress;
};

// A map the replayed pool did not serve.
struct FailedMap {
  std::uint32_t line = 0;
  std::uint64_t size = 0;  // the map's mapping_size
  Errc reason = Errc::pool_full;
};

struct SlotAgreement {
  std::uint64_t matched = 0;
  std::uint64_t compared = 0;
  std::optional<std::uint32_t> first_mismatch_line;
  // Maps not compared because the kernel pool's state was not known at
  // that point (PoolStateReport says why).
  std::uint64_t left_out = 0;
};

// What the replay knew of the kernel pool's state, for a trace that does
// not start from an empty pool (a capture started while devices were busy;
// docs/trace-format.md, "Replay of a mid-stream capture").
//
// Mappings made before the first event show as unmaps of addresses the
// trace never mapped: their bounce address and size say which slots they
// held, and the replay occupies those slots from the start. This is done
// only when `# state` lines say the pool was not empty (without them such
// an unmap is as likely an event the capture lost). `# state` lines
// set each area's search cursor (the first one that names the area) and
// are then checked against the replay's pool. A map is compared with the
// kernel only while the state is known: every area's cursor given, and the
// slots in use equal to the last recorded `total_used` and area `used`.
struct PoolStateReport {
  bool state_recorded = false;             // the trace has `# state` lines
  std::uint64_t earlier_mappings = 0;      // mappings inferred from before the first event
  std::uint64_t earlier_slots = 0;         // slots they held, occupied from the start
  std::uint64_t earlier_not_placed = 0;    // such unmaps whose slots could not be occupied
  std::uint64_t cursors_set = 0;           // area cursors taken from `# state` lines
  std::uint64_t state_values_checked = 0;  // later `# state` values compared with the replay
  std::uint64_t state_values_differing = 0;
  std::optional<std::uint32_t> first_differing_line;
  std::optional<std::uint32_t> known_from_line;  // the first map compared; none: never
  std::string unknown_reason;                    // why maps were left out; empty when none were
};

struct ReplayReport {
  std::string policy;
  std::uint64_t nslabs = 0;
  std::uint32_t nareas = 0;
  std::uint64_t start = 0;

  std::uint64_t events = 0;    // events replayed (all ops)
  std::uint64_t maps = 0;      // map events
  std::uint64_t unmaps = 0;    // unmap events
  std::uint64_t syncs = 0;     // sync_cpu and sync_dev events
  bool stopped_early = false;  // stop_at_first_failure cut the replay short

  std::uint64_t failures = 0;             // maps refused for want of slots (pool_full)
  std::uint64_t would_spin = 0;           // maps on which the modelled kernel would hang
  std::uint64_t rejected = 0;             // maps the policy refuses outright (bad sizes)
  std::vector<FailedMap> first_failures;  // of all three kinds, in line order

  std::uint64_t kernel_failed_maps = 0;       // maps the kernel failed
  std::uint64_t kernel_failed_also_here = 0;  // ... and this pool failed too

  std::uint64_t unmatched_unmaps = 0;  // unmaps of an address never mapped
  std::vector<std::uint32_t> first_unmatched_lines;
  std::uint64_t unmaps_of_failed_maps = 0;  // unmaps whose map failed here
  std::uint64_t lost_unmaps = 0;            // see the header comment

  std::uint64_t hiwater_slots = 0;
  std::uint64_t final_used_slots = 0;
  std::uint64_t largest_free_run_slots = 0;

  // Present when it could be measured; otherwise why not.
  std::optional<SlotAgreement> slot_agreement;
  std::string slot_agreement_unavailable;
  PoolStateReport pool_state;

  std::uint64_t bad_lines = 0;  // lines the parse skipped (ParseOptions::skip_bad)
  std::vector<BadLine> first_bad_lines;
};

SWIOTLB_API Result<ReplayReport> replay_trace(const Trace& trace, const ReplayOptions& options);

// Parses `text` (trace v1) and replays it; see "Speed" above.
SWIOTLB_API Result<ReplayReport> replay_trace_text(std::string_view text, const ParseOptions& parse,
                                                   const ReplayOptions& options);

// Reads the file at `path` (mapped, not copied) and replays it.
SWIOTLB_API Result<ReplayReport> replay_trace_file(const std::string& path,
                                                   const ParseOptions& parse,
                                                   const ReplayOptions& options);

}  // namespace swiotlb::sim
