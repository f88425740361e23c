// IoTlb: a software IO TLB. One or more SlotPools, each over a Region of
// memory, with the bounce copies between original buffers and bounce slots,
// the kernel's warnings and its statistics.
//
// This is the kernel's io_tlb_mem. Devices hold a pointer to the IoTlb they
// bounce through (the kernel's dev->dma_io_tlb_mem); the DMA API in dma/
// decides when to bounce and which pool a device can use.
//
// Pools: pool 0 is the default pool, placed low (below 4 GiB where the
// system allows) so that 32-bit devices reach it. An optional high pool
// (pool 1) serves devices that reach it, so that the low pool stays free for
// those that cannot. A restricted IoTlb (the kernel's restricted-dma-pool)
// belongs to the devices bound to it: all their mappings bounce there and
// their coherent memory comes from it.
//
// Growth (off unless IoTlbOptions::growth asks for it): a configured pool
// can be extended by grown pools that a background worker adds when the
// pool runs short, and gives back when they have been idle a while; a
// mapping that finds every pool full and cannot wait can get a transient
// pool of its own, freed at its unmap; a caller that may sleep waits, first
// come first served, for room instead (see wait_queue.h). docs/growth.md
// has the design and its reasons.
//
// Copy rules (as the kernel's swiotlb_tbl_map_single and friends):
//  - map always fills the bounce buffer from the original, whatever the
//    direction, so a device that writes only part of a from_device buffer
//    leaves the rest as it was;
//  - unmap copies back for from_device and bidirectional unless
//    skip_cpu_sync;
//  - sync_for_cpu copies back (from_device, bidirectional);
//    sync_for_device copies in (to_device, bidirectional); both accept a
//    range inside the mapping.
//
// Memory, time and background work come from a backend (backend.h): real
// regions by default, a shared window or a simulation when the options name
// one.
//
// Statistics (JSON in io_tlb_json.h): one high-water mark over every pool,
// grown and transient included (the kernel's mem_used()); per configured
// pool, `failures` counts maps refused to their caller and `fall_throughs`
// the searches of one of its pools that found no room before another pool
// took the map.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "swiotlb/core/config.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/core/direction.h"
#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/core/log.h"
#include "swiotlb/iotlb/backend.h"
#include "swiotlb/iotlb/bounce_route.h"
#include "swiotlb/iotlb/dma_reach.h"
#include "swiotlb/iotlb/io_pool.h"
#include "swiotlb/iotlb/pool_table.h"
#include "swiotlb/iotlb/wait_queue.h"
#include "swiotlb/platform/region.h"
#include "swiotlb/platform/region_spec.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {

// How a map searches the pools of one configured pool when it has grown.
enum class PoolSearchOrder : std::uint8_t {
  // The configured pool, then grown pools oldest first, each pool's areas
  // in turn from the CPU's: load settles in the oldest pools, so the newest
  // drain and can be given back.
  oldest_first,
  // The kernel's since 6.12 ("reduce area lock contention for non-primary
  // IO TLB pools"): for each area offset i, every pool newest first (the
  // configured pool last) that has more than i areas, in its area
  // (cpu + i) & (nareas - 1).
  kernel,
};

SWIOTLB_API std::string_view to_string(PoolSearchOrder order);
// "oldest" or "kernel"; Errc::invalid_argument otherwise.
SWIOTLB_API Result<PoolSearchOrder> parse_pool_search_order(std::string_view name);

// Fields are in the order a reader meets them, grouped by topic; designated
// initializers must follow it, so it is kept although it pads the struct (one
// per IoTlb).
// NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding)
struct SWIOTLB_API IoTlbOptions {
  // A multiple of 128. When the system has not the memory, fewer: halved,
  // with nareas cut to a segment each, down to 512 (the kernel's boot-time
  // fallback; docs/growth.md).
  std::uint64_t nslabs = kDefaultSlotCount;
  std::uint32_t nareas = 1;   // a power of two
  bool force_bounce = false;  // bounce every streaming mapping
  // swiotlb=noforce: the IoTlb never bounces. It holds no pool; every map
  // and allocation fails with Errc::unsupported and contains() is false.
  bool disabled = false;
  std::string policy = "fast";  // a name make_slot_policy() knows
  RegionPlacement placement = RegionPlacement::low;

  // The high pool: 0 slots for none. Placed anywhere.
  std::uint64_t high_nslabs = 0;
  std::uint32_t high_nareas = 1;
  // Whether a device that prefers the high pool may fall back to the low
  // one when the high pool is full (off: the low pool is kept for devices
  // that can reach nothing else).
  bool high_overflows_to_low = false;

  // A restricted pool: force_bounce is implied.
  bool restricted = false;

  // Where the default pool lives, when not in anonymous memory placed by
  // `placement`: a memfd, a file, a fixed address (platform/region_spec.h).
  // Its `bytes` is set from nslabs.
  std::optional<RegionSpec> region;

  // Keep each pool's slot bookkeeping in its memory, after the slots (a
  // pool image, docs/persistent-pools.md), and a directory of the pools
  // after the default pool's image, so that a process that maps the same
  // memfd or file at the same address later can attach to every pool.
  // Needs `region` to be a memfd, file, hugetlbfs or device region of
  // persistent_region_bytes(nslabs) (pool_directory.h); with a high pool or
  // growth, a file or hugetlbfs region named by its path, whose file then
  // holds the other pools too. No transient pools: their mappings would
  // not be found again.
  bool persistent = false;

  // Instead of making the pools, attach to the pool images that an
  // earlier holder left in existing memory: `region` maps the default pool
  // (its size 0: persistent_region_bytes(nslabs)), whose directory names
  // the high and grown pools, each attached again at its address in the
  // same file; `pool` says whether the live mappings of every pool are
  // adopted or dropped. nslabs, nareas, high_nslabs, high_nareas and policy
  // must be those the images were made with. Implies persistent.
  struct Attach {
    AttachSpec region;
    AttachOptions pool;
  };
  std::optional<Attach> attach;

  // Where pool memory comes from (backend.h); null: the real backend over
  // `region`, `placement` and `attach`.
  std::shared_ptr<IoTlbBackend> backend;

  PoolSearchOrder search_order = PoolSearchOrder::oldest_first;

  // Growth beyond the configured pools. Off by default: the configured
  // slots are all there is, as in a kernel without CONFIG_SWIOTLB_DYNAMIC.
  struct Growth {
    bool enabled = false;
    // Slots per grown pool: 4 MiB, the largest pool the kernel grows. When
    // the backend cannot give that much, half is tried, and so on down to
    // one segment (the kernel's swiotlb_alloc_pool).
    std::uint64_t pool_nslabs = 2048;
    std::uint32_t pool_nareas = 1;
    // The most slots all configured and grown pools may hold together
    // (transient pools not counted); 0: 16 times the configured slots.
    // Reaching it is logged once and counted.
    std::uint64_t max_nslabs = 0;
    // A pool is added when the newest pool of a configured pool is this
    // full after a map (percent of its slots), as well as when a search
    // fails.
    unsigned watermark_percent = 75;
    // A grown pool that held no mapping for this long, by the backend's
    // clock, is given back; zero: never (the kernel's behaviour).
    std::chrono::milliseconds shrink_after{0};
    // The caller alone adds and removes grown pools (IoTlb::add_pool and
    // remove_pool), when and where it likes: a replay that follows the
    // pool additions a kernel recorded. The IoTlb then never grows or
    // shrinks by itself, and pool_nslabs, pool_nareas, max_nslabs,
    // watermark_percent and shrink_after are not read.
    bool by_caller = false;
  };
  Growth growth;

  // A mapping that finds every pool full, from a caller that cannot sleep,
  // gets a pool of its own (sized to it, freed at its unmap). Never for a
  // restricted IoTlb.
  bool transient = false;
  // The most slots transient pools may hold at once; 0: no bound.
  std::uint64_t transient_max_nslabs = 0;
  // How large a transient pool is.
  enum class TransientSize : std::uint8_t {
    // Whole pages with room for the mapping's alignment: the pool always
    // holds the mapping it is made for.
    room_for_alignment,
    // The kernel's (swiotlb_find_slots since 6.6): exactly the slots the
    // mapping needs, one area, searched once from its first slot; when
    // that slot does not have the alignment the mapping asks for, the pool
    // is freed at once and the map fails.
    exact_slots,
  };
  TransientSize transient_size = TransientSize::room_for_alignment;

  // Slots of a reserve pool made at creation (0: none; else a multiple of
  // 128) for maps of the default pool from callers that cannot sleep: when
  // every pool is full, such a map takes room in the reserve before a
  // transient pool is made on its thread, as the kernel's atomic pools
  // serve allocations that cannot wait for the page allocator. When the
  // reserve is full too, a transient pool is made if `transient` allows,
  // else the map is refused (Errc::pool_full). Callers that may sleep wait
  // instead and never draw on it. Not for a restricted or persistent IoTlb.
  std::uint64_t reserve_nslabs = 0;

  // How long a caller that passes Attr::may_sleep without a deadline of
  // its own waits for room before it gets Errc::timed_out.
  std::chrono::milliseconds wait_timeout{1000};

  // The options a parsed `swiotlb=` gives (noforce: `disabled`; addr=
  // places the default pool at that address).
  static Result<IoTlbOptions> from_config(const SwiotlbConfig& config);
};

struct PoolInfo {
  std::string_view name;  // "low" for the default pool, "high"
  PhysAddr start;
  PhysAddr end;
};

// Told of every pool area a map searches, in order (replays and
// explanations). Called on the mapping thread, inside the search: it must
// not call back into the IoTlb. A search with an observer goes one area at
// a time; it finds what a search without one finds.
class PoolDirectory;

class SWIOTLB_API SearchObserver {
 public:
  virtual void searched(PhysAddr pool_start, PoolKind kind, std::uint32_t area, bool found) = 0;

 protected:
  ~SearchObserver() = default;
};

// A live bounce mapping and the pool that holds it (valid while the
// mapping is live).
struct BounceMapping {
  MappingInfo info;
  IoPool* pool = nullptr;
};

// What the caller asks of a bounce mapping, beyond the slot request.
struct BounceRequest {
  // Every field takes its default below. A constructor of its own rather
  // than value-initialization, which compilers turn into a string
  // instruction that clears all 144 bytes before the defaults are set:
  // on some processors that costs more than the rest of a map from the
  // run cache.
  BounceRequest() {}

  std::uint32_t pool = 0;  // which configured pool (see pool_count()), with its growth
  PhysAddr orig;
  std::uint64_t size = 0;
  // Bytes to reserve when they differ from `size` (SlotRequest::alloc_size:
  // only the linux-6.1 policy reads it); 0: `size`.
  std::uint64_t alloc_size = 0;
  std::uint64_t alloc_align_mask = 0;
  std::uint64_t min_align_mask = 0;
  std::uint64_t seg_boundary_mask = ~std::uint64_t{0};
  DmaAddr pool_dma_start;  // where the device sees that pool
  Direction dir = Direction::bidirectional;
  Attrs attrs;
  std::uint32_t owner = 0;
  std::string_view owner_name;  // for messages
  // How the device sees grown and transient pools; null: at their CPU
  // addresses, all reachable.
  const DmaReach* reach = nullptr;
  // With Attr::may_sleep: until when to wait for room (default: now plus
  // IoTlbOptions::wait_timeout).
  std::optional<WaitQueue::Clock::time_point> deadline;
  // The caller has another pool to try when this one is full (a high pool
  // that overflows into the low one): map() then searches once and returns
  // Errc::pool_full at once, without waiting, a transient pool or a
  // warning, so that the caller's last pool is where those happen.
  bool more_pools = false;
  // The CPU whose area the search starts in; default: the calling thread's.
  std::optional<unsigned> cpu;
  // Told of each area searched; null: nobody. Not owned.
  SearchObserver* observer = nullptr;
};

// The slot request a bounce request makes of a pool (SlotPool::map): the
// CPU is the calling thread's when the request names none; the pool's
// device start is left for the caller to set, per pool. Thread-safe, no
// errors.
SWIOTLB_API SlotRequest slot_request(const BounceRequest& request);

// A pool that came after creation, as the statistics show it.
struct DynamicPoolStats {
  std::string name;
  PoolKind kind = PoolKind::grown;
  std::uint32_t tier = 0;
  std::uint32_t owner = 0;  // transient: the device
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  std::uint64_t nslabs = 0;
  std::uint64_t used = 0;
  std::uint32_t nareas = 1;
  std::uint64_t maps = 0;     // maps it served
  std::uint64_t hiwater = 0;  // most slots in use in it at once
};

// A configured pool together with the grown and transient pools that serve
// it: what the kernel's debugfs reports for one io_tlb_mem.
struct ServedStats {
  std::uint64_t nslabs = 0;         // configured and grown slots (not transient)
  std::uint64_t used = 0;           // slots in use in all of them (mem_used())
  std::uint64_t hiwater = 0;        // most in use at once since the last reset
  std::uint64_t refused = 0;        // maps and allocations that failed for want of room
  std::uint64_t fall_throughs = 0;  // maps that found the first pool searched full and
                                    // got room in a later one
};

struct GrowthStats {
  std::uint64_t grown_pools = 0;             // grown pools now
  std::uint64_t grown_nslabs = 0;            // their slots
  std::uint64_t grow_events = 0;             // pools added, ever
  std::uint64_t grow_failures = 0;           // growths that got no pool at all
  std::uint64_t grown_smaller = 0;           // pools grown at less than full size
  std::uint64_t limit_reached = 0;           // growths refused by max_nslabs
  std::uint64_t shrunk_pools = 0;            // grown pools given back, ever
  std::uint64_t transient_pools = 0;         // transient pools now
  std::uint64_t transient_pools_total = 0;   // transient pools made, ever
  std::uint64_t transient_nslabs = 0;        // their slots now
  std::uint64_t transient_nslabs_total = 0;  // slots of every transient pool, ever
  std::uint64_t transient_failures = 0;      // transient pools refused
};

// The reserve for callers that cannot sleep (IoTlbOptions::reserve_nslabs).
struct ReserveStats {
  std::uint64_t nslabs = 0;     // its slots (0: no reserve)
  std::uint64_t used = 0;       // slots in use in it now
  std::uint64_t hiwater = 0;    // most in use at once
  std::uint64_t maps = 0;       // maps it served, ever
  std::uint64_t exhausted = 0;  // maps that found it full too
};

struct IoTlbStats {
  std::vector<PoolStats> pools;            // configured pools, by index
  std::vector<ServedStats> served;         // per configured pool, with its growth
  std::uint64_t coherent_allocations = 0;  // live alloc_coherent buffers
  std::vector<DynamicPoolStats> dynamic;   // grown and transient pools, by address
  GrowthStats growth;
  ReserveStats reserve;
  WaitStats waits;
};

// A coherent allocation (the kernel's swiotlb_alloc).
struct AllocRequest {
  std::uint32_t pool = 0;  // which configured pool
  std::uint64_t size = 0;  // bytes; rounded up to whole pages
  DmaAddr pool_dma_start;  // where the device sees that pool
  std::uint32_t owner = 0;
  const DmaReach* reach = nullptr;  // as in BounceRequest
  bool more_pools = false;          // as in BounceRequest
};

// What map_queued() did with a request.
enum class QueuedMap : std::uint8_t {
  done,    // `done` already ran, on the caller's thread
  queued,  // `done` will run on the IoTlb's worker thread
};

class SWIOTLB_API IoTlb {
 public:
  static Result<std::unique_ptr<IoTlb>> create(const IoTlbOptions& options);
  ~IoTlb();
  IoTlb(const IoTlb&) = delete;
  IoTlb& operator=(const IoTlb&) = delete;

  // Reserves slots in request.pool (or a pool grown for it) and fills them
  // from the original buffer. When every pool is full (and the request
  // has no more_pools):
  //  - with Attr::may_sleep the caller waits for room (first come, first
  //    served) until its deadline: Errc::timed_out then;
  //  - without it, the reserve (reserve_nslabs, default pool only) is
  //    tried, then a transient pool is made when the options allow;
  //  - otherwise the kernel's "swiotlb buffer is full" warning is logged
  //    (rate-limited, unless attrs has no_warn) and Errc::pool_full returned.
  // A growing IoTlb asks its worker for another pool either way.
  Result<PhysAddr> map(const BounceRequest& request);
  // map()'s hit path on its own: the request served from the run cache of
  // its configured pool (SlotPool::map_cached) when that is what map()
  // would do first: true with `tlb` set, the bytes filled in (`copy`; the
  // slots zeroed otherwise) and the counters moved, exactly as map() would
  // have left them. False, changing nothing, for anything else (a miss, an
  // alignment, a waiter queued first, a policy without a run cache): call
  // map() then. Reads no pool table (configured pools live as long as the
  // IoTlb); no allocation, no error built. Thread-safe as map().
  bool map_cached(const BounceRequest& request, bool copy, PhysAddr& tlb);

  // The route of every request that differs from `request` only in its
  // buffer, size, direction and attrs: set in `route`, and true, when
  // map_streaming() may serve such requests at all (a configured pool
  // whose policy caches runs, searched first in the oldest-first order; no
  // alloc_align_mask, an alloc_size map() accepts, a boundary mask of the
  // form 2^n - 1). False, leaving `route` alone, otherwise: map() is then
  // the only way. The request's deadline, cpu and observer are not part of
  // a route: a request with any of them goes to map_cached() or map().
  // Thread-safe; reads only what never changes.
  bool streaming_route(const BounceRequest& request, BounceRoute& route) const;
  // map_cached() with copy, for a request of `size` bytes at `orig` in
  // direction `dir` with `attrs`, from the calling thread's CPU, whose
  // other fields `route` holds: the same outcome, without a request to
  // build or read. REQUIRES: `route` from this IoTlb's streaming_route();
  // a default-made route (one streaming_route() refused) is a miss.
  // Thread-safe as map().
  bool map_streaming(const BounceRoute& route, PhysAddr orig, std::uint64_t size, Direction dir,
                     Attrs attrs, PhysAddr& tlb);

  // The queued form (FreeBSD's deferred busdma load): maps now if there is
  // room and nobody waits, running `done` on this thread; otherwise queues
  // the request behind the waiters, and `done` runs on the worker thread
  // with the mapping or, once the deadline passes, Errc::timed_out. The
  // request's owner_name is copied; `reach` must outlive the request.
  QueuedMap map_queued(const BounceRequest& request, std::function<void(Result<PhysAddr>)> done);

  // Copies back as the direction asks (unless skip_cpu_sync) and frees the
  // slots. The claim (size, direction, owner) must match the map; otherwise
  // nothing happens and Errc::mapping_mismatch is returned.
  Status unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask, const MappingClaim& claim,
               Attrs attrs);
  // unmap()'s hit path on its own: a live mapping of a configured pool,
  // in an area with a run cache, that `claim` matches. With nothing to
  // copy back (skip_cpu_sync, or a direction the device does not write)
  // its run is parked in the cache when the cache takes it
  // (SlotPool::unmap_cached); otherwise it is marked going
  // (SlotPool::begin_unmap_cached), copied back and freed, as unmap()
  // does. Then true, with the mapping gone and the counters moved as
  // unmap() would have left them. False, changing nothing, for anything
  // else (another pool, an address or claim unmap() would refuse, a full
  // cache for a run with nothing to copy): call unmap() then, which does
  // it or says why not. No read section, no error built. Callers waiting
  // for room are woken as unmap() wakes them; a parked run does it without
  // a fence (WaitQueue's Ordering). Thread-safe as unmap().
  bool unmap_cached(PhysAddr tlb_addr, std::uint64_t min_align_mask, const MappingClaim& claim,
                    Attrs attrs);
  // unmap_cached() for a mapping that map_streaming() made with `route`,
  // unmapped with `size`, `dir` and `attrs` by the route's owner: the same
  // outcome, without a claim to build or a pool to look for. REQUIRES:
  // `route` from this IoTlb's streaming_route(); a default-made route is a
  // miss. Thread-safe as unmap().
  bool unmap_streaming(const BounceRoute& route, PhysAddr tlb_addr, std::uint64_t size,
                       Direction dir, Attrs attrs);

  // unmap in two steps, for callers that act between the check and the
  // copy (cache maintenance on a non-coherent device): begin_unmap checks
  // the claim and marks the mapping as going; finish_unmap copies back and
  // frees. REQUIRES for finish_unmap: `mapping` from begin_unmap, once.
  Result<BounceMapping> begin_unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask,
                                    const MappingClaim& claim);
  void finish_unmap(const BounceMapping& mapping, Attrs attrs);

  // Syncs [addr, addr + size), which must lie inside one live mapping of
  // `owner` mapped with `dir`.
  Status sync_for_cpu(PhysAddr addr, std::uint64_t size, Direction dir, std::uint32_t owner);
  Status sync_for_device(PhysAddr addr, std::uint64_t size, Direction dir, std::uint32_t owner);

  // The two steps of a sync: the check, then the copy the direction asks for.
  Result<BounceMapping> find_for_sync(PhysAddr addr, std::uint64_t size, Direction dir,
                                      std::uint32_t owner) const;
  void copy_for_cpu(const BounceMapping& mapping, PhysAddr addr, std::uint64_t size);
  void copy_for_device(const BounceMapping& mapping, PhysAddr addr, std::uint64_t size);

  // A zeroed allocation (the kernel's swiotlb_alloc), and its release.
  Result<PhysAddr> alloc(const AllocRequest& request);
  Status free(PhysAddr addr, std::uint64_t size, std::uint32_t owner);

  // The kernel's is_swiotlb_buffer(): whether any pool (configured, grown
  // or transient) holds `addr`. Lock-free, O(log pools).
  bool contains(PhysAddr addr) const;
  // The configured pool that holds `addr` or that the pool holding it was
  // made for, or -1.
  int pool_of(PhysAddr addr) const;
  // Live mappings and allocations of `owner`, in every pool (a scan of
  // every slot: for teardown checks).
  std::uint64_t count_owned(std::uint32_t owner) const;

  // Gives back the slots of a mapping adopted from an earlier holder of a
  // persistent pool (see IoTlbOptions::attach). Nothing is copied: its
  // original buffer was in the other process.
  Status release_adopted(PhysAddr tlb_addr);

  // Adds a grown pool of `nslabs` slots in `nareas` areas that serves
  // configured pool `tier`, with memory from the backend (all of it or
  // nothing: no halving), searchable once this returns. Returns its start.
  // Errc::invalid_argument when the IoTlb does not grow, the tier does not
  // exist or the geometry is impossible (validate_geometry); the backend's
  // error when it gives no memory; Errc::invalid_argument when the memory
  // overlaps a pool.
  Result<PhysAddr> add_pool(std::uint32_t tier, std::uint64_t nslabs, std::uint32_t nareas);
  // Takes the grown pool that starts at `start` out of the IoTlb (its
  // memory goes back after the next maintenance). Errc::invalid_argument
  // unless growth is by_caller; Errc::not_mapped when no grown pool starts
  // there; Errc::busy, with nothing changed, when it still holds mappings.
  // Blocks for a grace period of the pool table.
  Status remove_pool(PhysAddr start);

  // Runs the pending background work now on this thread: growth asked
  // for, idle pools past their time, memory to reclaim, queued maps. With a
  // caller-driven backend this is the only place it runs; with a worker
  // thread it gives tests a known state (the worker does the same by itself).
  void run_maintenance();
  // Whether the IoTlb bounces at all (false for swiotlb=noforce).
  bool enabled() const { return !configured_.empty(); }
  bool force_bounce() const { return force_bounce_; }
  bool restricted() const { return restricted_; }
  bool grows() const { return growth_.enabled && enabled(); }
  // Whether the IoTlb grows by itself (not only by add_pool()).
  bool grows_by_itself() const { return grows() && !growth_.by_caller; }
  bool makes_transient_pools() const { return transient_; }
  PoolSearchOrder search_order() const { return search_order_; }
  bool high_overflows_to_low() const { return high_overflows_to_low_; }

  // The configured pools (fixed for the IoTlb's life).
  std::uint32_t pool_count() const { return static_cast<std::uint32_t>(configured_.size()); }
  PoolInfo pool_info(std::uint32_t pool) const;
  // The default pool's region (its file descriptor, for sharing a memfd),
  // or null when the backend gave memory without a mapping (simulation).
  // REQUIRES: enabled().
  const Region* region() const { return configured_[0]->memory.region.get(); }
  // The default (low) pool's extent. REQUIRES: enabled().
  PhysAddr start() const { return configured_[0]->slots->start(); }
  PhysAddr end() const { return configured_[0]->slots->end(); }
  // A configured pool's slots, read-only. REQUIRES: index < pool_count().
  const SlotPool& pool(std::uint32_t index = 0) const { return *configured_[index]->slots; }
  const IoTlbBackend& backend() const { return *backend_; }

  // CPU pointer to bounce address `addr`, or null when no pool holds it or
  // no memory stands behind it (a simulation backend). Valid while the
  // mapping that holds `addr` is live.
  std::byte* bounce_pointer(PhysAddr addr) const;

  // Slots in use now in configured pool `pool` and the pools that serve it
  // (grown and transient), and the most at once since the last reset: the
  // kernel's io_tlb_used and io_tlb_used_hiwater. 0 for a pool that does
  // not exist.
  std::uint64_t used(std::uint32_t pool = 0) const;
  std::uint64_t hiwater(std::uint32_t pool = 0) const;
  // As writing 0 to the kernel's io_tlb_used_hiwater: every mark restarts
  // from the slots in use now.
  void reset_hiwater();

  // Walks every pool and checks what the IoTlb relies on: each pool's own
  // invariants (SlotPool::check_invariants), the pool table sorted by
  // address without overlaps and its search orders listing exactly the
  // configured and grown pools of each tier, every configured pool in it,
  // the slots in use over all pools equal to the IoTlb's count when no map
  // or unmap is in flight, and no waiter left queued while room is free
  // and the queue idle. Returns the first violation (Errc::internal).
  // Takes every area lock in turn; for tests and debugging, any build.
  Status check_invariants() const;

  IoTlbStats stats() const;
  // The growth counters alone: cheap (no walk over the pools), so that a
  // caller may read them after every call. The *_pools and *_nslabs
  // figures of the pools now are those of stats().
  GrowthStats growth_stats() const;

  // Whether a pool could ever hold `request`: its slots fit in one segment
  // (no run of slots crosses a segment). A request that cannot is refused
  // at once, with no growth, transient pool or wait, as the kernel refuses
  // it before it searches.
  bool fits_a_segment(const BounceRequest& request) const;
  // The kernel's debugfs files, one "name: value" line each; the high
  // pool's names end in "_high". A configured pool's figures include the
  // pools grown for it and transient pools made in its place; a growing
  // IoTlb adds io_tlb_transient_nslabs, as the kernel does.
  std::string debugfs_text() const;
  // The kernel's boot line: "software IO TLB: mapped [mem 0x...-0x...] (64MB)",
  // whose second address is the pool's end (one past its last byte); one
  // line per pool.
  std::string boot_line() const;

 private:
  // The internals (src/iotlb/io_tlb_internal.h, io_tlb_worker.h): what
  // the IoTlb counts, the worker that runs its background work, and the
  // builder of its configured pools.
  class Worker;
  struct Counters;
  friend class IoTlbBuilder;
  // The hit of map_streaming() and unmap_streaming(), inline
  // (src/iotlb/streaming_hit.h), so that the DMA layer's map_page and
  // unmap_page hold it in their own frame.
  friend struct StreamingHit;

  IoTlb(std::unique_ptr<PoolTable> table, std::vector<IoPool*> configured,
        std::shared_ptr<const SlotPolicy> policy, std::shared_ptr<IoTlbBackend> backend,
        const IoTlbOptions& options);

  // The map path (io_tlb_map.cc). try_map: one pass over the pools of
  // request.pool: the mapping (bytes copied in) or the first pool's error.
  // REQUIRES: a PoolTable::ReadGuard.
  Result<PhysAddr> try_map(const BounceRequest& request, bool copy);
  // try_map's general search; `configured_full`: the error of the
  // configured pool, which try_map has tried already (the search then
  // starts at the next pool of the oldest-first order).
  [[gnu::cold]] Result<PhysAddr> search_pools(const BounceRequest& request, bool copy,
                                              std::optional<Error> configured_full);
  Result<PhysAddr> map_slots(const BounceRequest& request, bool copy);
  // The configured pool that holds `addr`, or null (a few comparisons, no
  // read section: configured pools live as long as the IoTlb).
  IoPool* configured_holding(PhysAddr addr) const {
    for (IoPool* pool : configured_) {
      if (addr >= pool->start && addr < pool->end) {
        return pool;
      }
    }
    return nullptr;
  }
  Result<PhysAddr> wait_for_room(const BounceRequest& request, bool copy);
  // One attempt of a waiting or queued request, in its own read section:
  // nothing while there is still no room.
  std::optional<Result<PhysAddr>> try_for_waiter(const BounceRequest& request, bool copy);
  Error timeout_error(const BounceRequest& request, WaitQueue::Clock::time_point start) const;
  // Where the device sees a pool other than the configured one it asked
  // for; nothing when it does not reach it.
  std::optional<DmaAddr> dma_start_of(const IoPool& pool, const BounceRequest& request) const;
  void after_map(const IoPool& pool, std::span<IoPool* const> order);
  IoPool* cached_pool(std::uint32_t pool, Attrs attrs);
  [[gnu::cold]] void refused(const BounceRequest& request, const Error& error);

  // Transient pools (io_tlb_transient.cc).
  Result<PhysAddr> map_transient(const BounceRequest& request, bool copy);
  // The reserve (io_tlb_reserve.cc): made once at creation; a map in it.
  Status make_reserve(std::uint64_t nslabs);
  Result<PhysAddr> map_reserve(const BounceRequest& request, bool copy);

  // The unmap side (io_tlb_unmap.cc).
  void finish_release(IoPool* pool, std::uint64_t nslots);
  void copy_to_bounce(const BounceMapping& mapping, PhysAddr addr, std::uint64_t size);
  void copy_from_bounce(const BounceMapping& mapping, PhysAddr addr, std::uint64_t size);

  // Growth and shrink, for the worker (io_tlb_growth.cc).
  void grow(std::uint32_t tier);
  void shrink_idle();
  std::uint64_t total_nslabs() const;

  // Memory for a pool that comes later, announced before it is used
  // (io_tlb_growth.cc); null with the failure counted by the caller.
  Result<std::unique_ptr<IoPool>> make_dynamic_pool(PoolKind kind, std::uint32_t tier,
                                                    std::uint64_t bytes, std::uint64_t nslabs,
                                                    std::uint32_t nareas, std::uint32_t owner);

  const std::shared_ptr<IoTlbBackend> backend_;  // first: outlives every pool
  std::unique_ptr<PoolTable> table_;
  std::vector<IoPool*> configured_;  // fixed after creation; owned by table_
  const std::shared_ptr<const SlotPolicy> policy_;
  const bool force_bounce_;
  const bool restricted_;
  const bool high_overflows_to_low_;
  const IoTlbOptions::Growth growth_;
  const PoolSearchOrder search_order_;
  const bool transient_;
  // Whether pools come and go. Without growth or transient pools the table
  // is fixed once created, and lookups skip the read-side critical section.
  const bool dynamic_;
  const std::uint64_t transient_max_nslabs_;
  const IoTlbOptions::TransientSize transient_size_;
  const std::chrono::milliseconds wait_timeout_;
  // A persistent IoTlb's record of its pools, in the default pool's
  // memory; null otherwise.
  std::unique_ptr<PoolDirectory> directory_;
  IoPool* reserve_ = nullptr;  // owned by table_; set once at creation
  RateLimit full_warnings_;
  std::atomic<std::uint64_t> coherent_allocations_{0};
  std::unique_ptr<Counters> counters_;
  WaitQueue waits_;
  std::unique_ptr<Worker> worker_;  // last: stopped before the rest goes
};

}  // namespace swiotlb
