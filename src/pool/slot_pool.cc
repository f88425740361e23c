// SlotPool: the slot bookkeeping of one pool, shared by every policy.
//
// The search itself is the policy's; everything around it is the kernel's
// and the same for every policy: the order in which areas are tried, the
// free-run counters (`list`: how many free slots follow, up to the end of
// the segment), how a found run is taken and how a released run is merged
// with its free neighbours.
//
// A policy may keep an index of its own per area (an AreaState); the pool
// tells it of every run taken and released, right after updating `list`.
//
// Synchronization: a slot belongs to the area that contains it, and all of
// its fields, and the area's policy state, are read and written only under
// that area's lock. A mapping never spans two areas (areas hold whole
// segments and a mapping never crosses a segment), so one lock covers a
// whole mapping. The statistics are per area as well; only the high-water
// mark's slow path looks at every area (raise_hiwater).
//
// Run cache: in a pool whose policy caches runs, each area also has a
// RunCache (run_cache.h) whose lock guards the area's slot records, so
// that a map served from the cache and an unmap that parks its run there
// take that lock alone. Whatever changes the free-run counters still takes
// the area's lock, and the cache's lock after it when it writes records.
//
// Pools over an image (create_in, attach, adopted mappings) are in
// slot_pool_image.cc.
#include "swiotlb/pool/slot_pool.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include "slot_pool_area.h"
#include "slot_record_run.h"
#include "slot_records_check.h"
#include "swiotlb/core/check.h"
#include "swiotlb/core/config.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/pool/linux_policy.h"

namespace swiotlb {

namespace {

// A free slot's record, copied whole rather than built field by field.
constexpr SlotRecord kEmptyRecord{};

constexpr std::uint32_t segment_offset(std::uint64_t slot) {
  return static_cast<std::uint32_t>(slot & (kSegmentSlots - 1));
}

// Gives the free run that ends where slot `end` starts (within end's
// segment) counters that count on from `count`: its last slot gets
// count + 1, the one before count + 2, and so on back to its first. The
// walk back only finds where the run starts; the counters are written
// forward, which the compiler does several at a time.
void count_on_free_run_before(std::uint16_t* list, std::uint64_t end, std::uint16_t count) {
  const std::uint64_t segment_start = end - segment_offset(end);
  std::uint64_t start = end;
  while (start > segment_start && list[start - 1] != 0) {
    --start;
  }
  auto counter = static_cast<std::uint16_t>(count + (end - start));
  for (std::uint16_t* p = list + start; p != list + end; ++p) {
    *p = counter--;
  }
}

// Runs `read` with the lock that guards an area's slot records held: its
// run cache's when it has one, else the area's own.
template <class Read>
decltype(auto) with_records(SpinLock& area_lock, RunCache* cache, Read&& read) {
  if (cache != nullptr) {
    std::lock_guard records(cache->lock);
    return read();
  }
  std::lock_guard guard(area_lock);
  return read();
}

// Slots of an area held by mappings: those taken from its counters, less
// the runs parked in its run cache. The two are written under different
// locks (the area's, the cache's), so, read together without both, the
// difference may be off while a map or unmap is in flight, and is clamped.
template <class Area>
std::uint64_t mapped_slots(const Area& area) {
  const std::uint64_t taken = area.used.load(std::memory_order_relaxed);
  const std::uint64_t cached = area.cache ? area.cache->cached_slots() : 0;
  return taken > cached ? taken - cached : 0;
}

// The slots of the mapping handed out at `tlb_addr` whose first slot is
// `first`, as the kernel counts them: the first slot's remaining size plus
// the address's offset in its slot.
std::uint64_t mapping_slots(const SlotRecord& first, PhysAddr tlb_addr) {
  return nr_slots(first.alloc_size + (tlb_addr.value() & (kSlotSize - 1)));
}

// The cache holds at most an eighth of its area, and at least one run of
// the longest length it caches.
std::uint64_t cache_budget(std::uint32_t area_slots) {
  return std::max<std::uint64_t>(area_slots / 8, kMaxCachedSlots);
}

}  // namespace

Status SlotPool::check_create_args(const PoolGeometry& geometry, const SlotPolicy* policy) {
  if (policy == nullptr) {
    return make_error(Errc::invalid_argument, "a pool needs a slot policy");
  }
  if (Status valid = validate_geometry(geometry.slot_count, geometry.area_count); !valid) {
    return valid.error();
  }
  if (geometry.start.value() % kSlotSize != 0) {
    return make_error(Errc::invalid_argument, "pool start {:#x} is not aligned to a {}-byte slot",
                      geometry.start.value(), kSlotSize);
  }
  // The pool's last byte must have an address: a start near the top of the
  // address space would wrap its end to 0.
  const std::uint64_t last_offset = (geometry.slot_count << kSlotShift) - 1;
  if (geometry.start.value() > std::numeric_limits<std::uint64_t>::max() - last_offset) {
    return make_error(Errc::invalid_argument,
                      "pool start {:#x} with {} slots runs past the end of the 64-bit address "
                      "space",
                      geometry.start.value(), geometry.slot_count);
  }
  return {};
}

Result<std::unique_ptr<SlotPool>> SlotPool::create(const PoolGeometry& geometry,
                                                   std::shared_ptr<const SlotPolicy> policy) {
  if (Status valid = check_create_args(geometry, policy.get()); !valid) {
    return valid.error();
  }
  return std::unique_ptr<SlotPool>(new SlotPool(geometry, std::move(policy), nullptr));
}

SlotPool::SlotPool(const PoolGeometry& geometry, std::shared_ptr<const SlotPolicy> policy,
                   std::byte* image)
    : start_(geometry.start),
      slot_count_(geometry.slot_count),
      area_count_(geometry.area_count),
      area_slots_(static_cast<std::uint32_t>(geometry.slot_count / geometry.area_count)),
      area_shift_(std::has_single_bit(area_slots_) ? std::countr_zero(area_slots_) : -1),
      policy_(std::move(policy)),
      areas_(new Area[geometry.area_count]) {
  if (image == nullptr) {
    owned_list_.reset(new std::uint16_t[slot_count_]);
    owned_slots_.reset(new Slot[slot_count_]);
    list_ = owned_list_.get();
    slots_ = owned_slots_.get();
    format_free_runs();
  } else {
    const PoolImageLayout layout = pool_image_layout(slot_count_);
    list_ = reinterpret_cast<std::uint16_t*>(image + layout.list_offset);
    slots_ = reinterpret_cast<Slot*>(image + layout.slots_offset);
  }
  // A run cache lives in this process only: a pool over an image, which
  // another process may take over, keeps every freed run in its counters.
  caches_runs_ = image == nullptr && policy_->caches_runs();
  for (std::uint32_t a = 0; a < area_count_; ++a) {
    areas_[a].state = policy_->make_area_state(area_slots_);
    if (caches_runs_) {
      areas_[a].cache.emplace(cache_budget(area_slots_));
    }
  }
}

SlotPool::~SlotPool() {
  if (held_image_ != nullptr) {
    record_holder(0);
  }
}

void SlotPool::format_free_runs() {
  for (std::uint64_t i = 0; i < slot_count_; ++i) {
    list_[i] = static_cast<std::uint16_t>(kSegmentSlots - segment_offset(i));
  }
}

std::uint32_t SlotPool::area_index_of(std::uint64_t slot) const {
  // Areas are usually a power of two slots long: a shift, not a division,
  // on every unmap.
  return static_cast<std::uint32_t>(area_shift_ >= 0 ? slot >> area_shift_ : slot / area_slots_);
}

SlotPool::Area& SlotPool::area_of(std::uint64_t slot) const {
  return areas_[area_index_of(slot)];
}

namespace {

// No pool holds more than kMaxSlotCount slots, so a larger mapping can
// never be served; refusing it up front keeps every slot count below 2^32.
constexpr std::uint64_t kMaxMappingBytes = kMaxSlotCount << kSlotShift;

}  // namespace

// One named result and one return (every error comes from
// invalid_request), so that the plan is built where the caller wants it
// rather than copied there: a copy reads, 16 bytes at a time, fields the
// policy has just written 4 bytes at a time, and stalls.
Result<SearchPlan> SlotPool::make_plan(const SlotRequest& request) const {
  const std::uint64_t boundary = request.seg_boundary_mask;
  const bool valid = request.mapping_size != 0 && request.mapping_size <= kMaxMappingBytes &&
                     request.alloc_size <= kMaxMappingBytes &&
                     request.alloc_align_mask < kMaxMappingBytes &&
                     (boundary & (boundary + 1)) == 0;
  Result<SearchPlan> plan =
      valid ? policy_->plan(request) : Result<SearchPlan>(invalid_request(request));
  if (plan) {
    plan->tbl_dma = request.pool_dma_start.value() & boundary;
    plan->max_slots = (boundary >> kSlotShift) + 1;
  }
  return plan;
}

Error SlotPool::invalid_request(const SlotRequest& request) {
  if (request.mapping_size > kMaxMappingBytes || request.alloc_size > kMaxMappingBytes ||
      request.alloc_align_mask >= kMaxMappingBytes) {
    return make_error(Errc::invalid_argument,
                      "a mapping of {} bytes (allocation {} bytes, alignment mask {:#x}) is "
                      "larger than any pool: at most {} bytes",
                      request.mapping_size, request.alloc_size, request.alloc_align_mask,
                      kMaxMappingBytes);
  }
  if (request.mapping_size == 0) {
    return make_error(Errc::invalid_argument, "a mapping of 0 bytes needs no slots");
  }
  return make_error(Errc::invalid_argument,
                    "segment boundary mask {:#x} is not of the form 2^n - 1",
                    request.seg_boundary_mask);
}

// A streaming request the run cache may serve is tried there first, inline
// (map_streaming); everything else (a miss, an alignment, a long run, a
// pool without a cache) is map_searched, out of line, so that this stays
// short.
Result<SlotMapping> SlotPool::map(const SlotRequest& request) {
  StreamingRoute route;
  const bool streaming = streaming_route(request, route);
  if (streaming) {
    if (const StreamingMapping hit =
            map_streaming(route, request.orig, request.mapping_size, request.dir, request.cpu)) {
      return mapping_of(hit);
    }
  }
  return map_searched(request, streaming);
}

// map() past the run cache. `cache_tried`: map() has already tried the
// run cache for this request (map_streaming), so a miss does not look
// there twice; an aligned request has not, and is tried here.
Result<SlotMapping> SlotPool::map_searched(const SlotRequest& request, bool cache_tried) {
  SlotMapping mapping;
  const std::uint32_t first_area = request.cpu & (area_count_ - 1);
  Result<SearchPlan> plan = make_plan(request);
  if (!plan) {
    return std::move(plan).error();
  }
  if (caches_runs_ && !cache_tried && plan->nslots <= kMaxCachedSlots &&
      take_cached(first_area, *plan, request, mapping)) {
    return mapping;
  }
  const std::uint32_t areas = request.one_area ? 1 : area_count_;
  for (std::uint32_t i = 0; i < areas; ++i) {
    const std::uint32_t a = (first_area + i) & (area_count_ - 1);
    Area& area = areas_[a];
    std::unique_lock guard(area.lock);
    // Cached runs are taken, but a search that needs them drains them.
    const std::uint64_t cached = area.cache ? area.cache->cached_slots() : 0;
    if (plan->nslots > area_slots_ - area.used.load(std::memory_order_relaxed) + cached) {
      continue;
    }
    auto search = [&] {
      const AreaView view{list_, a * area_slots_, area_slots_, area.cursor, area.state.get()};
      const AreaSearch result = policy_->search_area(view, *plan);
      area.search_steps += result.steps;
      mapping.search_steps += result.steps;
      return result;
    };
    AreaSearch found = search();
    if (found.outcome == AreaSearch::Outcome::not_found && cached != 0) {
      // The cache may hold what the search needs: give it all back and
      // search again, so that no map fails for slots parked there.
      drain_locked(area);
      found = search();
    }
    if (found.outcome == AreaSearch::Outcome::found) {
      commit_locked(area, a, found.index, *plan, request, mapping);
      const bool past_gate = mapped_slots(area) > area.gate.load(std::memory_order_relaxed);
      guard.unlock();
      if (past_gate) {
        raise_hiwater();
      }
      return mapping;
    }
    if (found.outcome == AreaSearch::Outcome::would_spin) {
      return make_error(Errc::search_would_spin,
                        "the {} search for {} slots in area {} (cursor {}, stride {}) never "
                        "returns to its start: the kernel would spin here with the area locked",
                        policy_->name(), plan->nslots, a, area.cursor, plan->stride);
    }
  }
  failures_.fetch_add(1, std::memory_order_relaxed);
  return full_error(*plan);
}

bool SlotPool::streaming_route(const SlotRequest& request, StreamingRoute& route) const {
  const std::uint64_t boundary = request.seg_boundary_mask;
  // What make_plan would refuse, or plans with an alignment, goes to map().
  if (!caches_runs_ || request.alloc_align_mask != 0 || request.alloc_size > kMaxMappingBytes ||
      (boundary & (boundary + 1)) != 0) {
    return false;
  }
  route.min_align_mask = request.min_align_mask;
  route.tbl_dma = request.pool_dma_start.value() & boundary;
  route.max_slots = (boundary >> kSlotShift) + 1;
  route.owner = request.owner;
  return true;
}

bool SlotPool::map_cached(const SlotRequest& request, SlotMapping& mapping) {
  StreamingRoute route;
  if (!streaming_route(request, route)) {
    return false;
  }
  const StreamingMapping hit =
      map_streaming(route, request.orig, request.mapping_size, request.dir, request.cpu);
  if (!hit) {
    return false;
  }
  mapping = mapping_of(hit);
  return true;
}

// A route's request has no alloc_align_mask, so it keeps less than a slot
// of its buffer's offset: its run has no pad slots, and starts at the slot
// its address is in.
SlotMapping SlotPool::mapping_of(const StreamingMapping& hit) const {
  const auto first = static_cast<std::uint32_t>((hit.tlb_addr - start_) >> kSlotShift);
  // The caller's own mapping: no other thread writes its head record.
  SWIOTLB_CHECK(slots_[first].state == MappingState::live && slots_[first].pad_slots == 0,
                "a route's hit is a live run with no pad slots");
  SlotMapping mapping;
  mapping.tlb_addr = hit.tlb_addr;
  mapping.index = SlotIndex(first);
  mapping.nslots = hit.nslots;
  mapping.area = area_index_of(first);
  return mapping;
}

namespace {

// The request a route and a buffer stand for, as map() would get it.
SlotRequest streaming_request(const StreamingRoute& route, PhysAddr orig, std::uint64_t size,
                              Direction dir) {
  SlotRequest request;
  request.orig = orig;
  request.mapping_size = size;
  request.min_align_mask = route.min_align_mask;
  request.dir = dir;
  request.owner = route.owner;
  return request;
}

// Whether map_streaming's plan for `size` bytes through `route` is one
// slot at offset 0 whose every candidate fits (map_one_slot): at most a
// slot of bytes, no kept address bits, and slot 0 at a slot-aligned device
// address. A size of 0 wraps to the largest value and is not.
bool takes_one_slot(const StreamingRoute& route, std::uint64_t size) {
  return (route.min_align_mask | (route.tbl_dma & (kSlotSize - 1))) == 0 && size - 1 < kSlotSize;
}

// map()'s plan for that request (mainline_plan: every policy that caches
// runs plans as mainline does), with the route's boundary.
void streaming_plan(const StreamingRoute& route, const SlotRequest& request, SearchPlan& plan) {
  mainline_plan(request, plan);
  plan.tbl_dma = route.tbl_dma;
  plan.max_slots = route.max_slots;
}

}  // namespace

// The request and the plan are locals the compiler keeps in registers, and
// every call out of here (the slow cases) is handed the route and the
// buffer, never their address: what no hit reads (the stride, the
// reported size) is then never computed, nor stored. What the caller is
// told comes back in two registers, not through memory it must first
// clear.
StreamingMapping SlotPool::map_streaming(const StreamingRoute& route, PhysAddr orig,
                                         std::uint64_t size, Direction dir, unsigned cpu) {
  if (takes_one_slot(route, size)) {
    return map_one_slot(route, orig, size, dir, cpu);
  }
  const SlotRequest request = streaming_request(route, orig, size, dir);
  SearchPlan plan;
  streaming_plan(route, request, plan);
  // The kept offset may take a request past the longest cached run.
  if (size == 0 || plan.nslots > kMaxCachedSlots) {
    return {};
  }
  return take_newest_streaming(
      route, orig, size, dir, cpu, plan.nslots,
      [&plan](std::uint32_t run) { return run_fits(plan, run); },
      [&](std::uint32_t first) {
        if (!rewrite_cached_records(first, plan, request)) [[unlikely]] {
          rewrite_streaming_records(first, route, orig, size, dir);
        }
        return run_tlb_addr(first, plan);
      });
}

// map_streaming for a buffer of one slot or less through a route that
// keeps no address bits (takes_one_slot): most small I/O. Its plan would be
// one slot at offset 0 with no pad slots and no alignment beyond a slot,
// and a run of one slot crosses no boundary, so the newest cached run of
// one slot fits as it stands: nothing to plan, nothing to test. Its record
// is written afresh and then given the mapping's fields, as write_records
// and write_head would leave it: a few stores, where testing the old record
// first costs loads and branches.
[[gnu::always_inline]] inline StreamingMapping SlotPool::map_one_slot(const StreamingRoute& route,
                                                                      PhysAddr orig,
                                                                      std::uint64_t size,
                                                                      Direction dir, unsigned cpu) {
  return take_newest_streaming(
      route, orig, size, dir, cpu, 1, [](std::uint32_t) { return true; },
      [&](std::uint32_t first) {
        // A run of one slot has no pad slot: its first slot is its head.
        SWIOTLB_CHECK(slots_[first].state == MappingState::cached && slots_[first].pad_slots == 0,
                      "a cached run of one slot is its own head");
        const auto bytes = static_cast<std::uint32_t>(size);
        write_record_run(slots_ + first, 1, record_orig(orig.value()), bytes, SlotRole::data, 0, 0);
        Slot& head = slots_[first];
        head.state = MappingState::live;
        head.mapping_size = bytes;
        head.dir = dir;
        head.owner = route.owner;
        return start_ + (std::uint64_t{first} << kSlotShift);
      });
}

// The cache's side of both: the newest run of `nslots` slots in the cache
// of `cpu`'s area, taken under the cache's lock when fits(run) holds, with
// write(run) called while the lock is held to write the run's records and
// give its address. An empty cache is a miss. A lock someone else holds,
// or a newest run that does not fit, goes the slow way (take_streaming),
// which waits for the lock: a wait here would be a call that the whole
// plan is kept live across, in memory. The lock is taken by hand for the
// same reason: a lock_guard would be live across the slow call.
template <class Fits, class Write>
[[gnu::always_inline]] inline StreamingMapping SlotPool::take_newest_streaming(
    const StreamingRoute& route, PhysAddr orig, std::uint64_t size, Direction dir, unsigned cpu,
    std::uint32_t nslots, Fits&& fits, Write&& write) {
  Area& area = areas_[cpu & (area_count_ - 1)];
  RunCache& cache = *area.cache;
  if (cache.cached_slots() == 0) {
    return {};  // the common miss, without touching the lock
  }
  if (!cache.lock.try_lock()) [[unlikely]] {
    return take_streaming(route, orig, size, dir, cpu);
  }
  const std::uint32_t first = cache.take_newest(nslots, fits);
  if (first == RunCache::kNone) [[unlikely]] {
    cache.lock.unlock();
    return take_streaming(route, orig, size, dir, cpu);
  }
  const PhysAddr tlb_addr = write(first);
  cache.lock.unlock();
  after_cached_take(area);
  return {tlb_addr, SlotCount(nslots)};
}

// map_streaming when another thread holds the cache's lock, or past the
// newest run of its size: take_cached, which waits for the lock and tries
// that newest run first, with the plan in memory.
StreamingMapping SlotPool::take_streaming(const StreamingRoute& route, PhysAddr orig,
                                          std::uint64_t size, Direction dir, unsigned cpu) {
  const SlotRequest request = streaming_request(route, orig, size, dir);
  SearchPlan plan;
  streaming_plan(route, request, plan);
  if (SlotMapping mapping; take_cached(cpu & (area_count_ - 1), plan, request, mapping)) {
    return {mapping.tlb_addr, mapping.nslots};
  }
  return {};
}

void SlotPool::rewrite_streaming_records(std::uint32_t first, const StreamingRoute& route,
                                         PhysAddr orig, std::uint64_t size, Direction dir) {
  const SlotRequest request = streaming_request(route, orig, size, dir);
  SearchPlan plan;
  streaming_plan(route, request, plan);
  write_records(first, plan, request);
}

Error SlotPool::full_error(const SearchPlan& plan) const {
  return make_error(Errc::pool_full,
                    "swiotlb buffer is full (sz: {} bytes), total {} (slots), used {} (slots)",
                    plan.reported_bytes, slot_count_, used());
}

void SlotPool::commit_locked(Area& area, std::uint32_t area_index, std::uint32_t found,
                             const SearchPlan& plan, const SlotRequest& request,
                             SlotMapping& mapping) {
  const std::uint32_t first = area_index * area_slots_ + found;
  // Through a pointer, which the compiler fills several counters at a time.
  std::fill_n(list_ + first, plan.nslots, std::uint16_t{0});
  // The free run before the new mapping now ends where it starts.
  count_on_free_run_before(list_, first, 0);
  if (area.state) {
    area.state->on_take(found, plan.nslots);
  }
  area.cursor = wrap_area_index(std::uint64_t{found} + plan.nslots, area_slots_);
  area.used.store(area.used.load(std::memory_order_relaxed) + plan.nslots,
                  std::memory_order_relaxed);
  area.maps += 1;
  if (area.cache) {
    std::lock_guard records(area.cache->lock);
    write_records(first, plan, request);
  } else {
    write_records(first, plan, request);
  }
  describe_run(first, plan, area_index, mapping);
}

// The records of a run just taken, from the search or from the run cache
// (whose runs still hold their last mapping's records: every field is
// written).
void SlotPool::write_records(std::uint32_t first, const SearchPlan& plan,
                             const SlotRequest& request) {
  // The plan's fields are read once: a byte written to a record may, for
  // all the compiler knows, have changed them.
  SlotRecord* const slots = slots_;
  const std::uint32_t pad_slots = plan.pad_slots;
  const std::uint64_t orig = plan.orig;
  constexpr auto kSlotBytes32 = static_cast<std::uint32_t>(kSlotSize);
  // Each slot's alloc_size: the bytes from it to the reservation's end.
  const auto alloc_size = static_cast<std::uint32_t>(plan.search_bytes - plan.slot_alloc_offset);
  write_record_run(slots + first, pad_slots, kInvalidAddress, alloc_size, SlotRole::pad, 0, 0);
  write_record_run(slots + first + pad_slots, plan.nslots - pad_slots, record_orig(orig),
                   alloc_size - pad_slots * kSlotBytes32, SlotRole::data, orig != 0 ? kSlotSize : 0,
                   1);
  slots_[first + pad_slots].pad_slots = static_cast<std::uint8_t>(pad_slots);
  write_head(first, plan, request);
}

// The mapping's fields on its head slot.
[[gnu::always_inline]] inline void SlotPool::write_head(std::uint32_t first, const SearchPlan& plan,
                                                        const SlotRequest& request) {
  const std::uint32_t head = first + plan.pad_slots;
  Slot& h = slots_[head];
  h.state = MappingState::live;
  h.mapping_size = static_cast<std::uint32_t>(request.mapping_size);
  h.tlb_offset = static_cast<std::uint16_t>(plan.tlb_offset);
  h.dir = request.dir;
  h.owner = request.owner;
}

// The address a run taken at `first` for `plan` is handed out at.
[[gnu::always_inline]] inline PhysAddr SlotPool::run_tlb_addr(std::uint32_t first,
                                                              const SearchPlan& plan) const {
  return start_ + (std::uint64_t{first + plan.pad_slots} << kSlotShift) + plan.tlb_offset;
}

// What the caller of map() is told about the run taken at `first`.
void SlotPool::describe_run(std::uint32_t first, const SearchPlan& plan, std::uint32_t area_index,
                            SlotMapping& mapping) const {
  mapping.tlb_addr = run_tlb_addr(first, plan);
  mapping.index = SlotIndex(first);
  mapping.nslots = SlotCount(plan.nslots);
  mapping.area = area_index;
}

// write_records for a run from the cache that holds the same layout as
// before (pad slots and per-slot alloc_size; its length is its size
// class): the records of a cached run are those its last mapping wrote, so
// role, part and alloc_size of every slot are already right, and so are the
// per-slot original addresses when the original is the same. Only the head
// slot's mapping fields change then. A 64 KiB run has 32 records over 16
// cache lines, which the bounce copy that follows has usually pushed out of
// the first-level cache. False, writing nothing, for another layout.
// Inline: it is most of a map served from the cache.
// REQUIRES: the cache's lock held; `first` just taken from the cache.
[[gnu::always_inline]] inline bool SlotPool::rewrite_cached_records(std::uint32_t first,
                                                                    const SearchPlan& plan,
                                                                    const SlotRequest& request) {
  const std::uint32_t head = first + plan.pad_slots;
  Slot& h = slots_[head];
  if (h.state != MappingState::cached || h.pad_slots != plan.pad_slots ||
      slots_[first].alloc_size != plan.search_bytes - plan.slot_alloc_offset) {
    return false;
  }
  const std::uint64_t orig = record_orig(plan.orig);
  if (h.orig_addr != orig) {
    for (std::uint32_t k = 0; head + k < first + plan.nslots; ++k) {
      slots_[head + k].orig_addr =
          plan.orig != 0 ? plan.orig + (std::uint64_t{k} << kSlotShift) : kInvalidAddress;
    }
  }
  write_head(first, plan, request);
  return true;
}

// The kernel's three tests on a candidate run, for a run from the cache
// (which never crosses a segment: it was one mapping).
[[gnu::always_inline]] inline bool SlotPool::run_fits(const SearchPlan& plan, std::uint32_t first) {
  const std::uint64_t addr = plan.tbl_dma + (std::uint64_t{first} << kSlotShift);
  return (addr & plan.alloc_align_mask) == 0 &&
         (plan.orig == 0 || ((addr ^ plan.orig) & plan.iotlb_align_mask) == 0) &&
         !AreaView::crosses_boundary(plan, first);
}

bool SlotPool::take_cached(std::uint32_t area_index, const SearchPlan& plan,
                           const SlotRequest& request, SlotMapping& mapping) {
  Area& area = areas_[area_index];
  RunCache& cache = *area.cache;
  if (cache.cached_slots() == 0) {
    return false;  // the common miss, without touching the lock
  }
  {
    std::lock_guard records(cache.lock);
    const std::uint32_t first =
        cache.take(plan.nslots, [&plan](std::uint32_t run) { return run_fits(plan, run); });
    if (first == RunCache::kNone) {
      return false;
    }
    if (!rewrite_cached_records(first, plan, request)) {
      write_records(first, plan, request);
    }
    describe_run(first, plan, area_index, mapping);
  }
  after_cached_take(area);
  return true;
}

// What follows a run taken from the cache, once its lock is dropped: the
// high-water mark raised when the area passes its gate.
[[gnu::always_inline]] inline void SlotPool::after_cached_take(Area& area) {
  if (mapped_slots(area) > area.gate.load(std::memory_order_relaxed)) {
    raise_hiwater();
  }
}

// REQUIRES: the cache's lock held; `head` is the mapping's head slot.
// Inline: it is half of an unmap through the run cache.
[[gnu::always_inline]] inline bool SlotPool::put_cached_locked(Area& area, std::uint32_t head,
                                                               std::uint32_t first,
                                                               std::uint32_t nslots) {
  if (nslots > kMaxCachedSlots || !area.cache->put(first, nslots)) {
    return false;
  }
  slots_[head].state = MappingState::cached;
  return true;
}

// An unmap whose run the cache did not take as it stood: with the area's
// lock, the cache may give a magazine back to make room, or the run goes
// back to the area itself. REQUIRES: the mapping is marked going.
void SlotPool::release_past_cache(Area& area, const MappingInfo& info) {
  const std::uint32_t first = info.index.value();
  const auto nslots = static_cast<std::uint32_t>(info.nslots.value());
  std::lock_guard guard(area.lock);
  std::lock_guard records(area.cache->lock);
  if (nslots > kMaxCachedSlots) {
    release_locked(area, first, nslots);
    return;
  }
  slots_[(info.tlb_addr - start_) >> kSlotShift].state = MappingState::cached;
  area.cache->spill(first, nslots, [&](std::uint32_t run, std::uint32_t length) {
    release_locked(area, run, length);
  });
}

// REQUIRES: the area's lock held, and a cache.
void SlotPool::drain_locked(Area& area) {
  std::lock_guard records(area.cache->lock);
  area.cache->drain(
      [&](std::uint32_t run, std::uint32_t length) { release_locked(area, run, length); });
}

void SlotPool::drain_cache() {
  for (std::uint32_t a = 0; caches_runs_ && a < area_count_; ++a) {
    std::lock_guard guard(areas_[a].lock);
    drain_locked(areas_[a]);
  }
}

std::uint64_t SlotPool::cached() const {
  std::uint64_t total = 0;
  for (std::uint32_t a = 0; caches_runs_ && a < area_count_; ++a) {
    total += areas_[a].cache->cached_slots();
  }
  return total;
}

std::uint64_t SlotPool::used() const {
  std::uint64_t total = 0;
  for (std::uint32_t a = 0; a < area_count_; ++a) {
    total += mapped_slots(areas_[a]);
  }
  return total;
}

// The kernel keeps total_used in one atomic that every map and unmap
// updates, and raises used_hiwater to it; that one cache line, written by
// every CPU, is what stops a pool from scaling with its areas. Here each
// area counts its own slots, and the high-water mark H stays exact through
// gates, one per area, with two rules: an area whose used is past its gate
// has a map on its way here, and the gates add up to at most H. So the
// total cannot pass H unnoticed, and a map that stays within its area's
// gate (the steady state of a pool under load) touches nothing outside its
// area. A map that passes it comes here, after dropping its area's lock:
//  1. under each area's lock in turn, add up the slots in use and lift
//     every gate that is below its area's use to that use;
//  2. raise H to the total when it is higher;
//  3. while the gates add up to more than H, lower the gates of areas that
//     hold headroom (from an earlier peak) towards their use; the total
//     always leaves room for that. Should areas have grown meanwhile, H
//     takes their gates' sum, a total like the one of step 1.
// Areas keep the headroom they were given until another area needs it, so
// in a steady load the gates settle at each area's peak and nobody comes
// back here.
//
// With one thread at a time this is exactly the kernel's high-water mark.
// Under concurrency the total is summed area by area, as the kernel's
// mem_used() does, and a peak of maps still in flight may be missed (the
// kernel, too, updates total_used after dropping the area lock); once no
// map is in flight, hiwater() >= used(). Lock order: hiwater_lock_, then
// one area lock at a time; a map never holds an area lock while it waits
// for hiwater_lock_.
void SlotPool::raise_hiwater() {
  std::lock_guard guard(hiwater_lock_);
  std::uint64_t total = 0;
  for (std::uint32_t a = 0; a < area_count_; ++a) {
    Area& area = areas_[a];
    std::lock_guard area_guard(area.lock);
    const std::uint64_t use = mapped_slots(area);
    const std::uint64_t gate = area.gate.load(std::memory_order_relaxed);
    if (use > gate) {
      gated_ += use - gate;
      area.gate.store(use, std::memory_order_relaxed);
    }
    total += use;
  }
  std::uint64_t high = std::max(hiwater_.load(std::memory_order_relaxed), total);
  for (std::uint32_t a = 0; a < area_count_ && gated_ > high; ++a) {
    Area& area = areas_[a];
    std::lock_guard area_guard(area.lock);
    const std::uint64_t use = mapped_slots(area);
    const std::uint64_t gate = area.gate.load(std::memory_order_relaxed);
    if (gate > use) {
      const std::uint64_t give_back = std::min(gate - use, gated_ - high);
      area.gate.store(gate - give_back, std::memory_order_relaxed);
      gated_ -= give_back;
    }
  }
  hiwater_.store(std::max(high, gated_), std::memory_order_relaxed);
}

void SlotPool::reset_hiwater() {
  std::lock_guard guard(hiwater_lock_);
  for (std::uint32_t a = 0; a < area_count_; ++a) {
    std::lock_guard area_guard(areas_[a].lock);
    areas_[a].gate.store(0, std::memory_order_relaxed);
  }
  gated_ = 0;
  hiwater_.store(0, std::memory_order_relaxed);
}

Result<std::uint32_t> SlotPool::head_of_locked(PhysAddr tlb_addr,
                                               std::uint64_t min_align_mask) const {
  const std::uint64_t offset = tlb_addr.value() & min_align_mask & (kSlotSize - 1);
  const std::uint64_t head = (tlb_addr - offset - start_) >> kSlotShift;
  const Slot& h = slots_[head];
  if (h.role != SlotRole::data || h.part != 0 || h.state != MappingState::live ||
      start_ + (head << kSlotShift) + h.tlb_offset != tlb_addr) {
    if (h.state == MappingState::adopted) {
      return adopted_error(tlb_addr);
    }
    return make_error(Errc::not_mapped, "no mapping was handed out at {:#x}{}", tlb_addr.value(),
                      h.state == MappingState::going    ? " (it is being unmapped)"
                      : h.state == MappingState::cached ? " (it was unmapped)"
                                                        : "");
  }
  return static_cast<std::uint32_t>(head);
}

Error SlotPool::adopted_error(PhysAddr addr) {
  return make_error(Errc::mapping_mismatch,
                    "{:#x} is in a mapping adopted from an earlier holder of the pool: its buffer "
                    "is not this process's, and only release_adopted gives it back",
                    addr.value());
}

MappingInfo SlotPool::info_locked(std::uint32_t head) const {
  MappingInfo info;
  info_locked(head, info);
  return info;
}

// Field by field into `info`, which may be the caller's answer in place
// (take_live_cached).
void SlotPool::info_locked(std::uint32_t head, MappingInfo& info) const {
  const Slot& h = slots_[head];
  const std::uint32_t first = head - h.pad_slots;
  info.tlb_addr = start_ + (std::uint64_t{head} << kSlotShift) + h.tlb_offset;
  info.orig = PhysAddr(h.orig_addr == kInvalidAddress ? 0 : h.orig_addr);
  info.mapping_size = h.mapping_size;
  info.dir = h.dir;
  info.owner = h.owner;
  info.index = SlotIndex(first);
  info.nslots = SlotCount(mapping_slots(slots_[first], info.tlb_addr));
}

Result<MappingInfo> SlotPool::begin_unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask,
                                          const MappingClaim* claim) {
  return take_mapping(tlb_addr, min_align_mask, claim, /*release=*/false);
}

// begin_unmap, and with `release` finish_unmap as well, under one hold of
// the area's lock. Inline into both: a call here would be a tenth of an
// unmap through the run cache.
[[gnu::always_inline]] inline Result<MappingInfo> SlotPool::take_mapping(
    PhysAddr tlb_addr, std::uint64_t min_align_mask, const MappingClaim* claim, bool release) {
  if (!contains(tlb_addr)) [[unlikely]] {
    return outside_error(tlb_addr);
  }
  const std::uint64_t offset = tlb_addr.value() & min_align_mask & (kSlotSize - 1);
  // The slot the mapping's data starts in: its head, if tlb_addr is one.
  const auto head = static_cast<std::uint32_t>((tlb_addr - offset - start_) >> kSlotShift);
  Area& area = area_of(head);
  if (area.cache) {
    return take_mapping_cached(area, head, tlb_addr, min_align_mask, claim, release);
  }
  return take_mapping_locked(area, tlb_addr, min_align_mask, claim, release);
}

Error SlotPool::outside_error(PhysAddr addr) const {
  return make_error(Errc::not_mapped, "{:#x} is outside the pool [{:#x}, {:#x})", addr.value(),
                    start_.value(), end().value());
}

// take_mapping in an area without a run cache, under the area's lock. Out
// of line, so that take_mapping stays a few instructions on its way to the
// run cache.
Result<MappingInfo> SlotPool::take_mapping_locked(Area& area, PhysAddr tlb_addr,
                                                  std::uint64_t min_align_mask,
                                                  const MappingClaim* claim, bool release) {
  std::lock_guard guard(area.lock);
  Result<std::uint32_t> head = head_of_locked(tlb_addr, min_align_mask);
  if (!head) {
    return std::move(head).error();
  }
  MappingInfo info = info_locked(*head);
  if (claim != nullptr) {
    if (Status match = check_claim(info, *claim); !match) {
      return match.error();
    }
  }
  if (release) {
    release_locked(area, info.index.value(), static_cast<std::uint32_t>(info.nslots.value()));
  } else {
    slots_[*head].state = MappingState::going;
  }
  return info;
}

// take_mapping in an area with a run cache: the records under the cache's
// lock alone, and the run parked in the cache when it takes it.
//
// The common case (a live mapping unmapped as it was mapped) is checked
// with plain comparisons under the lock; anything else goes to the full
// checks, which build the error (take_mapping_checked), with the lock taken
// again: what they report is what they see then. Inline: it is most of an
// unmap through the run cache.
[[gnu::always_inline]] inline Result<MappingInfo> SlotPool::take_mapping_cached(
    Area& area, std::uint32_t head, PhysAddr tlb_addr, std::uint64_t min_align_mask,
    const MappingClaim* claim, bool release) {
  // The lock by hand: a unique_lock's ownership flag lives in memory and
  // is written and tested on a path this short.
  SpinLock& records = area.cache->lock;
  records.lock();
  if (!live_at(head, tlb_addr) || !claim_matches(slots_[head], claim)) [[unlikely]] {
    records.unlock();
    return take_mapping_checked(area, tlb_addr, min_align_mask, claim, release);
  }
  return take_live_cached(area, head, release);
}

// take_mapping_cached once the mapping at `head` is known live and claimed:
// parks its run (or marks it going) and gives its description. REQUIRES:
// the cache's lock held; released here.
//
// The answer is written where the caller reads it (one return, of one
// Result, which the compiler then builds in the caller's place): built in
// a local and copied out, it was read back in 16-byte loads across the
// 8-byte stores just made, which the store buffer cannot forward.
[[gnu::always_inline]] inline Result<MappingInfo> SlotPool::take_live_cached(Area& area,
                                                                             std::uint32_t head,
                                                                             bool release) {
  Result<MappingInfo> taken{MappingInfo{}};
  MappingInfo& info = *taken;
  info_locked(head, info);
  const bool parked = release && put_cached_locked(area, head, info.index.value(),
                                                   static_cast<std::uint32_t>(info.nslots.value()));
  if (!parked) {
    slots_[head].state = MappingState::going;
  }
  SpinLock& records = area.cache->lock;
  records.unlock();
  if (release && !parked) {
    release_past_cache(area, info);
  }
  return taken;
}

// Whether `head` is the head slot of a live mapping handed out at
// `tlb_addr`. REQUIRES: the records' lock held.
[[gnu::always_inline]] inline bool SlotPool::live_at(std::uint32_t head, PhysAddr tlb_addr) const {
  const Slot& h = slots_[head];
  return h.role == SlotRole::data && h.part == 0 && h.state == MappingState::live &&
         start_ + (std::uint64_t{head} << kSlotShift) + h.tlb_offset == tlb_addr;
}

// Whether the claim (none: any) matches the mapping whose head slot is `head`.
[[gnu::always_inline]] inline bool SlotPool::claim_matches(const Slot& head,
                                                           const MappingClaim* claim) {
  return claim == nullptr || (claim->owner == head.owner &&
                              claim->mapping_size == head.mapping_size && claim->dir == head.dir);
}

// The area of the mapping handed out at `tlb_addr`, with `head` set to its
// head slot, when the pool holds the address and the area has a run cache;
// null otherwise.
[[gnu::always_inline]] inline SlotPool::Area* SlotPool::cached_area(PhysAddr tlb_addr,
                                                                    std::uint64_t min_align_mask,
                                                                    std::uint32_t& head) {
  if (!contains(tlb_addr)) [[unlikely]] {
    return nullptr;
  }
  const std::uint64_t offset = tlb_addr.value() & min_align_mask & (kSlotSize - 1);
  head = static_cast<std::uint32_t>((tlb_addr - offset - start_) >> kSlotShift);
  Area& area = area_of(head);
  return area.cache ? &area : nullptr;
}

// The body of unmap_cached and unmap_streaming: the slots of the mapping
// whose run it parked, none when it parked none.
[[gnu::always_inline]] inline ParkedRun SlotPool::park_cached(
    PhysAddr tlb_addr, std::uint64_t min_align_mask, const MappingClaim& claim,
    const std::atomic<std::uint64_t>* waiters) {
  std::uint32_t head = 0;
  Area* const area = cached_area(tlb_addr, min_align_mask, head);
  if (area == nullptr) {
    return {};
  }
  SpinLock& records = area->cache->lock;
  records.lock();
  ParkedRun parked;
  if (live_at(head, tlb_addr) && claim_matches(slots_[head], &claim)) [[likely]] {
    // info_locked's first slot and count, alone.
    const std::uint32_t first = head - slots_[head].pad_slots;
    const auto count = static_cast<std::uint32_t>(mapping_slots(slots_[first], tlb_addr));
    parked.nslots = SlotCount(put_cached_locked(*area, head, first, count) ? count : 0);
  }
  if (parked && waiters != nullptr) {
    // Under the lock, after the run is parked (see pass_cache_locks).
    parked.waiting = waiters->load(std::memory_order_relaxed);
  }
  records.unlock();
  return parked;
}

bool SlotPool::unmap_cached(PhysAddr tlb_addr, std::uint64_t min_align_mask,
                            const MappingClaim& claim, SlotCount& nslots,
                            const std::atomic<std::uint64_t>* waiters, std::uint64_t* waiting) {
  const ParkedRun parked = park_cached(tlb_addr, min_align_mask, claim, waiters);
  nslots = parked.nslots;
  if (parked && waiters != nullptr) {
    *waiting = parked.waiting;
  }
  return static_cast<bool>(parked);
}

ParkedRun SlotPool::unmap_streaming(const StreamingRoute& route, PhysAddr tlb_addr,
                                    std::uint64_t size, Direction dir,
                                    const std::atomic<std::uint64_t>* waiters) {
  const MappingClaim claim{size, dir, route.owner};
  return park_cached(tlb_addr, route.min_align_mask, claim, waiters);
}

void SlotPool::pass_cache_locks() const {
  for (std::uint32_t a = 0; caches_runs_ && a < area_count_; ++a) {
    // An empty critical section: the lock's order is what is wanted.
    const std::lock_guard pass(areas_[a].cache->lock);
  }
}

bool SlotPool::begin_unmap_cached(PhysAddr tlb_addr, std::uint64_t min_align_mask,
                                  const MappingClaim& claim, MappingInfo& info) {
  std::uint32_t head = 0;
  Area* const area = cached_area(tlb_addr, min_align_mask, head);
  if (area == nullptr) {
    return false;
  }
  SpinLock& records = area->cache->lock;
  records.lock();
  const bool live = live_at(head, tlb_addr) && claim_matches(slots_[head], &claim);
  if (live) [[likely]] {
    info_locked(head, info);
    slots_[head].state = MappingState::going;
  }
  records.unlock();
  return live;
}

// take_mapping_cached with every check spelled out and its error built.
Result<MappingInfo> SlotPool::take_mapping_checked(Area& area, PhysAddr tlb_addr,
                                                   std::uint64_t min_align_mask,
                                                   const MappingClaim* claim, bool release) {
  std::unique_lock records(area.cache->lock);
  Result<std::uint32_t> head = head_of_locked(tlb_addr, min_align_mask);
  if (!head) {
    return std::move(head).error();
  }
  MappingInfo info = info_locked(*head);
  if (claim != nullptr) {
    if (Status match = check_claim(info, *claim); !match) {
      return match.error();
    }
  }
  if (release && put_cached_locked(area, *head, info.index.value(),
                                   static_cast<std::uint32_t>(info.nslots.value()))) {
    return info;
  }
  slots_[*head].state = MappingState::going;
  records.unlock();
  if (release) {
    release_past_cache(area, info);
  }
  return info;
}

void SlotPool::finish_unmap(const MappingInfo& mapping) {
  const std::uint32_t first = mapping.index.value();
  const auto nslots = static_cast<std::uint32_t>(mapping.nslots.value());
  Area& area = area_of(first);
  if (area.cache) {
    {
      std::lock_guard records(area.cache->lock);
      const auto head = static_cast<std::uint32_t>((mapping.tlb_addr - start_) >> kSlotShift);
      if (put_cached_locked(area, head, first, nslots)) {
        return;
      }
    }
    release_past_cache(area, mapping);
    return;
  }
  std::lock_guard guard(area.lock);
  release_locked(area, first, nslots);
}

Status SlotPool::check_claim(const MappingInfo& info, const MappingClaim& claim) {
  if (claim.owner != info.owner) {
    return make_error(Errc::mapping_mismatch, "unmap of {:#x} by owner {}, but owner {} mapped it",
                      info.tlb_addr.value(), claim.owner, info.owner);
  }
  if (claim.mapping_size != info.mapping_size || claim.dir != info.dir) {
    return make_error(Errc::mapping_mismatch,
                      "unmap of {:#x} with {} bytes {}, but it was mapped with {} bytes {}",
                      info.tlb_addr.value(), claim.mapping_size, to_string(claim.dir),
                      info.mapping_size, to_string(info.dir));
  }
  return {};
}

Result<MappingInfo> SlotPool::unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask,
                                    const MappingClaim* claim) {
  return take_mapping(tlb_addr, min_align_mask, claim, /*release=*/true);
}

void SlotPool::release_locked(Area& area, std::uint32_t first, std::uint32_t nslots) {
  const std::uint64_t end = std::uint64_t{first} + nslots;
  // Merge with the free run that follows, if it is in the same segment.
  const std::uint16_t after =
      end < kernel_align(std::uint64_t{first} + 1, kSegmentSlots) ? list_[end] : std::uint16_t{0};
  std::uint16_t* const list = list_;  // read once: see write_records
  SlotRecord* const slots = slots_;
  // Two loops, each of which the compiler writes several slots at a time:
  // the counters counted down, as count_on_free_run_before does, and the
  // records emptied.
  auto counter = static_cast<std::uint16_t>(after + nslots);
  for (std::uint16_t* p = list + first; p != list + first + nslots; ++p) {
    *p = counter--;
  }
  std::fill_n(slots + first, nslots, kEmptyRecord);
  // And with the free run before it.
  count_on_free_run_before(list_, first, static_cast<std::uint16_t>(after + nslots));
  if (area.state) {
    area.state->on_release(first % area_slots_, nslots);
  }
  area.used.store(area.used.load(std::memory_order_relaxed) - nslots, std::memory_order_relaxed);
}

Result<MappingInfo> SlotPool::find_mapping(PhysAddr addr, std::uint64_t size) const {
  if (!contains(addr)) {
    return make_error(Errc::not_mapped, "{:#x} is outside the pool [{:#x}, {:#x})", addr.value(),
                      start_.value(), end().value());
  }
  const std::uint64_t slot = (addr - start_) >> kSlotShift;
  Area& area = area_of(slot);
  Result<MappingInfo> found =
      with_records(area.lock, area.run_cache(), [&]() -> Result<MappingInfo> {
        const Slot& s = slots_[slot];
        const std::uint64_t head = slot - s.part;
        if (s.role != SlotRole::data || slots_[head].state != MappingState::live) {
          if (s.role == SlotRole::data && slots_[head].state == MappingState::adopted) {
            return adopted_error(addr);
          }
          return make_error(Errc::not_mapped, "no live mapping holds {:#x}", addr.value());
        }
        return info_locked(static_cast<std::uint32_t>(head));
      });
  if (!found) {
    return found;
  }
  const MappingInfo& info = *found;
  const std::uint64_t from = addr - info.tlb_addr;
  if (addr < info.tlb_addr || size > info.mapping_size || from > info.mapping_size - size) {
    return make_error(Errc::out_of_range, "[{:#x}, +{}) reaches outside the mapping [{:#x}, +{})",
                      addr.value(), size, info.tlb_addr.value(), info.mapping_size);
  }
  return found;
}

PhysAddr SlotPool::orig_of(const MappingInfo& mapping, PhysAddr addr) const {
  return mapping.orig + (addr - mapping.tlb_addr);
}

PoolStats SlotPool::stats() const {
  PoolStats s;
  s.nslabs = slot_count_;
  s.nareas = area_count_;
  s.used = used();
  s.hiwater = hiwater();
  s.failures = failures_.load(std::memory_order_relaxed);
  s.areas.reserve(area_count_);
  for (std::uint32_t a = 0; a < area_count_; ++a) {
    std::lock_guard guard(areas_[a].lock);
    std::uint64_t cached = 0;
    std::uint64_t hits = 0;
    if (RunCache* cache = areas_[a].run_cache(); cache != nullptr) {
      std::lock_guard records(cache->lock);
      cached = cache->cached_slots();
      hits = cache->hits();
    }
    s.areas.push_back({areas_[a].used.load(std::memory_order_relaxed) - cached, areas_[a].cursor,
                       areas_[a].maps + hits, areas_[a].search_steps});
    s.maps += areas_[a].maps + hits;
    s.search_steps += areas_[a].search_steps;
    s.adopted += areas_[a].adopted;
    s.cached += cached;
    s.cache_hits += hits;
  }
  return s;
}

std::uint64_t SlotPool::count_owned(std::uint32_t owner) const {
  std::uint64_t count = 0;
  for (std::uint32_t a = 0; a < area_count_; ++a) {
    with_records(areas_[a].lock, areas_[a].run_cache(), [&] {
      const std::uint64_t base = std::uint64_t{a} * area_slots_;
      for (std::uint64_t i = base; i < base + area_slots_; ++i) {
        if (slots_[i].state != MappingState::none && slots_[i].state != MappingState::cached &&
            slots_[i].owner == owner) {
          ++count;
        }
      }
    });
  }
  return count;
}

std::uint64_t SlotPool::largest_free_run() const {
  std::uint64_t best = 0;
  for (std::uint32_t a = 0; a < area_count_; ++a) {
    std::lock_guard guard(areas_[a].lock);
    const std::uint64_t base = std::uint64_t{a} * area_slots_;
    for (std::uint64_t i = base; i < base + area_slots_; ++i) {
      best = std::max<std::uint64_t>(best, list_[i]);
    }
  }
  return best;
}

Status SlotPool::check_invariants() const {
  std::lock_guard hiwater_guard(hiwater_lock_);
  // Every area at once, in order (a map holds one area lock at a time):
  // free runs and mappings are checked by segment, and a segment may span
  // two areas.
  std::vector<std::unique_lock<SpinLock>> guards;
  guards.reserve(area_count_);
  for (std::uint32_t a = 0; a < area_count_; ++a) {
    guards.emplace_back(areas_[a].lock);
  }
  // Then every run cache: a map from a cache takes its spin lock alone and
  // writes slot records.
  std::vector<std::unique_lock<SpinLock>> records;
  records.reserve(area_count_);
  for (std::uint32_t a = 0; a < area_count_; ++a) {
    if (RunCache* cache = areas_[a].run_cache(); cache != nullptr) {
      records.emplace_back(cache->lock);
    }
  }
  std::vector<std::uint64_t> in_use(area_count_, 0);
  Result<std::uint64_t> all =
      check_slot_records(list_, slots_, 0, slot_count_, area_slots_, in_use.data());
  if (!all) {
    return std::move(all).error();
  }
  std::uint64_t total = 0;
  std::uint64_t gates = 0;
  for (std::uint32_t a = 0; a < area_count_; ++a) {
    const RunCache* cache = areas_[a].run_cache();
    gates += areas_[a].gate.load(std::memory_order_relaxed);
    const std::uint64_t base = std::uint64_t{a} * area_slots_;
    const std::uint64_t counted = areas_[a].used.load(std::memory_order_relaxed);
    if (in_use[a] != counted) {
      return make_error(Errc::out_of_range,
                        "area {}: used {} (cached runs included) but {} slots are in use", a,
                        counted, in_use[a]);
    }
    std::uint64_t adopted = 0;
    std::uint64_t cached = 0;
    for (std::uint64_t i = base; i < base + area_slots_; ++i) {
      adopted += slots_[i].state == MappingState::adopted ? 1 : 0;
      if (slots_[i].state == MappingState::cached) {
        cached += info_locked(static_cast<std::uint32_t>(i)).nslots.value();
      }
    }
    if (cached != (cache != nullptr ? cache->cached_slots() : 0)) {
      return make_error(Errc::out_of_range, "area {}: {} slots in cached runs, {} counted", a,
                        cached, cache != nullptr ? cache->cached_slots() : 0);
    }
    if (adopted != areas_[a].adopted) {
      return make_error(Errc::out_of_range, "area {}: {} adopted mappings counted, {} found", a,
                        areas_[a].adopted, adopted);
    }
    if (AreaState* state = areas_[a].state.get(); state != nullptr) {
      const AreaView view{list_, a * area_slots_, area_slots_, areas_[a].cursor, state};
      if (Status ok = state->check(view); !ok) {
        return make_error(Errc::out_of_range, "area {}: {}", a, ok.error().message());
      }
    }
    total += in_use[a] - cached;
  }
  if (total != used()) {
    return make_error(Errc::out_of_range, "pool used {} but {} slots are in use", used(), total);
  }
  if (gates != gated_ || gates > hiwater()) {
    return make_error(
        Errc::out_of_range,
        "the areas' gates add up to {}, recorded as {}, against a high-water mark of {}", gates,
        gated_, hiwater());
  }
  return {};
}

}  // namespace swiotlb
