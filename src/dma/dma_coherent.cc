// Coherent allocations, decided as the kernel's dma_direct_alloc decides:
// a device bound to a restricted pool gets pool memory (swiotlb_alloc);
// any other device gets normal memory when it reaches it, and the pool
// only when it does not (the pool stands in for the low zones the kernel's
// page allocator would retry in).
#include <sys/mman.h>

#include <cerrno>
#include <optional>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/dma/dma_api.h"
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb {

namespace {

// A coherent buffer in normal memory is recorded in the device's DMA debug
// table with no direction: no map ever has that direction, so no unmap or
// sync can take it for a streaming mapping, and close() counts it as live.
constexpr Direction kCoherentDirection = Direction::none;

// Normal memory: a private anonymous mapping, zeroed and page aligned, the
// user-space counterpart of the pages dma_direct_alloc gets. Nothing when
// the device cannot reach it (the kernel's dma_coherent_ok() failing).
Result<std::optional<CoherentBuffer>> alloc_normal(Device& dev, std::uint64_t bytes) {
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    const int err = errno;
    return make_error(Errc::system, "device {}: mmap of {} bytes of coherent memory: {}",
                      dev.name(), bytes, errno_text(err));
  }
  const DmaAddr dma = dev.phys_to_dma(PhysAddr::from_pointer(mem), bytes);
  if (dma.value() == kInvalidAddress || dma.value() + (bytes - 1) > dev.coherent_limit()) {
    ::munmap(mem, bytes);
    return std::optional<CoherentBuffer>{};
  }
  dev.debug().add_coherent({dma, bytes, kCoherentDirection});
  return std::optional<CoherentBuffer>{CoherentBuffer{mem, dma, bytes}};
}

// The kernel's swiotlb_alloc: the first of the device's pools with room.
Result<CoherentBuffer> alloc_from_pool(Device& dev, IoTlb& io_tlb, std::uint64_t size) {
  Result<PhysAddr> phys =
      make_error(Errc::unreachable,
                 "device {}: neither normal memory nor any pool lies below its coherent mask {:#x}",
                 dev.name(), dev.coherent_limit());
  const std::vector<PoolChoice>& pools = dev.coherent_pools();
  for (const PoolChoice& choice : pools) {
    // A pool before the last only passes on when full: a transient pool
    // comes only when the last is full too.
    const bool more_pools = &choice != &pools.back();
    phys = io_tlb.alloc({.pool = choice.pool,
                         .size = size,
                         .pool_dma_start = choice.dma_start,
                         .owner = dev.id(),
                         .reach = dev.coherent_reach(),
                         .more_pools = more_pools});
    if (phys || phys.error().code() != Errc::pool_full) {
      break;
    }
  }
  if (!phys) {
    dev.count_map_failure();
    return std::move(phys).error();
  }
  dev.mark_uses_io_tlb();
  CoherentBuffer buffer{io_tlb.bounce_pointer(*phys), dev.phys_to_dma(*phys, size),
                        kernel_align(size, kPageSize)};
  const std::uint64_t last = buffer.dma_handle.value() + buffer.size - 1;
  if (last > dev.coherent_limit()) {
    Status undone = io_tlb.free(*phys, size, dev.id());
    (void)undone;  // allocated a moment ago by this very call
    dev.count_map_failure();
    return make_error(Errc::unreachable,
                      "device {}: pool memory at {:#x}+{} is beyond its coherent mask {:#x}",
                      dev.name(), buffer.dma_handle.value(), buffer.size, dev.coherent_limit());
  }
  return buffer;
}

}  // namespace

Result<CoherentBuffer> alloc_coherent(Device& dev, std::uint64_t size) {
  if (size == 0) {
    return dev.debug().record(
        make_error(Errc::invalid_argument, "device {}: a coherent buffer of 0 bytes", dev.name()));
  }
  IoTlb* io_tlb = dev.io_tlb();
  if (io_tlb != nullptr && io_tlb->restricted()) {
    return alloc_from_pool(dev, *io_tlb, size);
  }
  Result<std::optional<CoherentBuffer>> normal = alloc_normal(dev, kernel_align(size, kPageSize));
  if (!normal) {
    return std::move(normal).error();
  }
  if (normal->has_value()) {
    return **normal;
  }
  if (io_tlb == nullptr) {
    dev.count_map_failure();
    return make_error(Errc::unreachable,
                      "device {}: normal memory is beyond its coherent mask {:#x} and it has no "
                      "pool to allocate from",
                      dev.name(), dev.coherent_limit());
  }
  return alloc_from_pool(dev, *io_tlb, size);
}

Status free_coherent(Device& dev, const CoherentBuffer& buffer) {
  IoTlb* io_tlb = dev.io_tlb();
  const PhysAddr phys = dev.dma_to_phys(buffer.dma_handle);
  if (phys.value() != kInvalidAddress && io_tlb != nullptr && dev.uses_io_tlb() &&
      io_tlb->contains(phys) && io_tlb->bounce_pointer(phys) == buffer.cpu_addr) {
    if (Status freed = io_tlb->free(phys, buffer.size, dev.id()); !freed) {
      return dev.debug().record(freed.error());
    }
    return {};
  }
  if (phys.value() != kInvalidAddress && phys == PhysAddr::from_pointer(buffer.cpu_addr) &&
      dev.debug().remove_coherent(buffer.dma_handle, buffer.size)) {
    ::munmap(buffer.cpu_addr, buffer.size);
    return {};
  }
  return dev.debug().record(make_error(Errc::not_mapped,
                                       "device {}: free of coherent buffer {:#x}+{}, which it "
                                       "was not given",
                                       dev.name(), buffer.dma_handle.value(), buffer.size));
}

}  // namespace swiotlb
