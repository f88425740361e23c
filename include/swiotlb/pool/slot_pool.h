// SlotPool: one contiguous run of 2 KiB slots over one address range.
//
// The pool hands out runs of slots for bounce buffers and takes them back,
// exactly as the kernel's io_tlb_pool does. It keeps no data: the bytes live
// in whatever region the pool's addresses name, and copying them is the
// caller's business. This makes the same pool serve live mappings and trace
// replays of a kernel's pool (whose addresses are physical).
//
// Layout: `slot_count` slots in segments of 128, split into `area_count`
// areas of equal size, each with its own lock, search cursor and used count.
// A request starts in the area of its CPU and moves on to the next areas in
// turn, as the kernel does.
//
// Per slot the pool keeps the kernel's fields (free-run counter `list`,
// original address, remaining allocation size, pad slots) and, on the first
// data slot of each mapping, what unmap and sync need to check their caller:
// the address handed out, the mapping size, the direction and the owner.
//
// Where the metadata lives: by default in arrays the pool allocates; with
// create_in and attach, in a pool image in memory the caller provides
// (pool_image.h), so that another process can take the pool over.
//
// Run cache: under a policy whose caches_runs() is true (`fast`), a pool
// that keeps its own arrays also keeps per-area magazines of recently freed
// runs (src/pool/run_cache.h): a map of a small run takes the one its area
// freed last, and an unmap parks its run there, neither taking the area
// lock nor searching. Cached runs stay taken in the free-run counters but
// count neither in used() nor in hiwater(); a search that fails in an area
// gives the area's cached runs back first (and drain_cache() all of them),
// so a map never fails for want of slots that a cache holds.
//
// Thread safety: every public method may be called from any thread. A slot's
// free-run counter is guarded by the lock of the area that holds the slot,
// and so are its other fields, except in an area with a run cache, where
// the cache's lock guards them (taken after the area's lock). Each area
// counts its slots in use; used() adds them up and hiwater() is kept
// without a pool-wide counter (see raise_hiwater in slot_pool.cc), so maps
// and unmaps in different areas write no shared cache line.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"
#include "swiotlb/core/slot.h"
#include "swiotlb/pool/pool_image.h"
#include "swiotlb/pool/slot_policy.h"
#include "swiotlb/pool/slot_request.h"

namespace swiotlb {

struct PoolGeometry {
  PhysAddr start;            // address of slot 0
  std::uint64_t slot_count;  // a multiple of 128, at most kMaxSlotCount
  std::uint32_t area_count;  // a power of two; every area holds whole segments
};

struct AreaStats {
  std::uint64_t used = 0;
  std::uint32_t cursor = 0;
  std::uint64_t maps = 0;
  std::uint64_t search_steps = 0;
};

struct PoolStats {
  std::uint64_t nslabs = 0;
  std::uint32_t nareas = 0;
  std::uint64_t used = 0;          // slots in use now
  std::uint64_t adopted = 0;       // mappings adopted from an earlier holder, not yet released
  std::uint64_t hiwater = 0;       // most slots in use at once since the last reset
  std::uint64_t maps = 0;          // successful maps
  std::uint64_t failures = 0;      // maps refused for want of slots
  std::uint64_t search_steps = 0;  // candidates looked at by all searches
  std::uint64_t cached = 0;        // slots parked in the run cache (not in `used`)
  std::uint64_t cache_hits = 0;    // maps served from the run cache (counted in `maps`)
  std::vector<AreaStats> areas;
};

// What attach does with the mappings an image holds.
enum class AttachMode : std::uint8_t {
  // Keep them: each becomes an adopted mapping, its slots reserved until
  // release_adopted. For a process taking over a pool whose device may
  // still be writing into those slots.
  adopt,
  // Drop them: every slot free, as a fresh create_in leaves it.
  reset,
};

struct AttachOptions {
  AttachMode mode = AttachMode::adopt;
  // Attach even when the image names a running process other than this one
  // as its holder. That process's locks do not exclude ours: only for a
  // holder known to be gone whose pid has been reused (a pid from another
  // pid namespace, a crash kernel's view of the old one).
  bool ignore_live_owner = false;
};

class SlotPool {
 public:
  // Fails for an impossible geometry (see validate_geometry in core/config.h).
  static Result<std::unique_ptr<SlotPool>> create(const PoolGeometry& geometry,
                                                  std::shared_ptr<const SlotPolicy> policy);

  // A fresh pool, all slots free, whose metadata is kept in `image`: the
  // first pool_image_bytes(slot_count) bytes are formatted (header with this
  // process as holder, then the arrays). Fails, writing nothing, for an
  // impossible geometry, or an image that is too small or not aligned to
  // kPoolImageAlign. `image` must stay mapped, at the same address, for the
  // pool's life, and no other SlotPool may use it meanwhile.
  static Result<std::unique_ptr<SlotPool>> create_in(const PoolGeometry& geometry,
                                                     std::shared_ptr<const SlotPolicy> policy,
                                                     std::span<std::byte> image);

  // The pool whose image is at `image`, formatted by create_in here or in
  // another process that mapped it at the same address. Refuses, writing
  // nothing, an image that holds no pool header (Errc::parse), one of
  // another version or layout (parse), a corrupt header (parse), one of
  // another geometry or policy than `expected` and `policy` (invalid_argument,
  // naming the field), one that is too small or misaligned
  // (invalid_argument), and one whose holder is a running process other
  // than this one (Errc::busy; see AttachOptions::ignore_live_owner).
  // AttachMode::adopt also checks every slot record and free-run counter
  // and refuses inconsistent arrays (parse) before it trusts any of them.
  // On success the image records this process as the holder.
  static Result<std::unique_ptr<SlotPool>> attach(const PoolGeometry& expected,
                                                  std::shared_ptr<const SlotPolicy> policy,
                                                  std::span<std::byte> image,
                                                  const AttachOptions& options);

  // A pool over an image records there, as it goes, that nobody holds the
  // image now (owner_pid 0); its mappings stay in the image as they are.
  ~SlotPool();
  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;

  // Reserves slots for a request. Fails with Errc::pool_full when no area
  // has a run that fits (counted in failures), Errc::invalid_argument for a
  // request no pool can serve (zero size, a boundary mask that is not
  // 2^n - 1), Errc::search_would_spin when the modelled kernel would hang.
  Result<SlotMapping> map(const SlotRequest& request);

  // The hit path of map(), which tries the same first: serves a streaming
  // request (no alloc_align_mask) of at most kMaxCachedSlots slots from the
  // run cache of request.cpu's area, when that cache holds a run of the
  // request's length that fits its alignment, kept bits and boundary; then
  // true, with `mapping` filled as map() would have filled it. False,
  // changing nothing, for every other case (no run cache, another kind of
  // request, no fitting run, a request map() would refuse): the caller then
  // calls map(). Takes the cache's spin lock alone, and plans inline
  // (mainline_plan: every policy that caches runs plans as mainline does).
  bool map_cached(const SlotRequest& request, SlotMapping& mapping);

  // The part of `request` that map_streaming() takes as fixed (all but its
  // orig, size, direction and CPU): set in `route`, and true, when
  // map_cached() may serve such requests at all (a pool with run caches;
  // no alloc_align_mask, an alloc_size map() accepts, a segment boundary
  // mask of the form 2^n - 1). False, leaving `route` alone, otherwise.
  // Any thread; reads only what never changes.
  bool streaming_route(const SlotRequest& request, StreamingRoute& route) const;

  // map_cached() for a request of `size` bytes at `orig`, direction `dir`,
  // from `cpu`'s area, whose other fields `route` holds: the same hit, with
  // the same outcome, planned from the buffer alone. A hit returns the
  // mapping's address and slots (mapping_of() gives the rest); a miss, no
  // slots. REQUIRES: `route` from streaming_route() of this pool.
  // Thread-safe as map_cached().
  StreamingMapping map_streaming(const StreamingRoute& route, PhysAddr orig, std::uint64_t size,
                                 Direction dir, unsigned cpu);
  // The SlotMapping of a hit map_streaming() returned, as map_cached()
  // would have filled it (no search steps). Reads nothing but the pool's
  // bounds: any thread. REQUIRES: `hit` a hit of this pool.
  SlotMapping mapping_of(const StreamingMapping& hit) const;

  // Gives back the mapping handed out at `tlb_addr`. The device's
  // min_align_mask locates the mapping's first slot, as in the kernel.
  // Fails, changing nothing, when no mapping was handed out at that address
  // (Errc::not_mapped) or it is an adopted one (Errc::mapping_mismatch),
  // and, given a claim, when the caller's size, direction or owner do not
  // match the map (Errc::mapping_mismatch).
  Result<MappingInfo> unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask,
                            const MappingClaim* claim = nullptr);

  // The hit path of unmap(): gives back the live mapping handed out at
  // `tlb_addr` when `claim` matches it and its area's run cache takes its
  // run as it stands; then true, with the slots it held in `nslots`, as
  // unmap() would have left everything. False, changing nothing, for every
  // other case (no run cache, no live mapping there, a claim that does not
  // match, a cache that has no room): the caller then calls unmap(), which
  // does the work or says why not. Takes the cache's spin lock alone, and
  // builds no error.
  //
  // `waiters`, when not null, counts the callers waiting for room (an
  // IoTlb's wait queue). A true return reads it into `waiting` while the
  // lock is still held, after the run is parked, so that a caller who then
  // wakes the waiters needs no fence: see pass_cache_locks(). REQUIRES:
  // `waiting` not null when `waiters` is not.
  bool unmap_cached(PhysAddr tlb_addr, std::uint64_t min_align_mask, const MappingClaim& claim,
                    SlotCount& nslots, const std::atomic<std::uint64_t>* waiters = nullptr,
                    std::uint64_t* waiting = nullptr);
  // unmap_cached() for a mapping of `size` bytes in direction `dir` made
  // through `route` (whose min_align_mask and owner are those of the
  // claim): the slots it held when its run was parked, and what `waiters`
  // read as unmap_cached() reads it into `waiting` (0 without `waiters`);
  // no slots, changing nothing, when unmap_cached() would have returned
  // false. Thread-safe as unmap_cached().
  ParkedRun unmap_streaming(const StreamingRoute& route, PhysAddr tlb_addr, std::uint64_t size,
                            Direction dir, const std::atomic<std::uint64_t>* waiters = nullptr);

  // Takes and gives back, in turn, every area's run cache lock (none in a
  // pool without caches). For a caller that waits for room: having counted
  // itself in the `waiters` that unmap_cached() reads, and before each look
  // for room, it calls this. Then for each area, either an unmap_cached()
  // held that lock first, and the look sees the run it parked, or it took
  // the lock after, and read this caller in the count. Any thread; each
  // lock is held for no work at all.
  void pass_cache_locks() const;

  // The hit path of begin_unmap(): marks the live mapping handed out at
  // `tlb_addr` as going when `claim` matches it, in an area with a run
  // cache; then true, with `info` filled as begin_unmap() would have filled
  // it, and finish_unmap() to follow. False, changing nothing, for every
  // other case (no run cache, no live mapping there, a claim that does not
  // match): the caller then calls begin_unmap(), which says why not.
  // Takes the cache's spin lock alone, and builds no error.
  bool begin_unmap_cached(PhysAddr tlb_addr, std::uint64_t min_align_mask,
                          const MappingClaim& claim, MappingInfo& info);

  // The two halves of unmap, for callers that copy data out in between:
  // begin_unmap checks the address (and, given a claim, that the caller's
  // size, direction and owner match the map: Errc::mapping_mismatch
  // otherwise, the mapping left live) and marks the mapping as going, so
  // that a second unmap or a sync of it fails; finish_unmap frees its slots.
  // begin_unmap refuses an adopted mapping, claim or none, as unmap does.
  Result<MappingInfo> begin_unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask,
                                  const MappingClaim* claim = nullptr);
  // REQUIRES: `mapping` came from begin_unmap and was not finished yet.
  void finish_unmap(const MappingInfo& mapping);

  // The live mapping that holds [addr, addr + size), for sync and checks.
  // Fails with Errc::not_mapped when the range is not inside one live mapping,
  // Errc::mapping_mismatch when it is in an adopted one (see release_adopted).
  Result<MappingInfo> find_mapping(PhysAddr addr, std::uint64_t size) const;

  // The original address that backs bounce address `addr` of a live mapping
  // (the kernel's per-slot orig_addr, plus the offset into the slot).
  PhysAddr orig_of(const MappingInfo& mapping, PhysAddr addr) const;

  PhysAddr start() const { return start_; }
  PhysAddr end() const { return start_ + (slot_count_ << 11); }
  bool contains(PhysAddr addr) const { return addr >= start_ && addr < end(); }

  // A hint that the mapping of `bytes` at bounce address `addr` is
  // unmapped soon: starts loading the records and free-run counters of its
  // slots (the first kPrefetchSlots at most), so that the unmap does not
  // wait for memory. Changes nothing, and reads nothing that a map or unmap
  // writes (any thread may call it at any time); an address outside the
  // pool is ignored.
  void prefetch(PhysAddr addr, std::uint64_t bytes) const {
    if (!contains(addr)) {
      return;
    }
    const std::uint64_t first = (addr - start_) >> kSlotShift;
    const std::uint64_t slots = std::clamp<std::uint64_t>(nr_slots(bytes), 1, kPrefetchSlots);
    const std::uint64_t last = std::min(first + slots, slot_count_) - 1;
    constexpr std::uint64_t kRecordsPerLine = 64 / sizeof(SlotRecord);
    for (std::uint64_t slot = first; slot < last; slot += kRecordsPerLine) {
      __builtin_prefetch(slots_ + slot, 1);
    }
    __builtin_prefetch(slots_ + last, 1);
    __builtin_prefetch(list_ + first, 1);
    __builtin_prefetch(list_ + last, 1);
  }
  // The most slots whose records prefetch() loads: a run cache's longest
  // run, and more than most mappings.
  static constexpr std::uint64_t kPrefetchSlots = 32;
  std::uint64_t slot_count() const { return slot_count_; }
  std::uint32_t area_count() const { return area_count_; }
  std::uint32_t area_slot_count() const { return area_slots_; }
  const SlotPolicy& policy() const { return *policy_; }

  // Slots in use by mappings: the sum of the areas' counts, less the slots
  // of cached runs (exact when no map or unmap is in flight). O(areas).
  std::uint64_t used() const;
  // Whether this pool keeps a run cache, and the slots it holds now.
  bool caches_runs() const { return caches_runs_; }
  std::uint64_t cached() const;
  // Gives every cached run back to its area, so that the free-run counters
  // show every slot not held by a mapping as free (before a pool is grown,
  // shrunk or inspected). Takes each area's lock in turn; no-op for a pool
  // without a run cache.
  void drain_cache();
  std::uint64_t hiwater() const { return hiwater_.load(std::memory_order_relaxed); }
  // The kernel lets debugfs write 0 to io_tlb_used_hiwater and nothing else;
  // the next map sets it to the slots then in use.
  void reset_hiwater();
  PoolStats stats() const;

  // Live mappings whose owner is `owner` (a scan of every slot: for
  // teardown checks, not for hot paths).
  std::uint64_t count_owned(std::uint32_t owner) const;

  // Adopted mappings (AttachMode::adopt) hold slots that an earlier holder
  // of the pool handed out, for buffers of its own. They count as used, and
  // unmap, begin_unmap and find_mapping refuse them with
  // Errc::mapping_mismatch: their original buffers are not this process's,
  // so nothing may ever be copied to or from them.
  //
  // Frees the adopted mapping handed out at `tlb_addr` (the exact address
  // the earlier holder got). Fails with Errc::not_mapped, changing nothing,
  // when no adopted mapping starts there.
  Status release_adopted(PhysAddr tlb_addr);
  // Adopted mappings not yet released. O(areas).
  std::uint64_t adopted_count() const;
  // The adopted mappings not yet released, in address order, each with
  // owner kAdoptedOwner and no original address (a scan of every slot).
  std::vector<MappingInfo> adopted_mappings() const;

  // The longest run of free slots anywhere in the pool (a fragmentation measure).
  std::uint64_t largest_free_run() const;

  // Presetting a pool to a state it had before (a replay of a trace that
  // starts mid-stream, whose pool already held mappings and whose areas'
  // cursors had moved). Neither counts as a map or a search.
  //
  // occupy() marks the slots of a mapping handed out at `tlb_addr` for
  // `request` as in use, with the same records a map that chose them
  // writes, so that unmap(tlb_addr, ...) later frees them; the area's cursor
  // does not move. Fails, changing nothing, with Errc::invalid_argument when
  // `tlb_addr` does not fit the request's offset, the slots are outside the
  // pool, cross an area or a 128-slot segment, and with Errc::busy when any
  // of them is in use.
  Result<SlotMapping> occupy(PhysAddr tlb_addr, const SlotRequest& request);
  // Puts area `area`'s search cursor at `index` (area-relative); an index at
  // or past the area's end is 0, as the kernel wraps it. Fails with
  // Errc::invalid_argument for an area the pool does not have.
  Status set_area_cursor(std::uint32_t area, std::uint64_t index);

  // Walks every slot and area and checks the pool's invariants: every slot
  // record well formed and the slots in use made of whole mappings (the
  // checks attach makes before it adopts an image), free-run counters
  // consistent with the slots in use, used and adopted counts equal to the
  // slots in use and the adopted mappings, the policy's per-area state (if
  // it keeps one) consistent with the free-run counters, and the
  // high-water gates within the high-water mark. Returns the first
  // violation. Takes every area lock.
  Status check_invariants() const;

 private:
  struct Area;
  using Slot = SlotRecord;

  // With `image` null, the pool allocates its arrays and makes all slots
  // free; otherwise they are in `image` and create_in or attach fills them.
  SlotPool(const PoolGeometry& geometry, std::shared_ptr<const SlotPolicy> policy,
           std::byte* image);

  static Status check_create_args(const PoolGeometry& geometry, const SlotPolicy* policy);
  void format_free_runs();
  void format_image_slots();
  Status adopt_image_slots();
  void replay_into_policy_state(Area& area, std::uint32_t area_index);
  void record_holder(std::int32_t pid);

  Result<SearchPlan> make_plan(const SlotRequest& request) const;
  [[gnu::noinline]] Result<SlotMapping> map_searched(const SlotRequest& request, bool cache_tried);
  [[gnu::noinline]] void rewrite_streaming_records(std::uint32_t first, const StreamingRoute& route,
                                                   PhysAddr orig, std::uint64_t size,
                                                   Direction dir);
  [[gnu::cold]] static Error invalid_request(const SlotRequest& request);
  void commit_locked(Area& area, std::uint32_t area_index, std::uint32_t found,
                     const SearchPlan& plan, const SlotRequest& request, SlotMapping& mapping);
  Result<MappingInfo> take_mapping(PhysAddr tlb_addr, std::uint64_t min_align_mask,
                                   const MappingClaim* claim, bool release);
  [[gnu::noinline]] Result<MappingInfo> take_mapping_locked(Area& area, PhysAddr tlb_addr,
                                                            std::uint64_t min_align_mask,
                                                            const MappingClaim* claim,
                                                            bool release);
  [[gnu::cold]] Error outside_error(PhysAddr addr) const;
  Result<std::uint32_t> head_of_locked(PhysAddr tlb_addr, std::uint64_t min_align_mask) const;
  MappingInfo info_locked(std::uint32_t head) const;
  void info_locked(std::uint32_t head, MappingInfo& info) const;
  Area* cached_area(PhysAddr tlb_addr, std::uint64_t min_align_mask, std::uint32_t& head);
  bool live_at(std::uint32_t head, PhysAddr tlb_addr) const;
  static bool claim_matches(const Slot& head, const MappingClaim* claim);
  static Status check_claim(const MappingInfo& info, const MappingClaim& claim);
  [[gnu::cold]] static Error adopted_error(PhysAddr addr);
  void release_locked(Area& area, std::uint32_t first, std::uint32_t nslots);
  void write_records(std::uint32_t first, const SearchPlan& plan, const SlotRequest& request);
  void write_head(std::uint32_t first, const SearchPlan& plan, const SlotRequest& request);
  PhysAddr run_tlb_addr(std::uint32_t first, const SearchPlan& plan) const;
  void describe_run(std::uint32_t first, const SearchPlan& plan, std::uint32_t area_index,
                    SlotMapping& mapping) const;
  // The run cache's side of map and unmap (areas with a cache only).
  bool rewrite_cached_records(std::uint32_t first, const SearchPlan& plan,
                              const SlotRequest& request);
  static bool run_fits(const SearchPlan& plan, std::uint32_t first);
  bool take_cached(std::uint32_t area_index, const SearchPlan& plan, const SlotRequest& request,
                   SlotMapping& mapping);
  [[gnu::noinline]] StreamingMapping take_streaming(const StreamingRoute& route, PhysAddr orig,
                                                    std::uint64_t size, Direction dir,
                                                    unsigned cpu);
  StreamingMapping map_one_slot(const StreamingRoute& route, PhysAddr orig, std::uint64_t size,
                                Direction dir, unsigned cpu);
  template <class Fits, class Write>
  StreamingMapping take_newest_streaming(const StreamingRoute& route, PhysAddr orig,
                                         std::uint64_t size, Direction dir, unsigned cpu,
                                         std::uint32_t nslots, Fits&& fits, Write&& write);
  void after_cached_take(Area& area);
  bool put_cached_locked(Area& area, std::uint32_t head, std::uint32_t first, std::uint32_t nslots);
  ParkedRun park_cached(PhysAddr tlb_addr, std::uint64_t min_align_mask, const MappingClaim& claim,
                        const std::atomic<std::uint64_t>* waiters);
  [[gnu::cold]] void release_past_cache(Area& area, const MappingInfo& info);
  void drain_locked(Area& area);
  Result<MappingInfo> take_mapping_cached(Area& area, std::uint32_t head, PhysAddr tlb_addr,
                                          std::uint64_t min_align_mask, const MappingClaim* claim,
                                          bool release);
  Result<MappingInfo> take_live_cached(Area& area, std::uint32_t head, bool release);
  [[gnu::cold]] Result<MappingInfo> take_mapping_checked(Area& area, PhysAddr tlb_addr,
                                                         std::uint64_t min_align_mask,
                                                         const MappingClaim* claim, bool release);
  std::uint32_t area_index_of(std::uint64_t slot) const;
  Area& area_of(std::uint64_t slot) const;
  [[gnu::cold]] void raise_hiwater();
  [[gnu::cold]] Error full_error(const SearchPlan& plan) const;

  const PhysAddr start_;
  const std::uint64_t slot_count_;
  const std::uint32_t area_count_;
  const std::uint32_t area_slots_;
  const int area_shift_;  // log2(area_slots_), or -1 when it is not a power of two
  const std::shared_ptr<const SlotPolicy> policy_;
  bool caches_runs_ = false;  // set once, by the constructor

  std::unique_ptr<Area[]> areas_;
  // Free-run counters apart from the other slot fields: the search reads
  // only these, so they are packed for the cache. Guarded by the area locks.
  std::uint16_t* list_ = nullptr;
  Slot* slots_ = nullptr;  // guarded by the area locks
  // The arrays of a pool that keeps its metadata itself; null for an image.
  std::unique_ptr<std::uint16_t[]> owned_list_;
  std::unique_ptr<Slot[]> owned_slots_;
  // The image this pool holds (its header is rewritten when the pool lets
  // it go); null for a pool without one, and until attach has succeeded.
  std::byte* held_image_ = nullptr;

  // The kernel's used_hiwater, on a cache line away from the read-mostly
  // fields above: only maps that pass their area's gate write it. Written
  // with hiwater_lock_ held; read without locks.
  alignas(64) std::atomic<std::uint64_t> hiwater_{0};
  mutable std::mutex hiwater_lock_;  // taken before any area lock, never after one
  std::uint64_t gated_ = 0;          // the sum of the areas' gates; guarded by hiwater_lock_
  std::atomic<std::uint64_t> failures_{0};
};

}  // namespace swiotlb
