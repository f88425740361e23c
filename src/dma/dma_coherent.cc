// Coherent allocations, served from the device's pool.
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/dma/dma_api.h"
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb {

Result<CoherentBuffer> alloc_coherent(Device& dev, std::uint64_t size) {
  if (size == 0) {
    return dev.debug().record(
        make_error(Errc::invalid_argument, "device {}: a coherent buffer of 0 bytes", dev.name()));
  }
  IoTlb* io_tlb = dev.io_tlb();
  if (io_tlb == nullptr) {
    return make_error(Errc::invalid_argument, "device {}: no pool to allocate coherent memory from",
                      dev.name());
  }
  Result<PhysAddr> phys =
      make_error(Errc::unreachable, "device {}: no pool lies below its coherent mask {:#x}",
                 dev.name(), dev.coherent_limit());
  const std::vector<PoolChoice>& pools = dev.coherent_pools();
  for (const PoolChoice& choice : pools) {
    // A pool before the last only passes on when full: a transient pool
    // comes only when the last is full too.
    const bool more_pools = &choice != &pools.back();
    phys = io_tlb->alloc({.pool = choice.pool,
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
  CoherentBuffer buffer{io_tlb->bounce_pointer(*phys), dev.phys_to_dma(*phys, size),
                        kernel_align(size, kPageSize)};
  const std::uint64_t last = buffer.dma_handle.value() + buffer.size - 1;
  if (last > dev.coherent_limit()) {
    Status undone = io_tlb->free(*phys, size, dev.id());
    (void)undone;  // allocated a moment ago by this very call
    dev.count_map_failure();
    return make_error(Errc::unreachable,
                      "device {}: pool memory at {:#x}+{} is beyond its coherent mask {:#x}",
                      dev.name(), buffer.dma_handle.value(), buffer.size, dev.coherent_limit());
  }
  return buffer;
}

Status free_coherent(Device& dev, const CoherentBuffer& buffer) {
  IoTlb* io_tlb = dev.io_tlb();
  const PhysAddr phys = dev.dma_to_phys(buffer.dma_handle);
  if (io_tlb == nullptr || !io_tlb->contains(phys) ||
      io_tlb->bounce_pointer(phys) != buffer.cpu_addr) {
    return dev.debug().record(make_error(Errc::not_mapped,
                                         "device {}: free of coherent buffer {:#x}, which it "
                                         "was not given",
                                         dev.name(), buffer.dma_handle.value()));
  }
  if (Status freed = io_tlb->free(phys, buffer.size, dev.id()); !freed) {
    return dev.debug().record(freed.error());
  }
  return {};
}

}  // namespace swiotlb
