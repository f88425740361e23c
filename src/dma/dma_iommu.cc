// The DMA API for a device behind an IOMMU (the kernel's dma-iommu): maps
// are IOVA allocations, and an untrusted device's buffers that do not fill
// whole granules are bounced first, their padding zeroed, so that the pages
// the device can reach hold nothing but the buffer.
#include "dma_iommu.h"

#include <cstring>

#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/platform/cpu.h"

namespace swiotlb {

namespace {

bool needs_bounce(const Device& dev, PhysAddr phys, std::uint64_t size) {
  const std::uint64_t mask = dev.config().iommu->granule() - 1;
  return dev.config().untrusted && ((phys.value() | size) & mask) != 0;
}

// Bounces into the device's pool, aligned to the granule, with the padding
// zeroed (what the copy did not fill, or all of it when nothing was copied).
Result<PhysAddr> bounce_for_iommu(Device& dev, IoTlb& io_tlb, PhysAddr phys, std::uint64_t size,
                                  Direction dir, Attrs attrs) {
  const std::uint64_t granule = dev.config().iommu->granule();
  const std::vector<PoolChoice>& pools = dev.streaming_pools();
  if (pools.empty()) {
    return make_error(Errc::unreachable, "device {}: no pool to bounce through", dev.name());
  }
  BounceRequest request;
  request.pool = pools.front().pool;
  request.pool_dma_start = DmaAddr(io_tlb.pool_info(request.pool).start.value());
  request.orig = phys;
  request.size = size;
  request.alloc_align_mask = granule - 1;
  request.min_align_mask = dev.config().min_align_mask;
  request.dir = dir;
  request.attrs = attrs;
  request.owner = dev.id();
  request.owner_name = dev.name();
  request.reach = dev.streaming_reach();
  Result<PhysAddr> tlb = io_tlb.map(request);
  if (!tlb) {
    return tlb;
  }
  const std::uint64_t padded = kernel_align(size, granule);
  std::byte* start = io_tlb.bounce_pointer(*tlb);
  const bool copied = !attrs.has(Attr::skip_cpu_sync) && copies_to_device(dir);
  const std::uint64_t from = copied ? size : 0;
  std::memset(start + from, 0, padded - from);
  return tlb;
}

}  // namespace

Result<DmaAddr> iommu_map_page(Device& dev, PhysAddr phys, std::uint64_t size, Direction dir,
                               Attrs attrs) {
  IommuDomain& iommu = *dev.config().iommu;
  IoTlb* io_tlb = dev.io_tlb();
  PhysAddr target = phys;
  const bool bounce = needs_bounce(dev, phys, size);
  if (bounce) {
    if (io_tlb == nullptr) {
      dev.count_map_failure();
      return make_error(Errc::unreachable,
                        "device {} is untrusted and {:#x}+{} does not fill whole granules, but it "
                        "has no pool to bounce through",
                        dev.name(), phys.value(), size);
    }
    Result<PhysAddr> tlb = bounce_for_iommu(dev, *io_tlb, phys, size, dir, attrs);
    if (!tlb) {
      dev.count_map_failure();
      return std::move(tlb).error();
    }
    target = *tlb;
  }
  if (!attrs.has(Attr::skip_cpu_sync)) {
    dev.cache_sync(CacheOp::for_device, target, size, dir);
  }
  Result<DmaAddr> iova = iommu.map(target, size, current_cpu());
  if (!iova) {
    if (bounce) {
      Status undone = io_tlb->unmap(target, dev.config().min_align_mask, {size, dir, dev.id()},
                                    attrs | Attr::skip_cpu_sync);
      (void)undone;  // bounced a moment ago by this very call
    }
    dev.count_map_failure();
    return iova;
  }
  dev.debug().add_direct({*iova, size, dir});
  return iova;
}

Status iommu_unmap_page(Device& dev, DmaAddr iova, std::uint64_t size, Direction dir, Attrs attrs) {
  IommuDomain& iommu = *dev.config().iommu;
  if (Status removed = dev.debug().remove_direct(iova, size, dir); !removed) {
    return dev.debug().record(removed.error());
  }
  const PhysAddr phys = iommu.translate(iova);
  if (!attrs.has(Attr::skip_cpu_sync)) {
    dev.cache_sync(CacheOp::for_cpu, phys, size, dir);
  }
  if (Status unmapped = iommu.unmap(iova, size, current_cpu()); !unmapped) {
    return dev.debug().record(unmapped.error());
  }
  IoTlb* io_tlb = dev.io_tlb();
  if (io_tlb != nullptr && io_tlb->contains(phys)) {
    return io_tlb->unmap(phys, dev.config().min_align_mask, {size, dir, dev.id()}, attrs);
  }
  return {};
}

Status iommu_sync(Device& dev, DmaAddr iova, std::uint64_t size, Direction dir, CacheOp op) {
  if (Result<DirectMapping> m = dev.debug().find_direct(iova, size, dir); !m) {
    return dev.debug().record(std::move(m).error());
  }
  const PhysAddr phys = dev.config().iommu->translate(iova);
  IoTlb* io_tlb = dev.io_tlb();
  const bool bounced = io_tlb != nullptr && io_tlb->contains(phys);
  if (op == CacheOp::for_cpu) {
    dev.cache_sync(op, phys, size, dir);
  }
  if (bounced) {
    Result<BounceMapping> mapping = io_tlb->find_for_sync(phys, size, dir, dev.id());
    if (!mapping) {
      return dev.debug().record(std::move(mapping).error());
    }
    if (op == CacheOp::for_cpu) {
      io_tlb->copy_for_cpu(*mapping, phys, size);
    } else {
      io_tlb->copy_for_device(*mapping, phys, size);
    }
  }
  if (op == CacheOp::for_device) {
    dev.cache_sync(op, phys, size, dir);
  }
  return {};
}

}  // namespace swiotlb
