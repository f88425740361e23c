// Replay series: a replay watched event by event (see replay_series.h).
#include "swiotlb/sim/replay_series.h"

#include <algorithm>
#include <limits>
#include <memory>

#include "address_table.h"
#include "swiotlb/core/address.h"
#include "swiotlb/pool/slot_policy.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb::sim {
namespace {

constexpr std::size_t kTableInitialMappings = 1024;

// One of the trace's mappings and what this pool did with it.
struct LiveMapping {
  std::uint64_t ours = 0;  // our bounce address
  std::uint32_t first = 0;
  std::uint32_t nslots = 0;
  std::uint16_t device = 0;
  bool failed_here = false;
};

bool is_kernel_failure(const TraceEvent& e) {
  return e.has(recorded::kTlb) && e.tlb == kInvalidAddress;
}

std::uint64_t mapping_key(const TraceEvent& e) {
  return e.has(recorded::kTlb) ? e.tlb : e.orig;
}

std::uint32_t clamp32(std::uint64_t v) {
  return static_cast<std::uint32_t>(
      std::min<std::uint64_t>(v, std::numeric_limits<std::uint32_t>::max()));
}

class Watcher {
 public:
  Watcher(const Trace& trace, SlotPool& pool, bool track_kernel)
      : trace_(trace),
        pool_(pool),
        live_(kTableInitialMappings),
        kernel_live_(kTableInitialMappings),
        track_kernel_(track_kernel),
        owner_(pool.slot_count(), 0),
        size_(pool.slot_count(), 0),
        device_slots_(trace.devices.size(), 0) {
    series_.devices.resize(trace.devices.size());
  }

  void step(const TraceEvent& e, std::uint64_t index) {
    if (e.op == TraceOp::map) {
      map(e, index);
    } else if (e.op == TraceOp::unmap) {
      unmap(e);
    }
  }

  std::uint64_t used() const { return used_; }
  std::uint64_t kernel_used() const { return kernel_used_; }
  ReplaySeries& series() { return series_; }
  const std::vector<std::uint16_t>& owners() const { return owner_; }
  const std::vector<std::uint32_t>& sizes() const { return size_; }

  FragmentationSample fragmentation(std::uint64_t event) const {
    FragmentationSample s;
    s.event = event;
    s.used_slots = used_;
    std::uint64_t run = 0;
    for (const std::uint16_t owner : owner_) {
      if (owner == 0) {
        s.free_runs += run == 0 ? 1 : 0;
        ++run;
        s.largest_free_run = std::max(s.largest_free_run, run);
      } else {
        run = 0;
      }
    }
    return s;
  }

 private:
  SlotRequest request_for(const TraceEvent& e) const {
    const TraceDevice& device = trace_.devices[e.device];
    SlotRequest request;
    request.orig = PhysAddr(e.orig);
    request.mapping_size = e.size;
    request.alloc_size = e.has(recorded::kAllocSize) ? e.alloc_size : 0;
    request.alloc_align_mask = e.alloc_align_mask;
    request.min_align_mask = device.min_align_mask;
    request.seg_boundary_mask = device.seg_boundary_mask;
    request.pool_dma_start = DmaAddr(pool_.start().value());
    request.cpu = e.cpu;
    request.dir = e.dir;
    request.owner = e.device;
    return request;
  }

  void release(const LiveMapping& m) {
    if (m.failed_here) {
      return;
    }
    (void)pool_.unmap(PhysAddr(m.ours), trace_.devices[m.device].min_align_mask);
    std::fill_n(owner_.begin() + m.first, m.nslots, std::uint16_t{0});
    std::fill_n(size_.begin() + m.first, m.nslots, std::uint32_t{0});
    used_ -= m.nslots;
    device_slots_[m.device] -= m.nslots;
  }

  void map(const TraceEvent& e, std::uint64_t index) {
    DeviceSeriesTotals& device = series_.devices[e.device];
    ++device.maps;
    device.bytes += e.size;
    const bool kernel_failed = is_kernel_failure(e);
    const std::uint64_t key = mapping_key(e);
    if (!kernel_failed) {
      if (const std::size_t at = live_.find(key); at != live_.kNone) {
        const LiveMapping lost = live_.at(at);
        live_.erase(at);
        release(lost);
      }
    }
    const SlotRequest request = request_for(e);
    if (track_kernel_) {
      kernel_map(e, index, request);
    }
    Result<SlotMapping> mapping = pool_.map(request);
    if (!mapping) {
      const Errc code = mapping.error().code();
      if (code == Errc::pool_full || code == Errc::search_would_spin) {
        ++series_.failures;
        ++device.failures;
        series_.failed_events.push_back(index);
      }
      if (!kernel_failed) {
        live_.insert(key, LiveMapping{0, 0, 0, e.device, true});
      }
      return;
    }
    if (kernel_failed) {
      // The kernel's caller saw an error and never unmaps: give it back.
      (void)pool_.unmap(mapping->tlb_addr, request.min_align_mask);
      return;
    }
    const LiveMapping m{mapping->tlb_addr.value(), mapping->index.value(),
                        static_cast<std::uint32_t>(mapping->nslots.value()), e.device, false};
    std::fill_n(owner_.begin() + m.first, m.nslots, static_cast<std::uint16_t>(e.device + 1));
    std::fill_n(size_.begin() + m.first, m.nslots, clamp32(e.size));
    used_ += m.nslots;
    device_slots_[e.device] += m.nslots;
    device.peak_slots = std::max(device.peak_slots, device_slots_[e.device]);
    live_.insert(key, m);
  }

  // The kernel's occupancy from its recorded answer to this map.
  void kernel_map(const TraceEvent& e, std::uint64_t index, const SlotRequest& request) {
    if (is_kernel_failure(e)) {
      series_.kernel_failed_events.push_back(index);
      return;
    }
    if (!e.has(recorded::kTlb)) {
      return;
    }
    if (const std::size_t at = kernel_live_.find(e.tlb); at != kernel_live_.kNone) {
      kernel_used_ -= kernel_live_.at(at);
      kernel_live_.erase(at);
    }
    Result<SearchPlan> plan = pool_.policy().plan(request);
    const std::uint64_t slots = plan ? plan->nslots : 0;
    kernel_used_ += slots;
    kernel_live_.insert(e.tlb, slots);
  }

  void unmap(const TraceEvent& e) {
    if (track_kernel_) {
      if (const std::size_t at = kernel_live_.find(e.tlb); at != kernel_live_.kNone) {
        kernel_used_ -= kernel_live_.at(at);
        kernel_live_.erase(at);
      }
    }
    const std::size_t at = live_.find(e.tlb);
    if (at == live_.kNone) {
      return;
    }
    const LiveMapping m = live_.at(at);
    live_.erase(at);
    release(m);
  }

  const Trace& trace_;
  SlotPool& pool_;
  AddressTable<LiveMapping> live_;
  AddressTable<std::uint64_t> kernel_live_;
  bool track_kernel_;
  std::vector<std::uint16_t> owner_;
  std::vector<std::uint32_t> size_;
  std::vector<std::uint64_t> device_slots_;
  std::uint64_t used_ = 0;
  std::uint64_t kernel_used_ = 0;
  ReplaySeries series_;
};

Result<std::unique_ptr<SlotPool>> make_pool(const Trace& trace, const SeriesOptions& options,
                                            const std::string& policy_name) {
  Result<std::shared_ptr<const SlotPolicy>> policy = make_slot_policy(policy_name);
  if (!policy) {
    return std::move(policy).error();
  }
  const std::optional<TracePool>& p = trace.pool;
  if (!options.nslabs && !p) {
    return make_error(Errc::invalid_argument,
                      "the trace has no '# pool' line: give the pool's size (--nslabs)");
  }
  PoolGeometry geometry{};
  geometry.slot_count = options.nslabs.value_or(p ? p->nslabs : 0);
  geometry.area_count = options.nareas.value_or(p ? p->nareas : 1);
  geometry.start = PhysAddr(options.start.value_or(p ? p->start : 0));
  return SlotPool::create(geometry, *policy);
}

}  // namespace

Result<ReplaySeries> replay_series(const Trace& trace, const SeriesOptions& options) {
  const std::string policy =
      options.policy.empty() ? std::string(default_policy_for(trace)) : options.policy;
  Result<std::unique_ptr<SlotPool>> pool = make_pool(trace, options, policy);
  if (!pool) {
    return std::move(pool).error();
  }
  const bool track_kernel = trace.has_kernel_addresses();
  Watcher watcher(trace, **pool, track_kernel);
  ReplaySeries& series = watcher.series();
  series.policy = policy;
  series.nslabs = (*pool)->slot_count();
  series.nareas = (*pool)->area_count();
  const std::uint64_t n = trace.events.size();
  series.used.reserve(n);
  if (track_kernel) {
    series.kernel_used.reserve(n);
  }
  const std::uint64_t every =
      std::max<std::uint64_t>(1, n / std::max<std::size_t>(options.fragmentation_samples, 1));
  for (std::uint64_t i = 0; i < n; ++i) {
    watcher.step(trace.events[i], i);
    series.used.push_back(clamp32(watcher.used()));
    if (track_kernel) {
      series.kernel_used.push_back(clamp32(watcher.kernel_used()));
    }
    if (watcher.used() > series.peak_slots) {
      series.peak_slots = watcher.used();
      series.peak_event = i;
    }
    if (i % every == every - 1 || i + 1 == n) {
      series.fragmentation.push_back(watcher.fragmentation(i));
    }
  }
  ReplaySeries result = std::move(series);

  // The slot map at the peak: the same replay again, stopped there.
  Result<std::unique_ptr<SlotPool>> again = make_pool(trace, options, policy);
  if (!again) {
    return std::move(again).error();
  }
  Watcher to_peak(trace, **again, false);
  for (std::uint64_t i = 0; i < n && i <= result.peak_event; ++i) {
    to_peak.step(trace.events[i], i);
  }
  result.owner_at_peak = to_peak.owners();
  result.map_size_at_peak = to_peak.sizes();
  return result;
}

}  // namespace swiotlb::sim
