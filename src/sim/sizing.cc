// Sizing: the peak demand of a trace, then replays at the kernel's pool sizes
// from that floor upwards until one serves every map (see sizing.h).
#include "swiotlb/sim/sizing.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <thread>

#include "address_table.h"
#include "swiotlb/core/address.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/pool/slot_policy.h"

namespace swiotlb::sim {
namespace {

constexpr std::uint64_t kCocoMinBytes = kDefaultPoolBytes;
constexpr std::uint64_t kCocoMaxBytes = std::uint64_t{1} << 30;
constexpr std::uint64_t kDemandReserve = std::uint64_t{1} << 12;

struct Demand {
  std::uint64_t peak_slots = 0;
  std::uint64_t unservable_maps = 0;
};

std::uint64_t round_up(std::uint64_t value, std::uint64_t unit) {
  return (value + unit - 1) / unit * unit;
}

// The slots a map holds, whatever pool it lands in; 0 when the policy
// refuses it (the kernel returns an error without searching).
std::uint64_t slots_of(const SlotPolicy& policy, const TraceEvent& e, const TraceDevice& device) {
  SlotRequest request;
  request.orig = PhysAddr(e.orig);
  request.mapping_size = e.size;
  request.alloc_size = e.has(recorded::kAllocSize) ? e.alloc_size : 0;
  request.alloc_align_mask = e.alloc_align_mask;
  request.min_align_mask = device.min_align_mask;
  request.seg_boundary_mask = device.seg_boundary_mask;
  Result<SearchPlan> plan = policy.plan(request);
  return plan && e.size != 0 ? plan->nslots : 0;
}

// The most slots in use at once if every map were served, with the same
// bookkeeping replay uses (lost unmaps, maps the kernel failed).
Demand peak_demand(const Trace& trace, const SlotPolicy& policy) {
  AddressTable<std::uint64_t> live(kDemandReserve);
  Demand demand;
  std::uint64_t used = 0;
  for (const TraceEvent& e : trace.events) {
    if (e.op == TraceOp::unmap) {
      const std::size_t at = live.find(e.tlb);
      if (at != live.kNone) {
        used -= live.at(at);
        live.erase(at);
      }
      continue;
    }
    if (e.op != TraceOp::map) {
      continue;
    }
    const TraceDevice& device = trace.devices[e.device];
    const std::uint64_t slots = slots_of(policy, e, device);
    const std::uint64_t boundary_slots = (device.seg_boundary_mask >> kSlotShift) + 1;
    if (slots > std::min<std::uint64_t>(kSegmentSlots, boundary_slots)) {
      ++demand.unservable_maps;
      continue;
    }
    const bool kernel_failed = e.has(recorded::kTlb) && e.tlb == kInvalidAddress;
    const std::uint64_t key = e.has(recorded::kTlb) ? e.tlb : e.orig;
    if (const std::size_t at = kernel_failed ? live.kNone : live.find(key); at != live.kNone) {
      used -= live.at(at);
      live.erase(at);
    }
    used += slots;
    demand.peak_slots = std::max(demand.peak_slots, used);
    if (kernel_failed) {
      used -= slots;
    } else {
      live.insert(key, slots);
    }
  }
  return demand;
}

Result<ReplayReport> replay_at(const Trace& trace, const std::string& policy, std::uint64_t nslabs,
                               std::uint32_t nareas, std::uint64_t start,
                               const ProgressFn& progress) {
  ReplayOptions options;
  options.policy = policy;
  options.nslabs = nslabs;
  options.nareas = nareas;
  options.start = start;
  options.stop_at_first_failure = true;
  options.failures_kept = 1;
  options.progress = progress;
  return replay_trace(trace, options);
}

bool served_all(const ReplayReport& report) {
  return report.failures == 0 && report.would_spin == 0;
}

struct SearchContext {
  const Trace& trace;
  std::uint32_t nareas;
  std::uint64_t start;
  ProgressFn progress;
};

// Replays `size.nslabs / 2`, the step below the answer, to show it fails.
Status check_step_below(const SearchContext& c, PolicySize& size,
                        const std::optional<ReplayReport>& tried_below) {
  const std::uint64_t smallest = kernel_pool_slots(1, c.nareas);
  if (size.nslabs <= smallest) {
    return {};  // nothing smaller exists
  }
  size.below_nslabs = size.nslabs / 2;
  size.below_ruled_out_by_demand = size.below_nslabs < size.peak_demand_slots;
  std::optional<ReplayReport> below = tried_below;
  if (!below) {
    Result<ReplayReport> replay =
        replay_at(c.trace, size.policy, size.below_nslabs, c.nareas, c.start, c.progress);
    if (!replay) {
      return replay.error();
    }
    ++size.replays;
    below = std::move(*replay);
  }
  size.below_failures = below->failures + below->would_spin;
  if (!below->first_failures.empty()) {
    size.first_failure_below = below->first_failures.front();
  }
  return {};
}

Result<PolicySize> size_for_policy(const SearchContext& c, const std::string& policy_name) {
  Result<std::shared_ptr<const SlotPolicy>> policy = make_slot_policy(policy_name);
  if (!policy) {
    return std::move(policy).error();
  }
  const Demand demand = peak_demand(c.trace, **policy);
  PolicySize size;
  size.policy = policy_name;
  size.nareas = c.nareas;
  size.peak_demand_slots = demand.peak_slots;
  size.unservable_maps = demand.unservable_maps;
  if (demand.unservable_maps != 0) {
    return size;  // no pool serves a map larger than a segment
  }
  std::optional<ReplayReport> last_failed;
  for (std::uint64_t n = kernel_pool_slots(std::max<std::uint64_t>(demand.peak_slots, 1), c.nareas);
       n <= kMaxSizingSlots; n *= 2) {
    Result<ReplayReport> replay = replay_at(c.trace, policy_name, n, c.nareas, c.start, c.progress);
    if (!replay) {
      return std::move(replay).error();
    }
    ++size.replays;
    if (served_all(*replay)) {
      size.found = true;
      size.nslabs = n;
      break;
    }
    last_failed = std::move(*replay);
  }
  if (!size.found) {
    return size;
  }
  if (last_failed && last_failed->nslabs != size.nslabs / 2) {
    last_failed.reset();
  }
  if (Status ok = check_step_below(c, size, last_failed); !ok) {
    return ok.error();
  }
  return size;
}

}  // namespace

std::uint64_t kernel_pool_slots(std::uint64_t slots, std::uint32_t nareas) {
  const std::uint64_t floor = std::uint64_t{kSegmentSlots} * std::max<std::uint32_t>(nareas, 1);
  return round_up_power_of_two(std::max(slots, floor));
}

std::uint64_t coco_default_pool_bytes(std::uint64_t ram_bytes, std::uint32_t nareas) {
  // 6% of RAM, clamped, then aligned and rounded as the kernel's
  // swiotlb_adjust_size() and the area setup after it do.
  const std::uint64_t bytes =
      std::clamp(ram_bytes / 100 * 6 + ram_bytes % 100 * 6 / 100, kCocoMinBytes, kCocoMaxBytes);
  const std::uint64_t slots = round_up(round_up(bytes, kSlotSize) >> kSlotShift, kSegmentSlots);
  return kernel_pool_slots(slots, nareas) << kSlotShift;
}

std::string PolicySize::swiotlb_param() const {
  return fmt::format("swiotlb={},{}", nslabs, nareas);
}

const PolicySize& SizingReport::recommended() const {
  for (const PolicySize& size : sizes) {
    if (size.policy == recommended_policy) {
      return size;
    }
  }
  return sizes.front();
}

Result<SizingReport> size_pool(const Trace& trace, const SizingOptions& options) {
  const std::uint32_t nareas = options.nareas.value_or(trace.pool ? trace.pool->nareas : 1);
  if (!is_power_of_two(nareas)) {
    return make_error(Errc::invalid_argument, "nareas {} is not a power of two", nareas);
  }
  if (std::none_of(trace.events.begin(), trace.events.end(),
                   [](const TraceEvent& e) { return e.op == TraceOp::map; })) {
    return make_error(Errc::invalid_argument, "the trace has no map events to size a pool for");
  }
  std::vector<std::string> policies = options.policies;
  if (policies.empty()) {
    policies = {"linux", "linux-6.1"};
  }
  const SearchContext context{
      trace, nareas, options.start.value_or(trace.pool ? trace.pool->start : 0), options.progress};
  SizingReport report;
  report.nareas = nareas;
  // Each policy's search is independent (its own pools, the trace only
  // read): all but the first run on threads of their own, the first here,
  // with the progress callback, which is not meant for several threads.
  std::vector<std::optional<Result<PolicySize>>> sizes(policies.size());
  const SearchContext quiet{trace, nareas, context.start, ProgressFn{}};
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < policies.size(); ++i) {
    threads.emplace_back([&, i] { sizes[i] = size_for_policy(quiet, policies[i]); });
  }
  sizes[0] = size_for_policy(context, policies[0]);
  for (std::thread& t : threads) {
    t.join();
  }
  for (std::optional<Result<PolicySize>>& size : sizes) {
    Result<PolicySize>& result = *size;
    if (!result) {
      return std::move(result).error();
    }
    report.sizes.push_back(std::move(result).value());
  }
  // The trace's own kernel's policy, when it was sized.
  report.recommended_policy = std::string(default_policy_for(trace));
  if (std::find(policies.begin(), policies.end(), report.recommended_policy) == policies.end()) {
    report.recommended_policy = policies.front();
  }

  Result<std::shared_ptr<const SlotPolicy>> mainline = make_slot_policy("linux");
  report.dynamic_peak_slots = peak_demand(trace, **mainline).peak_slots;
  report.dynamic_peak_bytes = round_up(report.dynamic_peak_slots << kSlotShift, kGrowthChunkBytes);
  report.default_bytes = kernel_pool_slots(kDefaultSlotCount, nareas) << kSlotShift;
  if (options.ram_bytes) {
    report.coco_default_bytes = coco_default_pool_bytes(*options.ram_bytes, nareas);
  }
  return report;
}

}  // namespace swiotlb::sim
