// The DMA API: what a driver calls to let a device reach its buffers.
//
// Named and shaped after the kernel's dma_map_single() and friends. A map
// returns the device address to hand to the device; the caller keeps the
// buffer alive and untouched until the matching unmap (or a sync for the
// CPU). Whether a mapping is direct or bounced is decided as the kernel's
// dma-direct decides it:
//  - the device's pool forces bouncing (swiotlb=…,force): bounce;
//  - the device cannot reach the buffer: bounce if it has a pool, else fail;
//  - otherwise: direct, the device address of the buffer itself.
// A bounce whose slots the device still cannot reach is undone and fails.
//
// Every misuse the kernel's DMA debugging catches is an error here, counted
// on the device (see dma_debug.h), and leaves everything as it was; misuse
// of a direct mapping only while the device's debug checks are on.
//
// Thread safety: every function may be called from any thread; calls on
// one mapping must be ordered by the caller (map before its syncs, syncs
// before its unmap), as in the kernel.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "swiotlb/core/address.h"
#include "swiotlb/core/direction.h"
#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/dma/device.h"

namespace swiotlb {

// Maps [phys, phys + size). Errors: invalid_argument (size 0, direction
// none), pool_full, unreachable.
SWIOTLB_API Result<DmaAddr> map_page(Device& dev, PhysAddr phys, std::uint64_t size, Direction dir,
                                     Attrs attrs = {});
SWIOTLB_API Result<DmaAddr> map_single(Device& dev, const void* cpu_addr, std::uint64_t size,
                                       Direction dir, Attrs attrs = {});

// Ends a mapping; size and direction must be those of the map. Copies a
// bounced buffer back for from_device and bidirectional unless
// skip_cpu_sync.
SWIOTLB_API Status unmap_page(Device& dev, DmaAddr addr, std::uint64_t size, Direction dir,
                              Attrs attrs = {});
SWIOTLB_API Status unmap_single(Device& dev, DmaAddr addr, std::uint64_t size, Direction dir,
                                Attrs attrs = {});

// Hands [addr, addr + size) of a live mapping to the CPU or back to the
// device. The range may be any part of the mapping (the kernel's
// dma_sync_single_range_*); the direction must be the map's.
SWIOTLB_API Status sync_single_for_cpu(Device& dev, DmaAddr addr, std::uint64_t size,
                                       Direction dir);
SWIOTLB_API Status sync_single_for_device(Device& dev, DmaAddr addr, std::uint64_t size,
                                          Direction dir);

// The largest mapping this device can be sure to get: 256 KiB less the
// slots its min_align_mask may skip, when it bounces; unbounded otherwise.
SWIOTLB_API std::uint64_t max_mapping_size(const Device& dev);

// One entry of a scatter-gather list. The caller fills phys and length;
// map_sg fills dma_address and dma_length.
struct ScatterEntry {
  PhysAddr phys;
  std::uint32_t length = 0;
  DmaAddr dma_address;
  std::uint32_t dma_length = 0;
};

// Maps every entry (no merging, as dma-direct). On failure the entries
// already mapped are unmapped again and the error returned. Also refused:
// an entry longer than max_segment_size, or one whose device addresses
// would cross the segment boundary. Returns the number of entries mapped.
SWIOTLB_API Result<std::size_t> map_sg(Device& dev, std::span<ScatterEntry> sg, Direction dir,
                                       Attrs attrs = {});
// Unmaps every entry; goes on after an error and returns the first one.
SWIOTLB_API Status unmap_sg(Device& dev, std::span<ScatterEntry> sg, Direction dir,
                            Attrs attrs = {});
SWIOTLB_API Status sync_sg_for_cpu(Device& dev, std::span<ScatterEntry> sg, Direction dir);
SWIOTLB_API Status sync_sg_for_device(Device& dev, std::span<ScatterEntry> sg, Direction dir);

// ---- Waiting and queued mappings ----------------------------------------------
//
// A bounce that finds every pool of the device full fails at once with
// Errc::pool_full (or gets a transient pool, when the IoTlb makes them).
// A caller that can wait for room has two more ways, both first come,
// first served with every other waiter of the IoTlb (a request that
// arrives later never takes room before an earlier one):
//  - it sleeps: map_page with Attr::may_sleep waits up to the IoTlb's
//    wait_timeout; the *_until calls wait until the caller's deadline;
//  - it queues (FreeBSD's deferred busdma load): the *_queued calls return
//    at once; the callback gets the mapping on the IoTlb's worker thread
//    once there is room, or Errc::timed_out at the deadline.
// Only a bounce ever waits: a direct mapping, an invalid request or a
// device with no pool it reaches is answered at once (for a queued call,
// on the caller's thread, before it returns). Behind an IOMMU, a bounce
// waits up to the IoTlb's wait_timeout whatever the deadline. A waiting
// or queued map never makes a transient pool.
using DmaDeadline = std::chrono::steady_clock::time_point;

// map_page / map_single / map_sg with Attr::may_sleep, waiting at most
// until `deadline`. Errors: those of map_page, and Errc::timed_out. A
// scatter-gather list waits entry by entry, holding the entries mapped
// before; when one fails they are unmapped again.
SWIOTLB_API Result<DmaAddr> map_page_until(Device& dev, PhysAddr phys, std::uint64_t size,
                                           Direction dir, DmaDeadline deadline, Attrs attrs = {});
SWIOTLB_API Result<DmaAddr> map_single_until(Device& dev, const void* cpu_addr, std::uint64_t size,
                                             Direction dir, DmaDeadline deadline, Attrs attrs = {});
SWIOTLB_API Result<std::size_t> map_sg_until(Device& dev, std::span<ScatterEntry> sg, Direction dir,
                                             DmaDeadline deadline, Attrs attrs = {});

// What a queued call did with its request.
enum class DmaQueued : std::uint8_t {
  done,    // the callback already ran, on the caller's thread
  queued,  // the callback will run on the IoTlb's worker thread
};

// Queued maps. The callback runs exactly once, with the device address (or
// the number of entries, with dma_address and dma_length filled in) or the
// error; it must not throw, and should be short: it runs on the worker
// thread that serves every queued request of the IoTlb. It may map and
// unmap. REQUIRES: the device, and for map_sg_queued the list, outlive the
// callback. Queued requests of one IoTlb complete in the order they were
// queued; a scatter-gather list keeps its entries in order, an entry that
// has to wait joining the queue behind the requests already in it.
// deadline: none means the IoTlb's wait_timeout from now.
using DmaMapCallback = std::function<void(Result<DmaAddr>)>;
using DmaSgCallback = std::function<void(Result<std::size_t>)>;
SWIOTLB_API DmaQueued map_page_queued(Device& dev, PhysAddr phys, std::uint64_t size, Direction dir,
                                      std::optional<DmaDeadline> deadline, DmaMapCallback done,
                                      Attrs attrs = {});
SWIOTLB_API DmaQueued map_sg_queued(Device& dev, std::span<ScatterEntry> sg, Direction dir,
                                    std::optional<DmaDeadline> deadline, DmaSgCallback done,
                                    Attrs attrs = {});
// ---- End of waiting and queued mappings ---------------------------------------

// ---- Split mappings ---------------------------------------------------------
//
// A bounce buffer is one run of slots inside one 128-slot segment, so a single
// mapping that bounces can be at most max_mapping_size(dev); map_page refuses
// anything larger, as the kernel does. A caller that can hand the device a
// list of segments (a scatter-gather capable device) may instead ask, with
// this separate call and never implicitly, for [phys, phys + size) mapped as
// a list of pieces, in order, that together cover it. Each piece is a
// ScatterEntry (phys and length: the CPU range; dma_address and dma_length:
// where the device finds it).
//
// The rules:
//  - each piece is at most max_mapping_size(dev) and at most the device's
//    max_segment_size;
//  - cuts fall on multiples of max(min_align_mask + 1, page size) in CPU
//    address space where the limits allow it, so every piece starts and ends
//    where a page-granular device (NVMe's PRPs) may start and end a segment;
//    each piece, bounced or not, keeps the low bits of its own CPU address
//    under min_align_mask, as any single mapping does;
//  - no piece crosses the device's segment boundary in device address space
//    (the slot search ensures it for a bounced piece; a direct piece is cut
//    at the boundary);
//  - each piece is mapped with map_page, so the direct-or-bounce decision,
//    the reach checks, DMA debugging and cache maintenance apply to each;
//  - all or nothing: when a piece fails, the pieces before it are unmapped
//    (skip_cpu_sync) and the error, naming the piece's offset and size and
//    keeping the piece's error code, is returned.
// Errors: invalid_argument (size 0, direction none, a range that wraps
// around the address space), and those of map_page.
SWIOTLB_API Result<std::vector<ScatterEntry>> map_split(Device& dev, PhysAddr phys,
                                                        std::uint64_t size, Direction dir,
                                                        Attrs attrs = {});
// Unmaps every piece of a list map_split returned, with the map's direction;
// goes on after an error and returns the first one.
SWIOTLB_API Status unmap_split(Device& dev, std::span<const ScatterEntry> pieces, Direction dir,
                               Attrs attrs = {});
// Syncs every piece; goes on after an error and returns the first one.
SWIOTLB_API Status sync_split_for_cpu(Device& dev, std::span<const ScatterEntry> pieces,
                                      Direction dir);
SWIOTLB_API Status sync_split_for_device(Device& dev, std::span<const ScatterEntry> pieces,
                                         Direction dir);
// ---- End of split mappings --------------------------------------------------

// The kernel's dma_supported(): whether the device can work with `mask`
// (for a device that bounces, whether a pool lies below it).
inline bool dma_supported(const Device& dev, std::uint64_t mask) {
  return dev.dma_supported(mask);
}

// Memory both the CPU and the device may use at any time, zeroed, its size
// rounded up to whole pages. Where it comes from is decided as the kernel's
// dma_direct_alloc decides it:
//  - a device bound to a restricted pool: from that pool (swiotlb_alloc);
//  - any other device: normal memory (a private anonymous mapping) when the
//    whole of it lies below the device's coherent mask as the device sees
//    it (dma_coherent_ok);
//  - otherwise from the first of the device's pools that it reaches and
//    that has room, the pool standing in for the low zones the kernel's
//    page allocator retries in.
// Errors: invalid_argument (size 0), unreachable (neither normal memory nor
// a pool below the coherent mask), pool_full, system (mmap refused).
// free_coherent takes the buffer exactly as alloc_coherent returned it;
// anything else is not_mapped, counted as a debug error, and frees nothing.
struct CoherentBuffer {
  void* cpu_addr = nullptr;
  DmaAddr dma_handle;
  std::uint64_t size = 0;
};

SWIOTLB_API Result<CoherentBuffer> alloc_coherent(Device& dev, std::uint64_t size);
SWIOTLB_API Status free_coherent(Device& dev, const CoherentBuffer& buffer);

}  // namespace swiotlb
