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
// on the device (see dma_debug.h), and leaves everything as it was.
//
// Thread safety: every function may be called from any thread; calls on
// one mapping must be ordered by the caller (map before its syncs, syncs
// before its unmap), as in the kernel.
#pragma once

#include <cstdint>
#include <span>

#include "swiotlb/core/address.h"
#include "swiotlb/core/direction.h"
#include "swiotlb/core/error.h"
#include "swiotlb/dma/device.h"

namespace swiotlb {

// Maps [phys, phys + size). Errors: invalid_argument (size 0, direction
// none), pool_full, unreachable.
Result<DmaAddr> map_page(Device& dev, PhysAddr phys, std::uint64_t size, Direction dir,
                         Attrs attrs = {});
Result<DmaAddr> map_single(Device& dev, const void* cpu_addr, std::uint64_t size, Direction dir,
                           Attrs attrs = {});

// Ends a mapping; size and direction must be those of the map. Copies a
// bounced buffer back for from_device and bidirectional unless
// skip_cpu_sync.
Status unmap_page(Device& dev, DmaAddr addr, std::uint64_t size, Direction dir, Attrs attrs = {});
Status unmap_single(Device& dev, DmaAddr addr, std::uint64_t size, Direction dir, Attrs attrs = {});

// Hands [addr, addr + size) of a live mapping to the CPU or back to the
// device. The range may be any part of the mapping (the kernel's
// dma_sync_single_range_*); the direction must be the map's.
Status sync_single_for_cpu(Device& dev, DmaAddr addr, std::uint64_t size, Direction dir);
Status sync_single_for_device(Device& dev, DmaAddr addr, std::uint64_t size, Direction dir);

// The largest mapping this device can be sure to get: 256 KiB less the
// slots its min_align_mask may skip, when it bounces; unbounded otherwise.
std::uint64_t max_mapping_size(const Device& dev);

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
Result<std::size_t> map_sg(Device& dev, std::span<ScatterEntry> sg, Direction dir,
                           Attrs attrs = {});
// Unmaps every entry; goes on after an error and returns the first one.
Status unmap_sg(Device& dev, std::span<ScatterEntry> sg, Direction dir, Attrs attrs = {});
Status sync_sg_for_cpu(Device& dev, std::span<ScatterEntry> sg, Direction dir);
Status sync_sg_for_device(Device& dev, std::span<ScatterEntry> sg, Direction dir);

// The kernel's dma_supported(): whether the device can work with `mask`
// (for a device that bounces, whether a pool lies below it).
inline bool dma_supported(const Device& dev, std::uint64_t mask) {
  return dev.dma_supported(mask);
}

// Memory both the CPU and the device may use at any time, zeroed, from the
// device's pool (the kernel's swiotlb_alloc for a device with a restricted
// pool). Its size is rounded up to whole pages.
struct CoherentBuffer {
  void* cpu_addr = nullptr;
  DmaAddr dma_handle;
  std::uint64_t size = 0;
};

Result<CoherentBuffer> alloc_coherent(Device& dev, std::uint64_t size);
Status free_coherent(Device& dev, const CoherentBuffer& buffer);

}  // namespace swiotlb
