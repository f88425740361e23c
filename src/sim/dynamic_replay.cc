// Dynamic replay: a trace's events through a default pool, the pools grown
// for it and transient pools, as dynamic_replay.h describes.
//
// Every pool is a set of one-area SlotPools, one per area, at consecutive
// addresses: the kernel's search order visits areas, not pools, and a
// one-area SlotPool whose device start is the area's own chooses the slots
// that area of the larger pool would (the alignment and boundary tests see
// the same device addresses). Live pools are also kept by start address,
// for unmaps. The trace's names for mappings map to our bounce addresses
// in an AddressTable, as in replay.cc.
#include "swiotlb/sim/dynamic_replay.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>

#include "address_table.h"
#include "event_pipeline.h"
#include "mapped_file.h"
#include "replay_driver.h"
#include "swiotlb/core/address.h"
#include "swiotlb/core/config.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/pool/slot_pool.h"
#include "trace_reader.h"

namespace swiotlb::sim {
namespace {

constexpr std::size_t kTableInitialMappings = 1024;
// What the model did with one of the trace's mappings: our bounce address,
// or kFailedHere (the kernel's error value, never a bounce address).
constexpr std::uint64_t kFailedHere = kInvalidAddress;
// max_nslabs, unless given, is this many times the default pool: IoTlb's
// default bound on growth, generous enough that a trace only meets it when
// its load is far beyond what the default pool was sized for.
constexpr std::uint64_t kMaxGrowthFactor = 16;

struct DeviceMasks {
  std::uint64_t min_align_mask = 0;
  std::uint64_t seg_boundary_mask = ~std::uint64_t{0};
};

std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) {
  return (value + alignment - 1) & ~(alignment - 1);
}

// The largest power of two not above `x` (x >= 1).
std::uint32_t floor_power_of_two(std::uint64_t x) {
  std::uint32_t p = 1;
  while (std::uint64_t{p} * 2 <= x) {
    p *= 2;
  }
  return p;
}

bool is_kernel_failure(const TraceEvent& e) {
  return e.has(recorded::kTlb) && e.tlb == kInvalidAddress;
}

std::uint64_t mapping_key(const TraceEvent& e) {
  return e.has(recorded::kTlb) ? e.tlb : e.orig;
}

// One pool of the model: default, grown or transient.
struct ModelPool {
  bool transient = false;
  std::uint32_t index = kTransientPool;  // into the report's pools
  std::uint64_t start = 0;
  std::uint64_t nslabs = 0;   // slots of its SlotPools
  std::uint64_t counted = 0;  // slots it counts as (transient: nr_slots)
  std::uint32_t area_slots = 0;
  std::vector<std::unique_ptr<SlotPool>> areas;
  std::uint64_t used = 0;
  std::uint64_t hiwater = 0;
  std::uint64_t maps = 0;
  std::uint64_t last_active = 0;  // the last event that mapped or unmapped here

  std::uint64_t end() const { return start + (nslabs << kSlotShift); }
  std::uint32_t nareas() const { return static_cast<std::uint32_t>(areas.size()); }
  SlotPool& area_of(std::uint64_t addr) const {
    return *areas[(addr - start) / (std::uint64_t{area_slots} << kSlotShift)];
  }
};

struct Settings {
  std::string policy_name;
  std::shared_ptr<const SlotPolicy> policy;
  PoolGeometry geometry{};
  std::uint64_t max_nslabs = 0;
};

Result<Settings> settings_for(const Trace& header, const DynamicReplayOptions& options) {
  Settings s;
  s.policy_name = options.policy.empty() ? std::string("linux") : options.policy;
  Result<std::shared_ptr<const SlotPolicy>> policy = make_slot_policy(s.policy_name);
  if (!policy) {
    return std::move(policy).error();
  }
  s.policy = std::move(*policy);
  const std::optional<TracePool>& p = header.pool;
  if (!options.nslabs && !p) {
    return make_error(Errc::invalid_argument,
                      "the trace has no '# pool' line: give the pool's size (--nslabs)");
  }
  s.geometry.slot_count = options.nslabs.value_or(p ? p->nslabs : 0);
  s.geometry.area_count = options.nareas.value_or(p ? p->nareas : 1);
  s.geometry.start = PhysAddr(options.start.value_or(p ? p->start : 0));
  if (s.geometry.slot_count > kMaxReplaySlots) {
    return make_error(Errc::invalid_argument,
                      "a pool of {} slots is above the replay limit of {} slots (32 GiB)",
                      s.geometry.slot_count, kMaxReplaySlots);
  }
  if (Status ok = validate_geometry(s.geometry.slot_count, s.geometry.area_count); !ok) {
    return ok.error();
  }
  if (options.grow_nslabs == 0 || options.grow_nslabs % kSegmentSlots != 0 ||
      options.grow_nslabs > kMaxSlotCount) {
    return make_error(Errc::invalid_argument,
                      "grown pools of {} slots: the size must be a non-zero multiple of {}",
                      options.grow_nslabs, kSegmentSlots);
  }
  if (options.shrink_after && *options.shrink_after == 0) {
    // A pool would go back before the event that follows its growth.
    return make_error(Errc::invalid_argument, "shrink after 0 events: give at least 1");
  }
  s.max_nslabs = options.max_nslabs.value_or(kMaxGrowthFactor * s.geometry.slot_count);
  return s;
}

class DynamicReplayer {
 public:
  DynamicReplayer(const DynamicReplayOptions& options, Settings settings)
      : options_(options), settings_(std::move(settings)), table_(kTableInitialMappings) {}

  // Builds the default pool. REQUIRES: called once, before any event.
  Status start();

  void add_device(const TraceDevice& device) {
    masks_.push_back({device.min_align_mask, device.seg_boundary_mask});
  }

  bool replay(const TraceEvent& e);
  std::uint64_t events() const { return report_.events; }

  DynamicReplayReport finish(const Trace& header);

 private:
  Result<std::unique_ptr<ModelPool>> make_pool(std::uint64_t nslabs, std::uint32_t nareas,
                                               bool transient,
                                               std::optional<std::uint64_t> at = std::nullopt);
  void grow();
  void shrink_idle();
  void give_back(ModelPool& pool);
  void map(const TraceEvent& e);
  SlotRequest request_for(const TraceEvent& e) const;
  // Our mapping of `e`, or an error (the cause of the failure).
  Result<std::uint64_t> place(const TraceEvent& e, const SlotRequest& request);
  bool try_area(const TraceEvent& e, ModelPool& pool, std::uint32_t area, SlotRequest request,
                Result<std::uint64_t>& out);
  Result<std::uint64_t> place_transient(const TraceEvent& e, const SlotRequest& request,
                                        std::uint64_t nslots);
  bool release(std::uint64_t ours, std::uint16_t device);
  void forget_lost_mapping(std::uint64_t key, std::uint16_t device);
  void unmap(const TraceEvent& e);
  void map_failed(const TraceEvent& e, Errc code);
  void note_unmatched(const TraceEvent& e);
  void note_memory();

  const DynamicReplayOptions& options_;
  Settings settings_;
  std::vector<DeviceMasks> masks_;
  AddressTable<std::uint64_t> table_;
  DynamicReplayReport report_;

  // The default pool and the grown ones in the order made (null once given
  // back), their report entries at the same index.
  std::vector<std::unique_ptr<ModelPool>> pools_;
  std::map<std::uint64_t, std::unique_ptr<ModelPool>> transient_;  // by start
  std::map<std::uint64_t, ModelPool*> by_start_;                   // every live pool
  std::uint64_t next_start_ = 0;  // pools are placed at or above this address
  std::uint32_t max_nareas_ = 1;  // of the live default and grown pools
  bool grow_pending_ = false;
  std::uint64_t used_ = 0;
  std::uint64_t grown_live_ = 0;
};

Status DynamicReplayer::start() {
  const PoolGeometry& g = settings_.geometry;
  Result<std::unique_ptr<ModelPool>> pool =
      make_pool(g.slot_count, g.area_count, false, g.start.value());
  if (!pool) {
    return pool.error();
  }
  (*pool)->index = 0;
  report_.pools.push_back({.kind = DynamicPoolKind::default_pool,
                           .start = (*pool)->start,
                           .nslabs = g.slot_count,
                           .nareas = g.area_count});
  by_start_[(*pool)->start] = pool->get();
  pools_.push_back(std::move(*pool));
  max_nareas_ = g.area_count;
  report_.total_slots_final = report_.total_slots_peak = g.slot_count;
  note_memory();
  return {};
}

// A pool of `nslabs` slots in `nareas` one-area SlotPools: at `at` (the
// default pool, where the trace says), else at the next free address aligned
// to its size rounded up to a power of two.
Result<std::unique_ptr<ModelPool>> DynamicReplayer::make_pool(std::uint64_t nslabs,
                                                              std::uint32_t nareas, bool transient,
                                                              std::optional<std::uint64_t> at) {
  const std::uint64_t bytes = nslabs << kSlotShift;
  const std::uint64_t start = at.value_or(align_up(next_start_, round_up_power_of_two(bytes)));
  if (start < next_start_ || start + bytes < start) {
    return make_error(Errc::invalid_argument, "no address space left above {:#x} for a pool",
                      next_start_);
  }
  auto pool = std::make_unique<ModelPool>();
  pool->transient = transient;
  pool->start = start;
  pool->nslabs = nslabs;
  pool->counted = nslabs;
  pool->area_slots = static_cast<std::uint32_t>(nslabs / nareas);
  for (std::uint32_t a = 0; a < nareas; ++a) {
    const PoolGeometry area{PhysAddr(start + ((std::uint64_t{a} * pool->area_slots) << kSlotShift)),
                            pool->area_slots, 1};
    Result<std::unique_ptr<SlotPool>> slots = SlotPool::create(area, settings_.policy);
    if (!slots) {
      return std::move(slots).error();
    }
    pool->areas.push_back(std::move(*slots));
  }
  next_start_ = start + bytes;
  return pool;
}

bool DynamicReplayer::replay(const TraceEvent& e) {
  // What the growth worker did since the last event, then idle pools.
  if (grow_pending_) {
    grow_pending_ = false;
    grow();
  }
  if (options_.shrink_after) {
    shrink_idle();
  }
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
  return true;
}

void DynamicReplayer::grow() {
  const std::uint64_t grow_nslabs = options_.grow_nslabs;
  if (report_.total_slots_final + grow_nslabs > settings_.max_nslabs) {
    ++report_.growth_refused;
    return;
  }
  // The kernel's limit_nareas: at least a segment per area.
  const std::uint32_t nareas =
      std::min(settings_.geometry.area_count, floor_power_of_two(grow_nslabs / kSegmentSlots));
  Result<std::unique_ptr<ModelPool>> pool = make_pool(grow_nslabs, nareas, false);
  if (!pool) {
    ++report_.growth_refused;
    return;
  }
  ModelPool& p = **pool;
  p.index = static_cast<std::uint32_t>(pools_.size());
  p.last_active = report_.events;
  report_.pools.push_back({.kind = DynamicPoolKind::grown,
                           .start = p.start,
                           .nslabs = grow_nslabs,
                           .nareas = nareas,
                           .added_at_event = report_.events});
  by_start_[p.start] = &p;
  pools_.push_back(std::move(*pool));
  max_nareas_ = std::max(max_nareas_, nareas);
  ++report_.pools_grown;
  ++grown_live_;
  report_.grown_pools_peak = std::max(report_.grown_pools_peak, grown_live_);
  report_.total_slots_final += grow_nslabs;
  report_.total_slots_peak = std::max(report_.total_slots_peak, report_.total_slots_final);
  note_memory();
}

void DynamicReplayer::shrink_idle() {
  for (std::size_t i = 1; i < pools_.size(); ++i) {
    ModelPool* pool = pools_[i].get();
    if (pool != nullptr && pool->used == 0 &&
        report_.events - pool->last_active >= *options_.shrink_after) {
      give_back(*pool);
    }
  }
}

void DynamicReplayer::give_back(ModelPool& pool) {
  DynamicPoolReport& entry = report_.pools[pool.index];
  entry.given_back_at_event = report_.events;
  entry.maps = pool.maps;
  entry.hiwater_slots = pool.hiwater;
  by_start_.erase(pool.start);
  report_.total_slots_final -= pool.nslabs;
  --grown_live_;
  ++report_.pools_given_back;
  pools_[pool.index].reset();
  max_nareas_ = 1;
  for (const std::unique_ptr<ModelPool>& p : pools_) {
    max_nareas_ = p ? std::max(max_nareas_, p->nareas()) : max_nareas_;
  }
}

SlotRequest DynamicReplayer::request_for(const TraceEvent& e) const {
  const DeviceMasks& masks = masks_[e.device];
  SlotRequest request;
  request.orig = PhysAddr(e.orig);
  request.mapping_size = e.size;
  request.alloc_size = e.has(recorded::kAllocSize) ? e.alloc_size : 0;
  request.alloc_align_mask = e.alloc_align_mask;
  request.min_align_mask = masks.min_align_mask;
  request.seg_boundary_mask = masks.seg_boundary_mask;
  request.cpu = 0;  // each area is a pool of its own; the order picks the area
  request.dir = e.dir;
  request.owner = e.device;
  return request;
}

void DynamicReplayer::map(const TraceEvent& e) {
  ++report_.maps;
  const bool kernel_failed = is_kernel_failure(e);
  const std::uint64_t key = mapping_key(e);
  if (!kernel_failed) {
    forget_lost_mapping(key, e.device);
  }
  report_.kernel_failed_maps += kernel_failed ? 1 : 0;
  Result<std::uint64_t> ours = place(e, request_for(e));
  if (!ours) {
    map_failed(e, ours.error().code());
    if (kernel_failed) {
      ++report_.kernel_failed_also_here;
    } else {
      table_.insert(key, kFailedHere);
    }
    return;
  }
  if (kernel_failed) {
    // The kernel's caller saw an error and will never unmap: give it back.
    (void)release(*ours, e.device);
  } else {
    table_.insert(key, *ours);
  }
}

Result<std::uint64_t> DynamicReplayer::place(const TraceEvent& e, const SlotRequest& request) {
  Result<SearchPlan> plan = settings_.policy->plan(request);
  if (!plan || e.size == 0) {
    return make_error(Errc::invalid_argument, "a request the policy refuses");
  }
  // The kernel refuses a map larger than a segment before it searches: no
  // pool of any size could hold it, so it asks for no growth either.
  if (plan->nslots > kSegmentSlots) {
    return make_error(Errc::pool_full, "larger than a segment");
  }
  Result<std::uint64_t> found = make_error(Errc::pool_full, "no room");
  const unsigned cpu = e.cpu;
  if (options_.order == DynamicOrder::kernel) {
    // swiotlb_find_slots: for each area offset, every pool newest first.
    for (std::uint32_t offset = 0; offset < max_nareas_; ++offset) {
      for (auto it = pools_.rbegin(); it != pools_.rend(); ++it) {
        ModelPool* pool = it->get();
        if (pool == nullptr || offset >= pool->nareas()) {
          continue;
        }
        const std::uint32_t area = (cpu + offset) & (pool->nareas() - 1);
        if (try_area(e, *pool, area, request, found)) {
          return found;
        }
      }
    }
  } else {
    for (const std::unique_ptr<ModelPool>& pool : pools_) {
      if (!pool) {
        continue;
      }
      for (std::uint32_t offset = 0; offset < pool->nareas(); ++offset) {
        const std::uint32_t area = (cpu + offset) & (pool->nareas() - 1);
        if (try_area(e, *pool, area, request, found)) {
          return found;
        }
      }
    }
  }
  // No room anywhere: the kernel schedules its growth worker and, without
  // waiting for it (GFP_NOWAIT), makes the map a pool of its own.
  ++report_.maps_without_room;
  grow_pending_ = true;
  return place_transient(e, request, plan->nslots);
}

// Searches one area; true when the search is over (found, or a failure no
// other pool would change), with `out` set.
bool DynamicReplayer::try_area(const TraceEvent& e, ModelPool& pool, std::uint32_t area,
                               SlotRequest request, Result<std::uint64_t>& out) {
  SlotPool& slots = *pool.areas[area];
  request.pool_dma_start = DmaAddr(slots.start().value());
  Result<SlotMapping> mapping = slots.map(request);
  if (options_.on_attempt) {
    options_.on_attempt({e.line, pool.index, area, mapping.has_value()});
  }
  if (!mapping) {
    if (mapping.error().code() == Errc::pool_full) {
      return false;
    }
    out = std::move(mapping).error();
    return true;
  }
  const std::uint64_t nslots = mapping->nslots.value();
  pool.used += nslots;
  pool.hiwater = std::max(pool.hiwater, pool.used);
  ++pool.maps;
  pool.last_active = report_.events;
  used_ += nslots;
  report_.hiwater_slots = std::max(report_.hiwater_slots, used_);
  out = mapping->tlb_addr.value();
  return true;
}

Result<std::uint64_t> DynamicReplayer::place_transient(const TraceEvent& e,
                                                       const SlotRequest& request,
                                                       std::uint64_t nslots) {
  // A SlotPool holds whole segments; the kernel's pool is exactly nslots.
  Result<std::unique_ptr<ModelPool>> made =
      make_pool(align_up(nslots, kSegmentSlots), 1, /*transient=*/true);
  if (!made) {
    return std::move(made).error();
  }
  ModelPool& pool = **made;
  pool.counted = nslots;
  Result<std::uint64_t> found = make_error(Errc::pool_full, "no room in a transient pool");
  (void)try_area(e, pool, 0, request, found);
  if (!found) {
    return found;  // the kernel frees a transient pool its map did not fit in
  }
  ++report_.transient_pools;
  ++report_.transient_pools_final;
  report_.transient_slots_final += nslots;
  report_.transient_slots_peak =
      std::max(report_.transient_slots_peak, report_.transient_slots_final);
  by_start_[pool.start] = &pool;
  transient_[pool.start] = std::move(*made);
  note_memory();
  return found;
}

void DynamicReplayer::note_memory() {
  report_.peak_bytes =
      std::max(report_.peak_bytes, (report_.total_slots_final + report_.transient_slots_final)
                                       << kSlotShift);
}

// Unmaps our mapping at `ours`; a transient pool goes with its mapping.
// False when no pool holds a mapping there (the unmap's device locates the
// first slot, as in the kernel, and may disagree with the map's).
bool DynamicReplayer::release(std::uint64_t ours, std::uint16_t device) {
  auto it = by_start_.upper_bound(ours);
  if (it == by_start_.begin()) {
    return false;
  }
  ModelPool& pool = *std::prev(it)->second;
  if (ours >= pool.end()) {
    return false;
  }
  Result<MappingInfo> info =
      pool.area_of(ours).unmap(PhysAddr(ours), masks_[device].min_align_mask);
  if (!info) {
    return false;
  }
  const std::uint64_t nslots = info->nslots.value();
  pool.used -= nslots;
  pool.last_active = report_.events;
  used_ -= nslots;
  if (pool.transient) {
    report_.transient_slots_final -= pool.counted;
    --report_.transient_pools_final;
    const std::uint64_t start = pool.start;
    by_start_.erase(start);
    transient_.erase(start);  // last: it destroys `pool`
  }
  return true;
}

void DynamicReplayer::forget_lost_mapping(std::uint64_t key, std::uint16_t device) {
  const std::size_t position = table_.find(key);
  if (position == table_.kNone) {
    return;
  }
  const std::uint64_t lost = table_.at(position);
  table_.erase(position);
  ++report_.lost_unmaps;
  if (lost != kFailedHere) {
    (void)release(lost, device);
  }
}

void DynamicReplayer::unmap(const TraceEvent& e) {
  ++report_.unmaps;
  const std::size_t position = table_.find(e.tlb);
  if (position == table_.kNone) {
    note_unmatched(e);
    return;
  }
  const std::uint64_t live = table_.at(position);
  table_.erase(position);
  if (live == kFailedHere) {
    ++report_.unmaps_of_failed_maps;
    return;
  }
  if (!release(live, e.device)) {
    note_unmatched(e);
  }
}

void DynamicReplayer::map_failed(const TraceEvent& e, Errc code) {
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
}

void DynamicReplayer::note_unmatched(const TraceEvent& e) {
  ++report_.unmatched_unmaps;
  if (report_.first_unmatched_lines.size() < options_.failures_kept) {
    report_.first_unmatched_lines.push_back(e.line);
  }
}

DynamicReplayReport DynamicReplayer::finish(const Trace& header) {
  for (const std::unique_ptr<ModelPool>& pool : pools_) {
    if (pool) {
      DynamicPoolReport& entry = report_.pools[pool->index];
      entry.maps = pool->maps;
      entry.used_slots = pool->used;
      entry.hiwater_slots = pool->hiwater;
    }
  }
  report_.policy = settings_.policy_name;
  report_.order = options_.order;
  report_.nslabs = settings_.geometry.slot_count;
  report_.nareas = settings_.geometry.area_count;
  report_.start = settings_.geometry.start.value();
  report_.grow_nslabs = options_.grow_nslabs;
  report_.max_nslabs = settings_.max_nslabs;
  report_.shrink_after = options_.shrink_after;
  report_.grown_pools_final = grown_live_;
  report_.final_used_slots = used_;
  report_.final_bytes = (report_.total_slots_final + report_.transient_slots_final) << kSlotShift;
  report_.bad_lines = header.bad_line_count;
  report_.first_bad_lines = header.bad_lines;
  return std::move(report_);
}

Result<std::unique_ptr<DynamicReplayer>> open_replayer(const Trace& header,
                                                       const DynamicReplayOptions& options) {
  Result<Settings> settings = settings_for(header, options);
  if (!settings) {
    return std::move(settings).error();
  }
  auto replayer = std::make_unique<DynamicReplayer>(options, std::move(*settings));
  if (Status ok = replayer->start(); !ok) {
    return ok.error();
  }
  return replayer;
}

}  // namespace

std::string_view to_string(DynamicOrder order) {
  return order == DynamicOrder::kernel ? "kernel" : "oldest";
}

Result<DynamicOrder> parse_dynamic_order(std::string_view name) {
  if (name == "kernel") {
    return DynamicOrder::kernel;
  }
  if (name == "oldest") {
    return DynamicOrder::oldest;
  }
  return make_error(Errc::invalid_argument, "unknown search order '{}' (known: kernel, oldest)",
                    name);
}

std::string_view to_string(DynamicPoolKind kind) {
  return kind == DynamicPoolKind::default_pool ? "default" : "grown";
}

Result<DynamicReplayReport> replay_dynamic(const Trace& trace,
                                           const DynamicReplayOptions& options) {
  Result<std::unique_ptr<DynamicReplayer>> replayer = open_replayer(trace, options);
  if (!replayer) {
    return std::move(replayer).error();
  }
  replay_events(trace, **replayer, options.progress);
  return (*replayer)->finish(trace);
}

Result<DynamicReplayReport> replay_dynamic_text(std::string_view text, const ParseOptions& parse,
                                                const DynamicReplayOptions& options) {
  if (text.size() < kStreamingThreshold) {
    Result<Trace> trace = parse_trace(text, parse);
    if (!trace) {
      return std::move(trace).error();
    }
    return replay_dynamic(*trace, options);
  }
  TraceReader reader(text, parse);
  if (Status ok = reader.read_header(); !ok) {
    return ok.error();
  }
  Result<std::unique_ptr<DynamicReplayer>> replayer = open_replayer(reader.header(), options);
  if (!replayer) {
    return std::move(replayer).error();
  }
  EventPipeline pipeline(reader);
  if (Status ok = replay_blocks(pipeline, **replayer, reader, options.progress); !ok) {
    return ok.error();
  }
  return (*replayer)->finish(reader.header());
}

Result<DynamicReplayReport> replay_dynamic_file(const std::string& path, const ParseOptions& parse,
                                                const DynamicReplayOptions& options) {
  Result<std::unique_ptr<MappedFile>> file = MappedFile::open(path);
  if (!file) {
    return std::move(file).error();
  }
  Result<DynamicReplayReport> report = replay_dynamic_text((*file)->text(), parse, options);
  if (!report && report.error().code() == Errc::parse) {
    return make_error(Errc::parse, "{}: {}", path, report.error().message());
  }
  return report;
}

}  // namespace swiotlb::sim
