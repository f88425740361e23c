// Dynamic replay: a trace's events through a real IoTlb on the simulation
// backend, as dynamic_replay.h describes. This file only translates: trace
// events into IoTlb calls, and what the IoTlb reports into the replay's
// report. Every rule of growth, transient pools, search order and shrink is
// IoTlb's (docs/growth.md).
#include "swiotlb/sim/dynamic_replay.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>

#include "address_table.h"
#include "event_pipeline.h"
#include "mapped_file.h"
#include "replay_driver.h"
#include "swiotlb/core/address.h"
#include "swiotlb/core/config.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/backend.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "trace_reader.h"

namespace swiotlb::sim {
namespace {

constexpr std::size_t kTableInitialMappings = 1024;
// What the replay did with one of the trace's mappings: our bounce address,
// or kFailedHere (the kernel's error value, never a bounce address).
constexpr std::uint64_t kFailedHere = kInvalidAddress;
// max_nslabs, unless given, is this many times the default pool: IoTlb's
// default bound on growth.
constexpr std::uint64_t kMaxGrowthFactor = 16;

struct DeviceMasks {
  std::uint64_t min_align_mask = 0;
  std::uint64_t seg_boundary_mask = ~std::uint64_t{0};
};

bool is_kernel_failure(const TraceEvent& e) {
  return e.has(recorded::kTlb) && e.tlb == kInvalidAddress;
}

std::uint64_t mapping_key(const TraceEvent& e) {
  return e.has(recorded::kTlb) ? e.tlb : e.orig;
}

struct Settings {
  std::string policy_name;
  std::shared_ptr<const SlotPolicy> policy;
  PoolGeometry geometry{};
  std::uint64_t max_nslabs = 0;
  bool follow = false;  // the trace has pool events: add and delete pools where it says
};

// Whether a line of `text` is a pool_add: a streamed trace is replayed
// before all of it is read, and whether its pools follow pool events must
// be known from the start.
bool has_pool_add_line(std::string_view text) {
  constexpr std::string_view kOp = "pool_add";
  for (std::size_t at = text.find(kOp); at != std::string_view::npos; at = text.find(kOp, at + 1)) {
    std::size_t before = at;
    while (before > 0 && (text[before - 1] == ' ' || text[before - 1] == '\t')) {
      --before;
    }
    const std::size_t after = at + kOp.size();
    const bool line_start = before == 0 || text[before - 1] == '\n';
    const bool word_end = after == text.size() || text[after] == ' ' || text[after] == '\t';
    if (line_start && word_end) {
      return true;
    }
  }
  return false;
}

Result<Settings> settings_for(const Trace& header, const DynamicReplayOptions& options,
                              bool follow) {
  Settings s;
  s.follow = follow;
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
  if (options.watermark_percent == 0 || options.watermark_percent > 100) {
    return make_error(Errc::invalid_argument, "growth watermark {}% is not in 1..100",
                      options.watermark_percent);
  }
  s.max_nslabs = options.max_nslabs.value_or(kMaxGrowthFactor * s.geometry.slot_count);
  return s;
}

class DynamicReplayer final : public SearchObserver {
 public:
  DynamicReplayer(const DynamicReplayOptions& options, Settings settings)
      : options_(options), settings_(std::move(settings)), table_(kTableInitialMappings) {}

  // Builds the IoTlb. REQUIRES: called once, before any event.
  Status start();

  void add_device(const TraceDevice& device) {
    masks_.push_back({device.min_align_mask, device.seg_boundary_mask});
  }

  bool replay(const TraceEvent& e);
  // A pool_add or pool_del, between the events where the trace has it.
  void pool_event(const TracePoolEvent& p);
  std::uint64_t events() const { return report_.events; }

  DynamicReplayReport finish(const Trace& header);

  // SearchObserver: every pool area a map searched.
  void searched(PhysAddr pool_start, PoolKind kind, std::uint32_t area, bool found) override;

 private:
  void maintain();
  void note_pools(const IoTlbStats& stats);
  void map(const TraceEvent& e);
  Result<std::uint64_t> place(const TraceEvent& e);
  bool release(std::uint64_t ours);
  void forget_lost_mapping(std::uint64_t key);
  void unmap(const TraceEvent& e);
  void map_failed(const TraceEvent& e, Errc code);
  void note_unmatched(const TraceEvent& e);
  void note_totals();
  void not_followed(const TracePoolEvent& p);
  void compare(const TraceEvent& e, const Result<std::uint64_t>& ours);

  const DynamicReplayOptions& options_;
  Settings settings_;
  std::shared_ptr<SimulationBackend> backend_;
  std::unique_ptr<IoTlb> tlb_;
  AddressTable<std::uint64_t> table_;
  // What each live mapping of ours was mapped with, for its unmap's claim
  // and mask (the trace's unmap may name another device or size).
  struct Live {
    MappingClaim claim;
    std::uint64_t min_align_mask = 0;
  };
  std::unordered_map<std::uint64_t, Live> live_;
  std::vector<DeviceMasks> masks_;
  // Report index of each default or grown pool now in the IoTlb, by start.
  std::map<std::uint64_t, std::uint32_t> pool_index_;
  std::uint32_t line_ = 0;  // of the event being replayed
  std::uint64_t seen_grow_events_ = 0;
  std::uint64_t seen_shrunk_ = 0;
  std::uint64_t seen_transient_made_ = 0;
  // Following pool events: the start of each pool the trace named, and the
  // transient pool the trace gave the next map.
  std::unordered_map<std::string, std::uint64_t> named_;
  std::optional<TracePoolEvent> pending_transient_;
  DynamicReplayReport report_;
};

Status DynamicReplayer::start() {
  backend_ = std::make_shared<SimulationBackend>(settings_.geometry.start.value());
  IoTlbOptions options;
  options.nslabs = settings_.geometry.slot_count;
  options.nareas = settings_.geometry.area_count;
  options.policy = settings_.policy_name;
  options.backend = backend_;
  options.search_order = options_.order == DynamicOrder::kernel ? PoolSearchOrder::kernel
                                                                : PoolSearchOrder::oldest_first;
  options.growth.enabled = true;
  options.growth.pool_nslabs = options_.grow_nslabs;
  options.growth.pool_nareas = settings_.geometry.area_count;
  options.growth.max_nslabs = settings_.max_nslabs;
  options.growth.watermark_percent = options_.watermark_percent;
  options.growth.shrink_after = std::chrono::duration_cast<std::chrono::milliseconds>(
      SimulationBackend::kTick * static_cast<std::int64_t>(options_.shrink_after.value_or(0)));
  options.transient = true;
  if (settings_.follow) {
    options.growth.by_caller = true;
    options.transient_size = IoTlbOptions::TransientSize::exact_slots;
    report_.follows_pool_events = true;
    report_.slot_agreement = SlotAgreement{};
  }
  Result<std::unique_ptr<IoTlb>> tlb = IoTlb::create(options);
  if (!tlb) {
    return tlb.error();
  }
  tlb_ = std::move(*tlb);
  pool_index_[tlb_->start().value()] = 0;
  report_.pools.push_back({.kind = DynamicPoolKind::default_pool,
                           .start = tlb_->start().value(),
                           .nslabs = settings_.geometry.slot_count,
                           .nareas = settings_.geometry.area_count});
  note_totals();
  return {};
}

void DynamicReplayer::searched(PhysAddr pool_start, PoolKind kind, std::uint32_t area, bool found) {
  std::uint32_t index = kTransientPool;
  if (kind != PoolKind::transient) {
    const auto it = pool_index_.find(pool_start.value());
    index = it != pool_index_.end() ? it->second : kTransientPool;
  }
  if (found && index != kTransientPool) {
    ++report_.pools[index].maps;
  }
  if (options_.on_attempt) {
    options_.on_attempt({line_, index, area, found});
  }
}

// The growth and shrink the IoTlb asked for since the last event: done now,
// between two events, the soonest a kernel's worker could have helped.
void DynamicReplayer::maintain() {
  if (options_.shrink_after) {
    // A pool given back now leaves with what it served: read it first.
    note_pools(tlb_->stats());
  }
  tlb_->run_maintenance();
  const GrowthStats growth = tlb_->growth_stats();
  if (growth.grow_events != seen_grow_events_ || growth.shrunk_pools != seen_shrunk_) {
    seen_grow_events_ = growth.grow_events;
    seen_shrunk_ = growth.shrunk_pools;
    note_pools(tlb_->stats());
  }
}

// Records pools that came or went since the last look.
void DynamicReplayer::note_pools(const IoTlbStats& stats) {
  std::map<std::uint64_t, std::uint32_t> now;
  now[tlb_->start().value()] = 0;
  for (const DynamicPoolStats& d : stats.dynamic) {
    if (d.kind != PoolKind::grown) {
      continue;
    }
    auto it = pool_index_.find(d.start);
    std::uint32_t index = 0;
    if (it == pool_index_.end()) {
      index = static_cast<std::uint32_t>(report_.pools.size());
      report_.pools.push_back({.kind = DynamicPoolKind::grown,
                               .start = d.start,
                               .nslabs = d.nslabs,
                               .nareas = d.nareas,
                               .added_at_event = report_.events});
    } else {
      index = it->second;
    }
    DynamicPoolReport& entry = report_.pools[index];
    entry.used_slots = d.used;
    entry.hiwater_slots = std::max(entry.hiwater_slots, d.hiwater);
    now[d.start] = index;
  }
  for (const auto& [start, index] : pool_index_) {
    if (now.find(start) == now.end()) {
      report_.pools[index].given_back_at_event = report_.events;
      report_.pools[index].used_slots = 0;
    }
  }
  pool_index_ = std::move(now);
  note_totals();
}

void DynamicReplayer::note_totals() {
  const IoTlbStats s = tlb_->stats();
  report_.grown_pools_final = s.growth.grown_pools;
  report_.grown_pools_peak = std::max(report_.grown_pools_peak, s.growth.grown_pools);
  report_.total_slots_final = settings_.geometry.slot_count + s.growth.grown_nslabs;
  report_.total_slots_peak = std::max(report_.total_slots_peak, report_.total_slots_final);
  report_.transient_slots_final = s.growth.transient_nslabs;
  report_.transient_slots_peak = std::max(report_.transient_slots_peak, s.growth.transient_nslabs);
  report_.peak_bytes =
      std::max(report_.peak_bytes, (report_.total_slots_final + report_.transient_slots_final)
                                       << kSlotShift);
}

void DynamicReplayer::not_followed(const TracePoolEvent& p) {
  ++report_.pool_events_not_followed;
  if (report_.first_pool_events_not_followed.size() < options_.failures_kept) {
    report_.first_pool_events_not_followed.push_back(p.line);
  }
}

void DynamicReplayer::pool_event(const TracePoolEvent& p) {
  ++report_.pool_events;
  if (!settings_.follow) {
    return;  // a streamed trace whose scan found no pool_add: nothing to follow
  }
  if (p.op == TracePoolOp::add && p.kind == TracePoolKind::transient) {
    if (pending_transient_) {
      not_followed(*pending_transient_);  // no map came for it
    }
    pending_transient_ = p;
    return;
  }
  if (p.op == TracePoolOp::add) {
    backend_->place_next(p.start);
    Result<PhysAddr> added = tlb_->add_pool(0, p.nslabs, p.nareas);
    backend_->place_next(std::nullopt);
    if (!added) {
      not_followed(p);
      return;
    }
    named_[p.name] = added->value();
    note_pools(tlb_->stats());
    seen_grow_events_ = tlb_->growth_stats().grow_events;
    return;
  }
  const auto named = named_.find(p.name);
  if (named == named_.end()) {
    not_followed(p);  // a pool this replay never had
    return;
  }
  const std::uint64_t start = named->second;
  named_.erase(named);
  if (pool_index_.count(start) != 0) {
    if (Status removed = tlb_->remove_pool(PhysAddr(start)); !removed) {
      not_followed(p);
      return;
    }
    note_pools(tlb_->stats());
    seen_shrunk_ = tlb_->growth_stats().shrunk_pools;
    return;
  }
  // A transient pool: its unmap deleted it already, as the kernel's did.
  if (tlb_->contains(PhysAddr(start))) {
    not_followed(p);
  }
}

bool DynamicReplayer::replay(const TraceEvent& e) {
  maintain();
  line_ = e.line;
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
  backend_->advance();
  return true;
}

void DynamicReplayer::map(const TraceEvent& e) {
  ++report_.maps;
  const bool kernel_failed = is_kernel_failure(e);
  const std::uint64_t key = mapping_key(e);
  if (!kernel_failed) {
    forget_lost_mapping(key);
  }
  report_.kernel_failed_maps += kernel_failed ? 1 : 0;
  Result<std::uint64_t> ours = place(e);
  compare(e, ours);
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
    (void)release(*ours);
  } else {
    table_.insert(key, *ours);
  }
}

void DynamicReplayer::compare(const TraceEvent& e, const Result<std::uint64_t>& ours) {
  if (!report_.slot_agreement || !e.has(recorded::kTlb)) {
    return;
  }
  SlotAgreement& a = *report_.slot_agreement;
  ++a.compared;
  const bool same = ours ? *ours == e.tlb : is_kernel_failure(e);
  if (same) {
    ++a.matched;
  } else if (!a.first_mismatch_line) {
    a.first_mismatch_line = e.line;
  }
}

Result<std::uint64_t> DynamicReplayer::place(const TraceEvent& e) {
  const DeviceMasks& masks = masks_[e.device];
  BounceRequest request;
  request.orig = PhysAddr(e.orig);
  request.size = e.size;
  request.alloc_size = e.has(recorded::kAllocSize) ? e.alloc_size : 0;
  request.alloc_align_mask = e.alloc_align_mask;
  request.min_align_mask = masks.min_align_mask;
  request.seg_boundary_mask = masks.seg_boundary_mask;
  request.pool_dma_start = DmaAddr(tlb_->start().value());
  request.dir = e.dir;
  request.attrs = Attr::no_warn;
  request.owner = e.device;
  request.owner_name = "trace";
  request.cpu = e.cpu;
  request.observer = this;
  // The transient pool the trace gave this map, if it needs one, where the
  // kernel had it.
  std::optional<TracePoolEvent> given = std::move(pending_transient_);
  pending_transient_.reset();
  if (given) {
    backend_->place_next(given->start);
  }
  Result<PhysAddr> mapped = tlb_->map(request);
  const GrowthStats growth = tlb_->growth_stats();
  const bool transient = growth.transient_pools_total != seen_transient_made_;
  seen_transient_made_ = growth.transient_pools_total;
  if (given) {
    backend_->place_next(std::nullopt);
    if (transient && mapped && mapped->value() >= given->start &&
        mapped->value() < given->start + (given->nslabs << kSlotShift)) {
      named_[given->name] = given->start;
    } else {
      not_followed(*given);
    }
  }
  if (transient ||
      (!mapped && mapped.error().code() == Errc::pool_full && tlb_->fits_a_segment(request))) {
    ++report_.maps_without_room;
  }
  if (transient) {
    ++report_.transient_pools;
    note_totals();
  }
  if (!mapped) {
    return std::move(mapped).error();
  }
  live_[mapped->value()] = {{e.size, e.dir, e.device}, masks.min_align_mask};
  return mapped->value();
}

// Unmaps our mapping at `ours`; false when it is not a live one.
bool DynamicReplayer::release(std::uint64_t ours) {
  const auto it = live_.find(ours);
  if (it == live_.end()) {
    return false;
  }
  const std::uint64_t transient_before = tlb_->growth_stats().transient_pools;
  Status done =
      tlb_->unmap(PhysAddr(ours), it->second.min_align_mask, it->second.claim, Attr::skip_cpu_sync);
  if (!done) {
    return false;
  }
  live_.erase(it);
  if (tlb_->growth_stats().transient_pools != transient_before) {
    note_totals();
  }
  return true;
}

void DynamicReplayer::forget_lost_mapping(std::uint64_t key) {
  const std::size_t position = table_.find(key);
  if (position == table_.kNone) {
    return;
  }
  const std::uint64_t lost = table_.at(position);
  table_.erase(position);
  ++report_.lost_unmaps;
  if (lost != kFailedHere) {
    (void)release(lost);
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
  if (!release(live)) {
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
  if (pending_transient_) {
    not_followed(*pending_transient_);  // the trace ended before its map
    pending_transient_.reset();
  }
  note_pools(tlb_->stats());
  const IoTlbStats s = tlb_->stats();
  DynamicPoolReport& base = report_.pools[0];
  base.used_slots = s.pools[0].used;
  base.hiwater_slots = s.pools[0].hiwater;
  const GrowthStats& g = s.growth;
  report_.policy = settings_.policy_name;
  report_.order = options_.order;
  report_.nslabs = settings_.geometry.slot_count;
  report_.nareas = settings_.geometry.area_count;
  report_.start = settings_.geometry.start.value();
  report_.grow_nslabs = options_.grow_nslabs;
  report_.max_nslabs = settings_.max_nslabs;
  report_.shrink_after = options_.shrink_after;
  report_.pools_grown = g.grow_events;
  report_.growth_refused = g.limit_reached + g.grow_failures;
  report_.pools_given_back = g.shrunk_pools;
  report_.transient_pools_final = g.transient_pools;
  report_.hiwater_slots = tlb_->hiwater();
  report_.final_used_slots = tlb_->used();
  report_.final_bytes = (report_.total_slots_final + report_.transient_slots_final) << kSlotShift;
  report_.bad_lines = header.bad_line_count;
  report_.first_bad_lines = header.bad_lines;
  return std::move(report_);
}

Result<std::unique_ptr<DynamicReplayer>> open_replayer(const Trace& header,
                                                       const DynamicReplayOptions& options,
                                                       bool follow) {
  Result<Settings> settings = settings_for(header, options, follow);
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
  const bool follow = std::any_of(trace.pool_events.begin(), trace.pool_events.end(),
                                  [](const TracePoolEvent& p) { return p.op == TracePoolOp::add; });
  Result<std::unique_ptr<DynamicReplayer>> replayer = open_replayer(trace, options, follow);
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
  Result<std::unique_ptr<DynamicReplayer>> replayer =
      open_replayer(reader.header(), options, has_pool_add_line(text));
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
