// Replay: a trace's events through one SlotPool, counted.
//
// The Replayer keeps one table from the trace's name for a mapping (the
// kernel's bounce address, or the map's orig when that was not recorded) to
// what this pool did with it: our bounce address, or "failed here". Unmaps
// find their mapping there. The table is sized from the pool, since a pool
// cannot hold more mappings than slots, so the loop does not allocate unless
// the trace keeps far more failed maps alive than the pool has slots.
#include "swiotlb/sim/replay.h"

#include <algorithm>
#include <memory>

#include "address_table.h"
#include "swiotlb/core/address.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb::sim {
namespace {

// Events between two progress callbacks.
constexpr std::uint64_t kProgressEvery = std::uint64_t{1} << 16;
// The table is sized for the pool, up to this many mappings; beyond, it grows.
constexpr std::uint64_t kTableReserveLimit = std::uint64_t{1} << 16;

// What the pool did with one of the trace's mappings.
struct LiveMapping {
  std::uint64_t our_tlb = 0;
  bool failed_here = false;
};

// The two device fields every map and unmap needs, copied out of the trace's
// devices so that the loop reads two words, not a TraceDevice.
struct DeviceMasks {
  std::uint64_t min_align_mask = 0;
  std::uint64_t seg_boundary_mask = ~std::uint64_t{0};
};

bool is_kernel_failure(const TraceEvent& e) {
  return e.has(recorded::kTlb) && e.tlb == kInvalidAddress;
}

// The name the trace gives a mapping: what its unmap will say.
std::uint64_t mapping_key(const TraceEvent& e) { return e.has(recorded::kTlb) ? e.tlb : e.orig; }

class Replayer {
 public:
  Replayer(const Trace& trace, const ReplayOptions& options, SlotPool& pool, bool compare)
      : trace_(trace),
        options_(options),
        pool_(pool),
        table_(static_cast<std::size_t>(std::min(pool.slot_count(), kTableReserveLimit))) {
    masks_.reserve(trace.devices.size());
    for (const TraceDevice& device : trace.devices) {
      masks_.push_back({device.min_align_mask, device.seg_boundary_mask});
    }
    if (compare) {
      report_.slot_agreement = SlotAgreement{};
    }
  }

  ReplayReport run();

 private:
  void map(const TraceEvent& e);
  void unmap(const TraceEvent& e);
  SlotRequest request_for(const TraceEvent& e) const;
  void forget_lost_mapping(std::uint64_t key, std::uint16_t device);
  void map_failed(const TraceEvent& e, Errc code);
  void compare(const TraceEvent& e, bool same);
  void note_unmatched(const TraceEvent& e);
  void report_progress(std::uint64_t done) const;

  const Trace& trace_;
  const ReplayOptions& options_;
  SlotPool& pool_;
  std::vector<DeviceMasks> masks_;
  AddressTable<LiveMapping> table_;
  ReplayReport report_;
  bool stop_ = false;
};

ReplayReport Replayer::run() {
  const std::uint64_t total = trace_.events.size();
  for (const TraceEvent& e : trace_.events) {
    switch (e.op) {
      case TraceOp::map:
        map(e);
        break;
      case TraceOp::unmap:
        unmap(e);
        break;
      case TraceOp::sync_cpu:
      case TraceOp::sync_dev:
        ++report_.syncs;
        break;
    }
    ++report_.events;
    if (stop_) {
      report_.stopped_early = report_.events < total;
      break;
    }
    if (options_.progress && report_.events % kProgressEvery == 0) {
      report_progress(report_.events);
    }
  }
  report_progress(report_.events);
  report_.hiwater_slots = pool_.hiwater();
  report_.final_used_slots = pool_.used();
  report_.largest_free_run_slots = pool_.largest_free_run();
  report_.bad_lines = trace_.bad_line_count;
  return std::move(report_);
}

void Replayer::report_progress(std::uint64_t done) const {
  if (options_.progress) {
    options_.progress({done, trace_.events.size()});
  }
}

SlotRequest Replayer::request_for(const TraceEvent& e) const {
  const DeviceMasks& masks = masks_[e.device];
  SlotRequest request;
  request.orig = PhysAddr(e.orig);
  request.mapping_size = e.size;
  request.alloc_size = e.has(recorded::kAllocSize) ? e.alloc_size : 0;
  request.alloc_align_mask = e.alloc_align_mask;
  request.min_align_mask = masks.min_align_mask;
  request.seg_boundary_mask = masks.seg_boundary_mask;
  request.pool_dma_start = DmaAddr(pool_.start().value());
  request.cpu = e.cpu;
  request.dir = e.dir;
  request.owner = e.device;
  return request;
}

void Replayer::map(const TraceEvent& e) {
  ++report_.maps;
  const bool kernel_failed = is_kernel_failure(e);
  const std::uint64_t key = mapping_key(e);
  if (!kernel_failed) {
    forget_lost_mapping(key, e.device);
  }
  Result<SlotMapping> mapping = pool_.map(request_for(e));
  if (kernel_failed) {
    ++report_.kernel_failed_maps;
  }
  if (!mapping) {
    map_failed(e, mapping.error().code());
    if (kernel_failed) {
      ++report_.kernel_failed_also_here;
    } else {
      table_.insert(key, {0, true});
    }
    compare(e, kernel_failed);
    return;
  }
  const std::uint64_t ours = mapping->tlb_addr.value();
  if (kernel_failed) {
    // The kernel's caller saw an error and will never unmap: give it back.
    (void)pool_.unmap(mapping->tlb_addr, masks_[e.device].min_align_mask);
  } else {
    table_.insert(key, {ours, false});
  }
  compare(e, !kernel_failed && ours == e.tlb);
}

// A live entry under the key of a new map means the kernel freed that address
// without the trace seeing the unmap.
void Replayer::forget_lost_mapping(std::uint64_t key, std::uint16_t device) {
  const std::size_t position = table_.find(key);
  if (position == table_.kNone) {
    return;
  }
  const LiveMapping lost = table_.at(position);
  table_.erase(position);
  ++report_.lost_unmaps;
  if (!lost.failed_here) {
    (void)pool_.unmap(PhysAddr(lost.our_tlb), masks_[device].min_align_mask);
  }
}

void Replayer::map_failed(const TraceEvent& e, Errc code) {
  switch (code) {
    case Errc::pool_full:
      ++report_.failures;
      break;
    case Errc::search_would_spin:
      ++report_.would_spin;
      break;
    default:
      ++report_.rejected;
      break;
  }
  if (report_.first_failures.size() < options_.failures_kept) {
    report_.first_failures.push_back({e.line, e.size, code});
  }
  // Sizing stops at the first map that needed more room; a rejected map
  // fails in any pool and says nothing about size.
  stop_ = options_.stop_at_first_failure && code != Errc::invalid_argument;
}

void Replayer::compare(const TraceEvent& e, bool same) {
  if (!report_.slot_agreement || !e.has(recorded::kTlb)) {
    return;
  }
  SlotAgreement& agreement = *report_.slot_agreement;
  ++agreement.compared;
  if (same) {
    ++agreement.matched;
  } else if (!agreement.first_mismatch_line) {
    agreement.first_mismatch_line = e.line;
  }
}

void Replayer::unmap(const TraceEvent& e) {
  ++report_.unmaps;
  const std::size_t position = table_.find(e.tlb);
  if (position == table_.kNone) {
    note_unmatched(e);
    return;
  }
  const LiveMapping live = table_.at(position);
  table_.erase(position);
  if (live.failed_here) {
    ++report_.unmaps_of_failed_maps;
    return;
  }
  // The device of the unmap locates the first slot, as in the kernel.
  if (!pool_.unmap(PhysAddr(live.our_tlb), masks_[e.device].min_align_mask)) {
    note_unmatched(e);
  }
}

void Replayer::note_unmatched(const TraceEvent& e) {
  ++report_.unmatched_unmaps;
  if (report_.first_unmatched_lines.size() < options_.failures_kept) {
    report_.first_unmatched_lines.push_back(e.line);
  }
}

struct Geometry {
  PoolGeometry pool;
  bool same_as_trace = false;
};

Result<Geometry> resolve_geometry(const Trace& trace, const ReplayOptions& options) {
  const std::optional<TracePool>& p = trace.pool;
  if (!options.nslabs && !p) {
    return make_error(Errc::invalid_argument,
                      "the trace has no '# pool' line: give the pool's size (--nslabs)");
  }
  Geometry g;
  g.pool.slot_count = options.nslabs.value_or(p ? p->nslabs : 0);
  g.pool.area_count = options.nareas.value_or(p ? p->nareas : 1);
  g.pool.start = PhysAddr(options.start.value_or(p ? p->start : 0));
  g.same_as_trace = p && g.pool.slot_count == p->nslabs && g.pool.area_count == p->nareas &&
                    g.pool.start.value() == p->start;
  return g;
}

std::string agreement_unavailable(const Trace& trace, const Geometry& geometry) {
  if (!trace.has_kernel_addresses()) {
    return "the trace does not record the kernel's bounce addresses";
  }
  if (!geometry.same_as_trace) {
    return "the pool's geometry differs from the trace's (start, nslabs, nareas)";
  }
  return {};
}

}  // namespace

Result<ReplayReport> replay_trace(const Trace& trace, const ReplayOptions& options) {
  const std::string policy_name =
      options.policy.empty() ? std::string(default_policy_for(trace)) : options.policy;
  Result<std::shared_ptr<const SlotPolicy>> policy = make_slot_policy(policy_name);
  if (!policy) {
    return std::move(policy).error();
  }
  Result<Geometry> geometry = resolve_geometry(trace, options);
  if (!geometry) {
    return std::move(geometry).error();
  }
  Result<std::unique_ptr<SlotPool>> pool = SlotPool::create(geometry->pool, *policy);
  if (!pool) {
    return std::move(pool).error();
  }
  const std::string unavailable = agreement_unavailable(trace, *geometry);
  Replayer replayer(trace, options, **pool, unavailable.empty());
  ReplayReport report = replayer.run();
  report.policy = policy_name;
  report.nslabs = geometry->pool.slot_count;
  report.nareas = geometry->pool.area_count;
  report.start = geometry->pool.start.value();
  report.slot_agreement_unavailable = unavailable;
  return report;
}

}  // namespace swiotlb::sim
