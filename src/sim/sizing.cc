// Sizing: the peak demand of a trace, then replays at the kernel's pool sizes
// from that floor upwards until one serves every map (see sizing.h).
#include "swiotlb/sim/sizing.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "address_table.h"
#include "swiotlb/core/address.h"
#include "swiotlb/core/config.h"
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
  std::uint32_t margin_percent;
  std::string flags;
  ProgressFn progress;
  std::function<void(const std::string&, std::uint32_t, std::uint64_t)> on_try;
};

// Replays at `nslabs`, stopping at the first failure, and counts it.
Result<ReplayReport> try_size(const SearchContext& c, PolicySize& size, std::uint64_t nslabs) {
  if (c.on_try) {
    c.on_try(size.policy, c.nareas, nslabs);
  }
  Result<ReplayReport> replay =
      replay_at(c.trace, size.policy, nslabs, c.nareas, c.start, c.progress);
  if (replay) {
    ++size.replays;
  }
  return replay;
}

// What a failed replay one step below the answer says about it.
void note_step_below(PolicySize& size, const ReplayReport& below) {
  size.below_failures = below.failures + below.would_spin;
  if (!below.first_failures.empty()) {
    size.first_failure_below = below.first_failures.front();
  }
}

// Doubling from the floor to a size that serves every map, then bisection
// in whole steps down to one whose step below fails.
Status search(const SearchContext& c, PolicySize& size, std::uint64_t floor) {
  std::optional<std::uint64_t> failed;  // the largest size known to fail
  std::optional<ReplayReport> failed_report;
  std::uint64_t n = floor;
  while (n <= kMaxSizingSlots) {
    Result<ReplayReport> replay = try_size(c, size, n);
    if (!replay) {
      return replay.error();
    }
    if (served_all(*replay)) {
      break;
    }
    failed = n;
    failed_report = std::move(*replay);
    n *= 2;
  }
  if (n > kMaxSizingSlots) {
    return {};
  }
  std::uint64_t served = n;
  while (failed && served - *failed > size.step) {
    const std::uint64_t mid = (*failed + served) / 2 / size.step * size.step;
    Result<ReplayReport> replay = try_size(c, size, mid);
    if (!replay) {
      return replay.error();
    }
    if (served_all(*replay)) {
      served = mid;
    } else {
      failed = mid;
      failed_report = std::move(*replay);
    }
  }
  size.found = true;
  size.nslabs = served;
  if (served == floor) {
    // One step below the floor is below the peak demand, so it fails; it is
    // replayed to name the map that fails. Below the smallest pool is nothing.
    if (floor == kSegmentSlots * std::uint64_t{c.nareas}) {
      return {};
    }
    size.below_nslabs = floor - size.step;
    size.below_ruled_out_by_demand = true;
    Result<ReplayReport> below = try_size(c, size, size.below_nslabs);
    if (!below) {
      return below.error();
    }
    note_step_below(size, *below);
    return {};
  }
  size.below_nslabs = *failed;
  note_step_below(size, *failed_report);
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
  size.step = pool_step_slots(c.nareas);
  size.margin_percent = c.margin_percent;
  size.flags = c.flags;
  size.peak_demand_slots = demand.peak_slots;
  size.unservable_maps = demand.unservable_maps;
  if (demand.unservable_maps != 0) {
    return size;  // no pool serves a map larger than a segment
  }
  const std::uint64_t floor =
      std::max(round_up(std::max<std::uint64_t>(demand.peak_slots, 1), size.step),
               std::uint64_t{kSegmentSlots} * c.nareas);
  if (Status ok = search(c, size, floor); !ok) {
    return ok.error();
  }
  if (size.found) {
    const std::uint64_t with_margin = size.nslabs + (size.nslabs * c.margin_percent + 99) / 100;
    size.advised_nslabs = round_up(with_margin, size.step);
    size.boot_nslabs = kernel_pool_slots(size.advised_nslabs, c.nareas);
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

namespace {

// The force mode set by the `swiotlb=` words of `text`, if any.
std::optional<ForceMode> force_in(std::string_view text) {
  std::optional<ForceMode> mode;
  std::size_t at = 0;
  while ((at = text.find("swiotlb=", at)) != std::string_view::npos) {
    const std::size_t end = std::min(text.find_first_of(" \t\n\"", at), text.size());
    const std::string_view word = text.substr(at, end - at);
    at = end;
    Result<SwiotlbConfig> config = parse_swiotlb_config(word, 1);
    if (config && config->force != ForceMode::automatic) {
      mode = config->force;
    }
  }
  return mode;
}

}  // namespace

std::string recorded_swiotlb_flags(const Trace& trace, std::string_view cmdline) {
  std::optional<ForceMode> mode;
  for (const TraceComment& comment : trace.comments) {
    if (std::optional<ForceMode> m = force_in(comment.text)) {
      mode = m;
    }
  }
  if (std::optional<ForceMode> m = force_in(cmdline)) {
    mode = m;
  }
  return mode ? std::string(to_string(*mode)) : std::string();
}

std::uint64_t pool_step_slots(std::uint32_t nareas) {
  return std::max<std::uint64_t>(kSegmentSlots, nareas);
}

std::string PolicySize::swiotlb_param() const {
  return flags.empty() ? fmt::format("swiotlb={},{}", advised_nslabs, nareas)
                       : fmt::format("swiotlb={},{},{}", advised_nslabs, nareas, flags);
}

Result<std::vector<CurvePoint>> sizing_curve(const Trace& trace, const std::string& policy,
                                             std::uint32_t nareas, std::uint64_t first,
                                             std::uint64_t last, std::uint64_t step) {
  std::vector<CurvePoint> curve;
  for (std::uint64_t n = first; n <= last && step != 0; n += step) {
    ReplayOptions options;
    options.policy = policy;
    options.nslabs = n;
    options.nareas = nareas;
    options.start = trace.pool ? trace.pool->start : 0;
    options.failures_kept = 0;
    Result<ReplayReport> replay = replay_trace(trace, options);
    if (!replay) {
      return std::move(replay).error();
    }
    curve.push_back({n, replay->failures + replay->would_spin});
  }
  return curve;
}

const PolicySize& SizingReport::recommended() const {
  for (const PolicySize& size : sizes) {
    if (size.policy == recommended_policy && size.nareas == nareas) {
      return size;
    }
  }
  return sizes.front();
}

Result<SizingReport> size_pool(const Trace& trace, const SizingOptions& options) {
  std::vector<std::uint32_t> area_counts = options.area_counts;
  if (area_counts.empty()) {
    area_counts.push_back(trace.pool ? trace.pool->nareas : 1);
  }
  for (const std::uint32_t nareas : area_counts) {
    if (!is_power_of_two(nareas)) {
      return make_error(Errc::invalid_argument, "nareas {} is not a power of two", nareas);
    }
  }
  if (std::none_of(trace.events.begin(), trace.events.end(),
                   [](const TraceEvent& e) { return e.op == TraceOp::map; })) {
    return make_error(Errc::invalid_argument, "the trace has no map events to size a pool for");
  }
  std::vector<std::string> policies = options.policies;
  if (policies.empty()) {
    policies = {"linux", "linux-6.1"};
  }
  const std::uint32_t nareas = area_counts.front();
  const std::uint64_t start = options.start.value_or(trace.pool ? trace.pool->start : 0);
  SizingReport report;
  report.nareas = nareas;
  // Each search is independent (its own pools, the trace only read): all
  // but the first run on threads of their own, the first here, with the
  // progress callbacks, which are not meant for several threads.
  struct Job {
    std::string policy;
    std::uint32_t nareas;
  };
  std::vector<Job> jobs;
  for (const std::uint32_t n : area_counts) {
    for (const std::string& policy : policies) {
      jobs.push_back({policy, n});
    }
  }
  std::vector<std::optional<Result<PolicySize>>> sizes(jobs.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < jobs.size(); ++i) {
    threads.emplace_back([&, i] {
      const SearchContext quiet{trace,         jobs[i].nareas, start, options.margin_percent,
                                options.flags, ProgressFn{},   {}};
      sizes[i] = size_for_policy(quiet, jobs[i].policy);
    });
  }
  const SearchContext context{
      trace,         jobs[0].nareas,   start,         options.margin_percent,
      options.flags, options.progress, options.on_try};
  sizes[0] = size_for_policy(context, jobs[0].policy);
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
