// Sizing advice from a trace: the smallest pool that would have served every
// map, what dynamic growth would have used, and what that saves.
//
// The search. A pool with no failure serves every map, so at its busiest it
// holds exactly the slots the trace's live mappings need at their peak (the
// "peak demand", measured without a pool: the slot count of a request does
// not depend on where it lands). No smaller pool can do, so the search starts
// at the kernel's rounding of the peak demand (a power of two, at least
// 128 * nareas) and doubles until a replay has no failure; each replay stops
// at its first failure. One or two replays usually settle it, and the answer
// is the smallest such pool: the size below it either fell short of the peak
// demand or was replayed and failed. A map the modelled kernel would spin on
// counts as a failure. The search gives up at kMaxSizingSlots.
//
// The dynamic-growth model (mainline's swiotlb=dynamic): pools are added as
// the load needs them, each at most 4 MiB (the page allocator's largest
// block, which is what a growth pool falls back to), so growth peaks at the
// peak demand rounded up to whole 4 MiB chunks. The model ignores that a
// mapping cannot straddle two pools, the transient pools a full moment
// creates, and the time the growth worker takes; it is a floor for what
// growth costs, not a promise.
//
// The kernel's defaults compared against: 64 MiB; in a confidential (CoCo)
// guest, 6% of RAM clamped to [64 MiB, 1 GiB], with the kernel's rounding.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/trace.h"

namespace swiotlb::sim {

// 2^24 slots = 32 GiB: far beyond any pool a kernel is booted with.
inline constexpr std::uint64_t kMaxSizingSlots = std::uint64_t{1} << 24;

// Dynamic pools grow in chunks of this many bytes (see above).
inline constexpr std::uint64_t kGrowthChunkBytes = std::uint64_t{4} << 20;

struct SizingOptions {
  // Policies to size for; empty: both "linux" and "linux-6.1".
  std::vector<std::string> policies;
  // Areas; default the trace's `# pool` nareas, else 1.
  std::optional<std::uint32_t> nareas;
  // Pool start; default the trace's, else 0.
  std::optional<std::uint64_t> start;
  // The guest's RAM, for the confidential-guest default.
  std::optional<std::uint64_t> ram_bytes;
  ProgressFn progress;
};

struct PolicySize {
  std::string policy;
  std::uint64_t peak_demand_slots = 0;  // slots in use at the peak, every map served
  bool found = false;                   // false: no pool up to kMaxSizingSlots served all
  std::uint64_t nslabs = 0;             // the smallest pool with zero failures
  std::uint32_t nareas = 1;
  std::uint64_t replays = 0;  // replays the search ran
  // One step below: the next smaller pool the kernel allows, and its failures
  // (0 slots and no failures when nslabs is already the smallest pool).
  std::uint64_t below_nslabs = 0;
  std::uint64_t below_failures = 0;        // counted until the first failure: 0 or 1
  bool below_ruled_out_by_demand = false;  // below the peak demand: fails without replay
  std::optional<FailedMap> first_failure_below;
  // Maps no pool can serve (a single map larger than a segment).
  std::uint64_t unservable_maps = 0;

  std::uint64_t bytes() const { return nslabs << 11; }
  // The kernel command-line parameter for this pool.
  std::string swiotlb_param() const;
};

struct SizingReport {
  std::vector<PolicySize> sizes;
  // default_policy_for(trace) when it was sized, else the first policy sized.
  std::string recommended_policy;
  std::uint32_t nareas = 1;

  std::uint64_t dynamic_peak_slots = 0;  // peak demand under "linux"
  std::uint64_t dynamic_peak_bytes = 0;  // ... in whole growth chunks

  std::uint64_t default_bytes = 0;                  // the kernel's 64 MiB default
  std::optional<std::uint64_t> coco_default_bytes;  // when RAM was given

  // The entry of `sizes` for recommended_policy.
  const PolicySize& recommended() const;
};

// REQUIRES: the trace has at least one map. Fails for an unknown policy or
// an impossible nareas.
Result<SizingReport> size_pool(const Trace& trace, const SizingOptions& options);

// The default pool of a confidential guest with `ram_bytes` of memory and
// `nareas` areas, in bytes, with the kernel's rounding.
std::uint64_t coco_default_pool_bytes(std::uint64_t ram_bytes, std::uint32_t nareas);

// The smallest pool the kernel allows at or above `slots`: a power of two,
// at least 128 * nareas.
std::uint64_t kernel_pool_slots(std::uint64_t slots, std::uint32_t nareas);

}  // namespace swiotlb::sim
