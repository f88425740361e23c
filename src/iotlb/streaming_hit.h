// StreamingHit: the IoTlb's part of a streaming map or unmap served by the
// run cache of a route's configured pool, inline. Private to the library:
// IoTlb::map_streaming / unmap_streaming are these, and the DMA layer's
// map_page / unmap_page inline them too, so that a one-pool device's hit is
// one frame above SlotPool's rather than two. The crossing from map_single
// into a separate IoTlb frame (saved registers, arguments and the result
// through memory) cost about 3 ns a pair (docs/benchmarks.md).
//
// Thread safety, errors and what each needs: as IoTlb::map_streaming and
// IoTlb::unmap_streaming (include/swiotlb/iotlb/io_tlb.h).
#pragma once

#include <cstdint>

#include "io_tlb_internal.h"
#include "swiotlb/iotlb/bounce_route.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/platform/cpu.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {

struct StreamingHit {
  // IoTlb::map_streaming.
  [[gnu::always_inline]] static bool map(IoTlb& io_tlb, const BounceRoute& route, PhysAddr orig,
                                         std::uint64_t size, Direction dir, Attrs attrs,
                                         PhysAddr& tlb) {
    // A route streaming_route() never set names no pool: a miss.
    if (route.configured == nullptr) [[unlikely]] {
      return false;
    }
    IoPool& configured = *route.configured;
    // cached_pool's conditions that can change.
    if ((attrs.has(Attr::may_sleep) && io_tlb.waits_.has_waiters()) ||
        !configured.accepting.load(std::memory_order_relaxed)) {
      return false;
    }
    const StreamingMapping hit =
        route.slots_pool->map_streaming(route.slots, orig, size, dir, current_cpu());
    if (!hit) {
      return false;
    }
    finish_map(io_tlb, configured, route.pool, hit, orig, size, true);
    tlb = hit.tlb_addr;
    return true;
  }

  // IoTlb::unmap_streaming.
  [[gnu::always_inline]] static bool unmap(IoTlb& io_tlb, const BounceRoute& route,
                                           PhysAddr tlb_addr, std::uint64_t size, Direction dir,
                                           Attrs attrs) {
    if (!attrs.has(Attr::skip_cpu_sync) && copies_from_device(dir)) {
      return io_tlb.unmap_cached(tlb_addr, route.slots.min_align_mask,
                                 {size, dir, route.slots.owner}, attrs);
    }
    if (route.configured == nullptr) [[unlikely]] {
      return false;  // a route streaming_route() never set: a miss
    }
    const ParkedRun parked = route.slots_pool->unmap_streaming(route.slots, tlb_addr, size, dir,
                                                               &io_tlb.waits_.waiter_count());
    if (!parked) {
      return false;
    }
    release_parked(io_tlb, *route.configured, parked.nslots.value(), parked.waiting);
    return true;
  }

  // What try_map does after a map into the configured pool `configured`,
  // pool number `pool`, served from its run cache: the bytes in, the
  // tier's count, growth.
  [[gnu::always_inline]] static void finish_map(IoTlb& io_tlb, IoPool& configured,
                                                std::uint32_t pool, const StreamingMapping& hit,
                                                PhysAddr orig, std::uint64_t size, bool copy) {
    fill_mapping(configured, hit.tlb_addr, orig, size, copy);
    io_tlb.counters_->tiers[pool].count_map(configured, true, hit.nslots.value());
    if (io_tlb.grows_by_itself()) {
      PoolTable::ReadGuard reading(io_tlb.dynamic_);
      io_tlb.after_map(configured, io_tlb.table_->search_order(pool));
    }
  }

  // IoTlb::finish_release for a run of a configured pool parked in its run
  // cache, with `waiting` the waiters counted under the cache's lock, which
  // every waiter's attempt passes (IoTlb::try_for_waiter): no fence.
  [[gnu::always_inline]] static void release_parked(IoTlb& io_tlb, const IoPool& pool,
                                                    std::uint64_t nslots, std::uint64_t waiting) {
    io_tlb.counters_->tiers[pool.tier].count_unmap(true, nslots);
    io_tlb.waits_.notify_counted(waiting);
  }
};

}  // namespace swiotlb
