// A replay recorded over time, for plots: slots in use after every event,
// failed maps, fragmentation, the pool's slots at its peak, and per-device
// totals.
//
// The replay itself follows replay.h (the same bookkeeping of lost unmaps,
// maps the kernel failed and unmatched unmaps) through one SlotPool; this
// file only watches it. Occupancy is exact at every event. Fragmentation
// (free runs) costs a scan of the pool, so it is measured at about
// `fragmentation_samples` evenly spaced events, the last event included.
// The slot map at the peak comes from a second replay that stops at the
// peak event, so watching costs no copy of the pool per new peak.
//
// "Free run" here is a maximal run of free slots, whatever the 128-slot
// segments: a map can use at most one segment of it, but how the free space
// is cut up is what fragmentation means.
//
// When the trace records the kernel's own answers (bounce addresses), the
// kernel's occupancy is rebuilt from them as well: the slots its live
// mappings held, counted with the policy's slot count for each map.
//
// Memory: four bytes per event per series (a 1 M-event trace costs 8 MB).
// Failure modes: those of replay_trace (no pool can be built).
// Thread safety: only reads its Trace; series may be built at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/sim/trace.h"

namespace swiotlb::sim {

struct SeriesOptions {
  // A slot policy name; empty: default_policy_for(trace).
  std::string policy;
  // Overrides of the trace's `# pool` line.
  std::optional<std::uint64_t> nslabs;
  std::optional<std::uint32_t> nareas;
  std::optional<std::uint64_t> start;
  // About how many events fragmentation is measured at (at least 1).
  std::size_t fragmentation_samples = 1000;
};

struct FragmentationSample {
  std::uint64_t event = 0;  // index of the event after which it was measured
  std::uint64_t used_slots = 0;
  std::uint64_t largest_free_run = 0;  // slots
  std::uint64_t free_runs = 0;
};

struct DeviceSeriesTotals {
  std::uint64_t maps = 0;
  std::uint64_t bytes = 0;       // mapping sizes of its maps
  std::uint64_t failures = 0;    // maps of it this pool failed (full or would spin)
  std::uint64_t peak_slots = 0;  // most slots its mappings held at once
};

struct ReplaySeries {
  std::string policy;
  std::uint64_t nslabs = 0;
  std::uint32_t nareas = 1;

  // Slots in use after each event, one entry per trace event.
  std::vector<std::uint32_t> used;
  // The kernel's own occupancy after each event, from its recorded answers;
  // empty when the trace does not record them.
  std::vector<std::uint32_t> kernel_used;
  // Events (indices into Trace::events) of maps this pool failed, and of
  // maps the kernel failed.
  std::vector<std::uint64_t> failed_events;
  std::vector<std::uint64_t> kernel_failed_events;
  std::vector<FragmentationSample> fragmentation;

  std::uint64_t peak_slots = 0;
  std::uint64_t peak_event = 0;  // the first event after which peak_slots were in use
  // Each slot at the peak: 0 when free, else 1 + the index in Trace::devices
  // of the device whose mapping held it.
  std::vector<std::uint16_t> owner_at_peak;
  // Each slot at the peak: the mapping size in bytes of the mapping that
  // held it, 0 when free.
  std::vector<std::uint32_t> map_size_at_peak;

  std::vector<DeviceSeriesTotals> devices;  // parallel to Trace::devices
  std::uint64_t failures = 0;               // all failed maps (full or would spin)
};

SWIOTLB_API Result<ReplaySeries> replay_series(const Trace& trace, const SeriesOptions& options);

}  // namespace swiotlb::sim
