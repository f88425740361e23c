// Replay: a trace's events through one SlotPool, counted.
//
// The Replayer keeps one table from the trace's name for a mapping (the
// kernel's bounce address, or the map's orig when that was not recorded) to
// what this pool did with it: our bounce address, or "failed here". Unmaps
// find their mapping there. The table grows with the live set (a few times
// in a whole replay); no event allocates otherwise.
//
// The same Replayer serves a parsed Trace (events in one array) and the
// streaming forms (events in blocks from an EventPipeline, devices arriving
// with the blocks).
#include "swiotlb/sim/replay.h"

#include <algorithm>
#include <memory>
#include <span>

#include "address_table.h"
#include "event_pipeline.h"
#include "mapped_file.h"
#include "pool_state_tracker.h"
#include "replay_driver.h"
#include "swiotlb/core/address.h"
#include "swiotlb/pool/slot_pool.h"
#include "trace_reader.h"

namespace swiotlb::sim {
namespace {

// The table starts with room for this many live mappings and doubles as
// needed: sized for the live set rather than the pool, it stays in cache.
constexpr std::size_t kTableInitialMappings = 1024;

// How many events before an unmap its slot's record is asked for: enough
// for a line to come from memory while the events between are replayed.
constexpr std::size_t kRecordsAhead = 8;

// What the pool did with one of the trace's mappings: our bounce address,
// or kFailedHere (never a bounce address: it is the kernel's error value).
using LiveMapping = std::uint64_t;
constexpr LiveMapping kFailedHere = kInvalidAddress;

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
std::uint64_t mapping_key(const TraceEvent& e) {
  return e.has(recorded::kTlb) ? e.tlb : e.orig;
}

// What a replay starts from when the trace does not start from an empty pool.
struct MidStream {
  std::vector<TraceState> states;       // in line order
  std::vector<EarlierMapping> earlier;  // mappings made before the first event
};

class Replayer {
 public:
  Replayer(const ReplayOptions& options, SlotPool& pool, bool same_geometry, MidStream mid)
      : options_(options),
        pool_(pool),
        table_(kTableInitialMappings),
        same_geometry_(same_geometry),
        tracker_(pool, std::move(mid.states)),
        earlier_(std::move(mid.earlier)) {}

  void add_device(const TraceDevice& device) {
    masks_.push_back({device.min_align_mask, device.seg_boundary_mask});
  }

  // Occupies the slots of the mappings made before the first event.
  // REQUIRES: every device the earlier mappings name was added.
  void preset();

  // Unmaps of addresses the replay never mapped, each a mapping made before
  // the trace's first event if the trace is a mid-stream capture.
  std::vector<EarlierMapping> take_unexplained_unmaps() { return std::move(unexplained_); }

  // The events that come next (replay_driver.h). Each unmap's mapping is
  // looked up a few events before it comes, and its slot's record loaded
  // meanwhile; the table's line for that lookup was asked for a few events
  // earlier still. Both are out of the cache more often than not: the
  // table's keys are random and the records are spread over the pool.
  void look_ahead(std::span<const TraceEvent> upcoming) const {
    if (upcoming.size() > 2 * kRecordsAhead) {
      const TraceEvent& later = upcoming[2 * kRecordsAhead];
      table_.prefetch(later.op == TraceOp::map ? mapping_key(later) : later.tlb);
    }
    if (upcoming.size() > kRecordsAhead && upcoming[kRecordsAhead].op == TraceOp::unmap) {
      const TraceEvent& unmap = upcoming[kRecordsAhead];
      const std::size_t position = table_.find(unmap.tlb);
      if (position != table_.kNone && table_.at(position) != kFailedHere) {
        pool_.prefetch(PhysAddr(table_.at(position)), unmap.size);
      }
    }
  }

  // Replays one event; false once the replay should stop.
  bool replay(const TraceEvent& e) {
    tracker_.advance_to(e.line);
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
    return !stop_;
  }

  std::uint64_t events() const { return report_.events; }
  bool stopped() const { return stop_; }

  // The report, with the pool's state at the end. REQUIRES: called once.
  ReplayReport finish();

 private:
  void map(const TraceEvent& e);
  void unmap(const TraceEvent& e);
  SlotRequest request_for(const TraceEvent& e, const DeviceMasks& masks) const;
  void forget_lost_mapping(LiveMapping lost, std::uint16_t device);
  void map_failed(const TraceEvent& e, Errc code);
  void compare(const TraceEvent& e, bool same);
  void note_unmatched(const TraceEvent& e);

  const ReplayOptions& options_;
  SlotPool& pool_;
  std::vector<DeviceMasks> masks_;
  AddressTable<LiveMapping> table_;
  ReplayReport report_;
  SlotAgreement agreement_;
  bool same_geometry_;
  bool stop_ = false;
  PoolStateTracker tracker_;
  std::vector<EarlierMapping> earlier_;
  std::vector<EarlierMapping> unexplained_;
};

void Replayer::preset() {
  for (const EarlierMapping& m : earlier_) {
    TraceEvent e;
    e.orig = m.tlb;  // the kernel keeps orig's low bits in the bounce address
    e.size = m.size;
    e.device = m.device;
    const DeviceMasks masks{m.min_align_mask, m.seg_boundary_mask};
    if (table_.find(m.tlb) == table_.kNone && tracker_.occupy(m, request_for(e, masks))) {
      table_.insert(m.tlb, m.tlb);
    }
  }
  earlier_.clear();
}

ReplayReport Replayer::finish() {
  report_.hiwater_slots = pool_.hiwater();
  report_.final_used_slots = pool_.used();
  report_.largest_free_run_slots = pool_.largest_free_run();
  report_.pool_state = tracker_.finish(agreement_.left_out);
  if (!same_geometry_) {
    report_.slot_agreement_unavailable =
        "the pool's geometry differs from the trace's (start, nslabs, nareas)";
  } else if (agreement_.compared == 0 && agreement_.left_out != 0) {
    report_.slot_agreement_unavailable = report_.pool_state.unknown_reason;
  } else if (agreement_.compared == 0) {
    report_.slot_agreement_unavailable = "the trace does not record the kernel's bounce addresses";
  } else {
    report_.slot_agreement = agreement_;
  }
  return std::move(report_);
}

SlotRequest Replayer::request_for(const TraceEvent& e, const DeviceMasks& masks) const {
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
  // Where the map's entry goes. A live entry already there means the
  // kernel freed that address without the trace seeing the unmap.
  const std::size_t position = kernel_failed ? table_.kNone : table_.find_or_free(key);
  if (!kernel_failed && table_.holds(position)) {
    forget_lost_mapping(table_.at(position), e.device);
  }
  Result<SlotMapping> mapping = pool_.map(request_for(e, masks_[e.device]));
  report_.kernel_failed_maps += kernel_failed ? 1 : 0;
  if (!mapping) {
    map_failed(e, mapping.error().code());
    if (kernel_failed) {
      ++report_.kernel_failed_also_here;
    } else {
      table_.put(position, key, kFailedHere);
    }
    compare(e, kernel_failed);
    return;
  }
  const std::uint64_t ours = mapping->tlb_addr.value();
  if (kernel_failed) {
    // The kernel's caller saw an error and will never unmap: give it back.
    (void)pool_.unmap(mapping->tlb_addr, masks_[e.device].min_align_mask);
  } else {
    table_.put(position, key, ours);
  }
  compare(e, !kernel_failed && ours == e.tlb);
}

// The mapping a new map's key still names, which the kernel freed unseen:
// its slots go back (its table entry takes the new map).
void Replayer::forget_lost_mapping(LiveMapping lost, std::uint16_t device) {
  ++report_.lost_unmaps;
  if (lost != kFailedHere) {
    (void)pool_.unmap(PhysAddr(lost), masks_[device].min_align_mask);
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
  if (!same_geometry_ || !e.has(recorded::kTlb)) {
    return;
  }
  if (!tracker_.known()) {
    ++agreement_.left_out;
    return;
  }
  tracker_.compared_at(e.line);
  ++agreement_.compared;
  if (same) {
    ++agreement_.matched;
  } else if (!agreement_.first_mismatch_line) {
    agreement_.first_mismatch_line = e.line;
  }
}

void Replayer::unmap(const TraceEvent& e) {
  ++report_.unmaps;
  const std::size_t position = table_.find(e.tlb);
  if (position == table_.kNone) {
    if (e.has(recorded::kSize)) {
      unexplained_.push_back({e.tlb, e.size, e.device, e.line});
    }
    note_unmatched(e);
    return;
  }
  const LiveMapping live = table_.at(position);
  table_.erase(position);
  if (live == kFailedHere) {
    ++report_.unmaps_of_failed_maps;
    return;
  }
  // The device of the unmap locates the first slot, as in the kernel.
  if (!pool_.unmap(PhysAddr(live), masks_[e.device].min_align_mask)) {
    note_unmatched(e);
  }
}

void Replayer::note_unmatched(const TraceEvent& e) {
  ++report_.unmatched_unmaps;
  if (report_.first_unmatched_lines.size() < options_.failures_kept) {
    report_.first_unmatched_lines.push_back(e.line);
  }
}

// Copies each earlier mapping's device masks from `devices`.
void describe_devices(std::vector<EarlierMapping>& earlier,
                      const std::vector<TraceDevice>& devices) {
  for (EarlierMapping& m : earlier) {
    if (m.device < devices.size()) {
      m.min_align_mask = devices[m.device].min_align_mask;
      m.seg_boundary_mask = devices[m.device].seg_boundary_mask;
    }
  }
}

// Whether the pool held mappings before the first event, by the trace's
// `# state` lines. Without them nothing is inferred: an unmap of an address
// never mapped is then as likely an event the capture lost (trace_pipe drops
// events when its buffer overflows) as a mapping made before it.
bool may_hold_earlier_mappings(const std::vector<TraceState>& states) {
  for (const TraceState& s : states) {
    if (!s.area && s.total_used) {
      return *s.total_used != 0;
    }
  }
  return !states.empty();
}

// The mappings a trace shows only by their unmaps: addresses unmapped while
// no map of the trace holds them (what Replayer::take_unexplained_unmaps
// finds, without a pool).
std::vector<EarlierMapping> find_earlier_mappings(const Trace& trace,
                                                  const std::vector<TraceDevice>& devices) {
  std::vector<EarlierMapping> earlier;
  if (!trace.has_kernel_addresses() || !may_hold_earlier_mappings(trace.states)) {
    return earlier;
  }
  AddressTable<char> live(kTableInitialMappings);
  for (const TraceEvent& e : trace.events) {
    if (e.op == TraceOp::map && !is_kernel_failure(e)) {
      if (live.find(mapping_key(e)) == live.kNone) {
        live.insert(mapping_key(e), 0);
      }
    } else if (e.op == TraceOp::unmap) {
      const std::size_t position = live.find(e.tlb);
      if (position != live.kNone) {
        live.erase(position);
      } else if (e.has(recorded::kSize)) {
        earlier.push_back({e.tlb, e.size, e.device, e.line});
      }
    }
  }
  describe_devices(earlier, devices);
  return earlier;
}

// The pool a replay runs on, built from the trace's header and the options.
struct Session {
  std::string policy;
  PoolGeometry geometry{};
  bool same_as_trace = false;
  std::unique_ptr<SlotPool> pool;
};

Result<Session> open_session(const Trace& header, const ReplayOptions& options) {
  Session s;
  s.policy = options.policy.empty() ? std::string(default_policy_for(header)) : options.policy;
  Result<std::shared_ptr<const SlotPolicy>> policy = make_slot_policy(s.policy);
  if (!policy) {
    return std::move(policy).error();
  }
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
  s.same_as_trace = p && s.geometry.slot_count == p->nslabs && s.geometry.area_count == p->nareas &&
                    s.geometry.start.value() == p->start;
  Result<std::unique_ptr<SlotPool>> pool = SlotPool::create(s.geometry, *policy);
  if (!pool) {
    return std::move(pool).error();
  }
  s.pool = std::move(*pool);
  return s;
}

ReplayReport finish_report(Replayer& replayer, const Session& session, const Trace& header) {
  ReplayReport report = replayer.finish();
  report.policy = session.policy;
  report.nslabs = session.geometry.slot_count;
  report.nareas = session.geometry.area_count;
  report.start = session.geometry.start.value();
  report.bad_lines = header.bad_line_count;
  report.first_bad_lines = header.bad_lines;
  return report;
}

// A replay streamed from text, and what it learnt on the way that a second
// replay would need to know from the start.
struct StreamedReplay {
  ReplayReport report;
  std::vector<EarlierMapping> unexplained;
  std::vector<TraceState> states;
  std::size_t states_in_header = 0;  // of `states`, those read before the first event
  std::vector<TraceDevice> devices;
};

Result<StreamedReplay> replay_stream(std::string_view text, const ParseOptions& parse,
                                     const ReplayOptions& options, MidStream mid) {
  TraceReader reader(text, parse);
  if (Status ok = reader.read_header(); !ok) {
    return ok.error();
  }
  Result<Session> session = open_session(reader.header(), options);
  if (!session) {
    return std::move(session).error();
  }
  StreamedReplay out;
  out.states_in_header = reader.header().states.size();
  if (mid.states.empty()) {
    mid.states = reader.header().states;
  }
  Replayer replayer(options, *session->pool, session->same_as_trace, std::move(mid));
  replayer.preset();
  EventPipeline pipeline(reader);
  if (Status ok = replay_blocks(pipeline, replayer, reader, options.progress); !ok) {
    return ok.error();
  }
  out.report = finish_report(replayer, *session, reader.header());
  out.report.stopped_early = replayer.stopped();
  out.unexplained = replayer.take_unexplained_unmaps();
  out.states = reader.header().states;
  out.devices = reader.header().devices;
  return out;
}

}  // namespace

Result<ReplayReport> replay_trace(const Trace& trace, const ReplayOptions& options) {
  Result<Session> session = open_session(trace, options);
  if (!session) {
    return std::move(session).error();
  }
  Replayer replayer(options, *session->pool, session->same_as_trace,
                    MidStream{trace.states, find_earlier_mappings(trace, trace.devices)});
  replayer.preset();
  replay_events(trace, replayer, options.progress);
  ReplayReport report = finish_report(replayer, *session, trace);
  report.stopped_early = replayer.stopped() && report.events < trace.events.size();
  return report;
}

Result<ReplayReport> replay_trace_text(std::string_view text, const ParseOptions& parse,
                                       const ReplayOptions& options) {
  if (text.size() < kStreamingThreshold) {
    Result<Trace> trace = parse_trace(text, parse);
    if (!trace) {
      return std::move(trace).error();
    }
    return replay_trace(*trace, options);
  }
  Result<StreamedReplay> first = replay_stream(text, parse, options, MidStream{});
  if (!first) {
    return std::move(first).error();
  }
  // A mid-stream capture shows its earlier mappings, and perhaps its state,
  // only on the way: replay it again from the state they give.
  if (first->states.size() == first->states_in_header &&
      (first->unexplained.empty() || !may_hold_earlier_mappings(first->states))) {
    return std::move(first->report);
  }
  if (!may_hold_earlier_mappings(first->states)) {
    first->unexplained.clear();
  }
  describe_devices(first->unexplained, first->devices);
  Result<StreamedReplay> second =
      replay_stream(text, parse, options, MidStream{first->states, first->unexplained});
  if (!second) {
    return std::move(second).error();
  }
  return std::move(second->report);
}

Result<ReplayReport> replay_trace_file(const std::string& path, const ParseOptions& parse,
                                       const ReplayOptions& options) {
  Result<std::unique_ptr<MappedFile>> file = MappedFile::open(path);
  if (!file) {
    return std::move(file).error();
  }
  Result<ReplayReport> report = replay_trace_text((*file)->text(), parse, options);
  if (!report && report.error().code() == Errc::parse) {
    return make_error(Errc::parse, "{}: {}", path, report.error().message());
  }
  return report;
}

}  // namespace swiotlb::sim
