// Sizing advice from a trace: the smallest pool that would have served every
// map, what dynamic growth would have used, and what that saves.
//
// The search. A pool with no failure serves every map, so at its busiest it
// holds exactly the slots the trace's live mappings need at their peak (the
// "peak demand", measured without a pool: the slot count of a request does
// not depend on where it lands). No smaller pool can do, so the search starts
// at the peak demand rounded up to a whole step (128 slots, or nareas slots
// when that is more, and never below 128 * nareas) and doubles until a replay
// has no failure; each replay stops at its first failure. Then it bisects,
// in whole steps, between the last size that failed and the first that did
// not, and ends on a size that serves every map while the size one step
// below fails (or is below the peak demand, or is the smallest pool there
// is). A larger pool usually fails no more than a smaller one, but nothing
// guarantees it (the search cursor lands elsewhere), so the answer is the
// smallest size found with that property, not a proof that no smaller
// size anywhere works. A map the modelled kernel would spin on counts as a
// failure. The search gives up at kMaxSizingSlots.
//
// What the kernel boots. `swiotlb=N` is aligned up to 128 slots, and a
// kernel with areas (6.0 and later, and late 6.1.y) then rounds N up to a
// power of two (at least 128 * nareas): the exact size is what the
// allocator needs, boot_nslabs what such a kernel allocates for it.
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
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
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
  // Area counts to size for (each a power of two); empty: the trace's
  // `# pool` nareas, else 1. The first is the one advice is given for.
  std::vector<std::uint32_t> area_counts;
  // Pool start; default the trace's, else 0.
  std::optional<std::uint64_t> start;
  // The guest's RAM, for the confidential-guest default.
  std::optional<std::uint64_t> ram_bytes;
  // Head room added to the smallest size in the advice, in percent of it.
  std::uint32_t margin_percent = 0;
  // Flags the `swiotlb=` advice keeps ("force", "noforce"; empty: none).
  std::string flags;
  // Replay progress, and a note of each pool size tried, for the first
  // search only (the others run on threads of their own).
  ProgressFn progress;
  std::function<void(const std::string& policy, std::uint32_t nareas, std::uint64_t nslabs)> on_try;
};

struct SWIOTLB_API PolicySize {
  std::string policy;
  std::uint64_t peak_demand_slots = 0;  // slots in use at the peak, every map served
  bool found = false;                   // false: no pool up to kMaxSizingSlots served all
  std::uint64_t nslabs = 0;             // the smallest pool with zero failures
  std::uint32_t nareas = 1;
  std::uint64_t step = 128;          // the search's granularity in slots
  std::uint64_t advised_nslabs = 0;  // nslabs plus the margin, in whole steps
  std::uint64_t boot_nslabs = 0;     // what a kernel with areas boots for advised_nslabs
  std::uint32_t margin_percent = 0;
  std::string flags;          // kept in swiotlb_param()
  std::uint64_t replays = 0;  // replays the search ran
  // One step below: nslabs - step, and its failures (0 slots and no
  // failures when nslabs is already the smallest pool).
  std::uint64_t below_nslabs = 0;
  std::uint64_t below_failures = 0;        // counted until the first failure: 0 or 1
  bool below_ruled_out_by_demand = false;  // below the peak demand: fails without replay
  std::optional<FailedMap> first_failure_below;
  // Maps no pool can serve (a single map larger than a segment).
  std::uint64_t unservable_maps = 0;

  std::uint64_t bytes() const { return nslabs << 11; }
  std::uint64_t boot_bytes() const { return boot_nslabs << 11; }
  // The kernel command-line parameter for the advised pool, flags kept:
  // "swiotlb=<advised_nslabs>,<nareas>[,<flags>]".
  std::string swiotlb_param() const;
};

struct SWIOTLB_API SizingReport {
  std::vector<PolicySize> sizes;
  // default_policy_for(trace) when it was sized, else the first policy sized.
  std::string recommended_policy;
  std::uint32_t nareas = 1;  // the first area count sized

  std::uint64_t dynamic_peak_slots = 0;  // peak demand under "linux"
  std::uint64_t dynamic_peak_bytes = 0;  // ... in whole growth chunks

  std::uint64_t default_bytes = 0;                  // the kernel's 64 MiB default
  std::optional<std::uint64_t> coco_default_bytes;  // when RAM was given

  // The entry of `sizes` for recommended_policy and nareas.
  const PolicySize& recommended() const;
};

// One point of a sizing curve: failed maps over a whole replay at a size.
struct CurvePoint {
  std::uint64_t nslabs = 0;
  std::uint64_t failures = 0;  // pool_full and would-spin maps
};

// REQUIRES: the trace has at least one map. Fails for an unknown policy or
// an impossible nareas.
SWIOTLB_API Result<SizingReport> size_pool(const Trace& trace, const SizingOptions& options);

// Failures against pool size: whole replays (not stopped at the first
// failure) at every size from `first` to `last` in steps of `step` slots
// (each a valid pool for `nareas`). Fails as replay_trace does.
SWIOTLB_API Result<std::vector<CurvePoint>> sizing_curve(const Trace& trace,
                                                         const std::string& policy,
                                                         std::uint32_t nareas, std::uint64_t first,
                                                         std::uint64_t last, std::uint64_t step);

// The force flag the trace's kernel was booted with, as `swiotlb=` spells
// it ("force", "noforce"), from the last `swiotlb=` word in the trace's
// comments (a recorded command line) or in `cmdline`, the latter winning;
// empty when neither says. Words that do not parse are ignored.
SWIOTLB_API std::string recorded_swiotlb_flags(const Trace& trace, std::string_view cmdline);

// The granularity of pool sizes for `nareas` areas: 128 slots, or nareas
// when that is more (every area the same whole number of slots).
SWIOTLB_API std::uint64_t pool_step_slots(std::uint32_t nareas);

// The default pool of a confidential guest with `ram_bytes` of memory and
// `nareas` areas, in bytes, with the kernel's rounding.
SWIOTLB_API std::uint64_t coco_default_pool_bytes(std::uint64_t ram_bytes, std::uint32_t nareas);

// The pool a kernel with areas boots for `swiotlb=<slots>,<nareas>`: a
// power of two, at least 128 * nareas.
SWIOTLB_API std::uint64_t kernel_pool_slots(std::uint64_t slots, std::uint32_t nareas);

}  // namespace swiotlb::sim
