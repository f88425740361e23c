// Single mappings: the direct-or-bounce decision, unmap and sync.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "../iotlb/streaming_hit.h"
#include "dma_bounce.h"
#include "dma_iommu.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/dma/dma_api.h"
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb {

namespace {

// The highest address a user-space buffer can have (47-bit user space), the
// analogue of the kernel's dma_get_required_mask(): a device whose limit is
// below it is "addressing limited".
constexpr std::uint64_t kRequiredMask = (std::uint64_t{1} << 47) - 1;

Status check_request(const Device& dev, std::uint64_t size, Direction dir) {
  if (dir == Direction::none) {
    return make_error(Errc::invalid_argument, "device {}: a mapping needs a direction", dev.name());
  }
  if (size == 0) {
    return make_error(Errc::invalid_argument, "device {}: a mapping of 0 bytes", dev.name());
  }
  return {};
}

[[gnu::cold]] Error unreachable_error(const Device& dev, DmaAddr addr, std::uint64_t size,
                                      bool bounced) {
  return make_error(Errc::unreachable,
                    "device {}: {} {:#x}+{} is beyond its reach (mask {:#x}, bus limit {:#x}){}",
                    dev.name(), bounced ? "bounce address" : "DMA address", addr.value(), size,
                    dev.config().dma_mask, dev.config().bus_dma_limit,
                    bounced ? "" : " and it has no pool to bounce through");
}

}  // namespace

[[gnu::cold]] Error no_pool_error(const Device& dev, const IoTlb& io_tlb) {
  std::string pools;
  for (std::uint32_t i = 0; i < io_tlb.pool_count(); ++i) {
    const PoolInfo info = io_tlb.pool_info(i);
    pools += fmt::format("{}{} [{:#x}, {:#x})", i == 0 ? "" : ", ", info.name, info.start.value(),
                         info.end.value());
  }
  return make_error(Errc::unreachable,
                    "device {} (mask {:#x}, bus limit {:#x}) reaches none of its pools: {}",
                    dev.name(), dev.config().dma_mask, dev.config().bus_dma_limit, pools);
}

// Makes sure the device reaches the bounce buffer it got.
Result<DmaAddr> finish_bounce(Device& dev, IoTlb& io_tlb, const BounceRequest& request,
                              Result<PhysAddr> tlb, Attrs attrs) {
  const std::uint64_t size = request.size;
  const Direction dir = request.dir;
  if (!tlb) {
    dev.count_map_failure();
    return std::move(tlb).error();
  }
  dev.mark_uses_io_tlb();
  const DmaAddr dma = dev.phys_to_dma(*tlb, size);
  if (!dev.dma_capable(dma, size)) {
    Status undone = io_tlb.unmap(*tlb, request.min_align_mask, {size, dir, dev.id()},
                                 attrs | Attr::skip_cpu_sync);
    (void)undone;  // it was mapped a moment ago by this very call
    dev.count_map_failure();
    return unreachable_error(dev, dma, size, true);
  }
  if (!attrs.has(Attr::skip_cpu_sync)) {
    dev.cache_sync(CacheOp::for_device, *tlb, size, dir);
  }
  return dma;
}

BounceRequest bounce_request(const Device& dev, PhysAddr phys, std::uint64_t size, Direction dir) {
  BounceRequest request;
  request.orig = phys;
  request.size = size;
  request.min_align_mask = dev.config().min_align_mask;
  request.seg_boundary_mask = dev.config().seg_boundary_mask;
  request.dir = dir;
  request.owner = dev.id();
  request.owner_name = dev.name();
  request.reach = dev.streaming_reach();
  return request;
}

// The kernel's swiotlb_map(): bounce into the first of the device's pools
// that has room, then make sure the device reaches the bounce buffer.
Result<DmaAddr> bounce_map(Device& dev, IoTlb& io_tlb, PhysAddr phys, std::uint64_t size,
                           Direction dir, Attrs attrs,
                           const WaitQueue::Clock::time_point* deadline) {
  const std::vector<PoolChoice>& pools = dev.streaming_pools();
  if (pools.empty()) {
    dev.count_map_failure();
    return dev.debug().record(no_pool_error(dev, io_tlb));
  }
  BounceRequest request = bounce_request(dev, phys, size, dir);
  // The last pool's answer stands; the ones before it only pass on a full
  // pool. Only the last waits (may_sleep), makes a transient pool or speaks
  // of a full pool: a full high pool overflows to the low one first.
  std::size_t i = 0;
  for (; i + 1 < pools.size(); ++i) {
    request.pool = pools[i].pool;
    request.pool_dma_start = pools[i].dma_start;
    request.attrs = attrs | Attr::no_warn;
    request.more_pools = true;
    Result<PhysAddr> tried = io_tlb.map(request);
    if (tried || tried.error().code() != Errc::pool_full) {
      return finish_bounce(dev, io_tlb, request, std::move(tried), attrs);
    }
  }
  request.pool = pools[i].pool;
  request.pool_dma_start = pools[i].dma_start;
  request.attrs = attrs;
  request.more_pools = false;
  if (deadline != nullptr) {
    request.deadline = *deadline;
  }
  return finish_bounce(dev, io_tlb, request, io_tlb.map(request), attrs);
}

namespace {

// The hit path of a device that bounces through one pool (see
// Device::bounces_through_one_pool): the mapping from its pool's run cache,
// with what bounce_map and finish_bounce would work out per call (which
// pool, where the device sees it, that it reaches the bounce buffer)
// settled when the device was made. False, with nothing changed, when the
// request needs the full path.
bool map_one_pool_cached(Device& dev, PhysAddr phys, std::uint64_t size, Direction dir, Attrs attrs,
                         DmaAddr& dma) {
  const BounceRoute* route = dev.streaming_route();
  PhysAddr tlb;
  if (route == nullptr || !StreamingHit::map(*dev.io_tlb(), *route, phys, size, dir, attrs, tlb)) {
    return false;
  }
  dev.mark_uses_io_tlb();
  if (!dev.config().coherent && !attrs.has(Attr::skip_cpu_sync)) {
    dev.cache_sync(CacheOp::for_device, tlb, size, dir);
  }
  dma = DmaAddr(tlb.value());  // the device sees the pool at the CPU's addresses
  return true;
}

// map_page past the run cache of a device's one pool: every check, and
// every other way to map. Out of line, so that map_page's hit needs few
// registers and no frame.
[[gnu::noinline]] Result<DmaAddr> map_page_slow(Device& dev, PhysAddr phys, std::uint64_t size,
                                                Direction dir, Attrs attrs) {
  if (Status ok = check_request(dev, size, dir); !ok) {
    return dev.debug().record(ok.error());
  }
  if (dev.config().iommu) {
    return iommu_map_page(dev, phys, size, dir, attrs);
  }
  IoTlb* io_tlb = dev.io_tlb();
  if (io_tlb != nullptr && io_tlb->force_bounce()) {
    return bounce_map(dev, *io_tlb, phys, size, dir, attrs, nullptr);
  }
  const DmaAddr dma = dev.phys_to_dma(phys, size);
  if (io_tlb != nullptr && !dev.dma_capable(dma, size)) {
    return bounce_map(dev, *io_tlb, phys, size, dir, attrs, nullptr);
  }
  if (!dev.dma_capable(dma, size)) {
    dev.count_map_failure();
    return unreachable_error(dev, dma, size, false);
  }
  dev.debug().add_direct({dma, size, dir});
  if (!attrs.has(Attr::skip_cpu_sync)) {
    dev.cache_sync(CacheOp::for_device, phys, size, dir);
  }
  return dma;
}

}  // namespace

Result<DmaAddr> map_page(Device& dev, PhysAddr phys, std::uint64_t size, Direction dir,
                         Attrs attrs) {
  // A request check_request refuses never reaches the cache.
  if (DmaAddr dma; dev.bounces_through_one_pool() && dir != Direction::none && size != 0 &&
                   map_one_pool_cached(dev, phys, size, dir, attrs, dma)) {
    return dma;
  }
  return map_page_slow(dev, phys, size, dir, attrs);
}

Result<DmaAddr> map_single(Device& dev, const void* cpu_addr, std::uint64_t size, Direction dir,
                           Attrs attrs) {
  return map_page(dev, PhysAddr::from_pointer(cpu_addr), size, dir, attrs);
}

namespace {

// Whether unmap_page may take the path of a device's one pool: a bounce
// address of that pool, with no translation to undo, no other pool to
// look in, and no cache maintenance between the checks and the copy back.
bool unmaps_through_one_pool(const Device& dev, PhysAddr phys, Attrs attrs) {
  return dev.bounces_through_one_pool() && dev.uses_io_tlb() &&
         (dev.config().coherent || attrs.has(Attr::skip_cpu_sync)) && dev.one_pool_holds(phys);
}

// unmap_page past the run cache of a device's one pool (out of line, as
// map_page_slow).
[[gnu::noinline]] Status unmap_page_slow(Device& dev, DmaAddr addr, std::uint64_t size,
                                         Direction dir, Attrs attrs) {
  if (const PhysAddr bounce(addr.value()); unmaps_through_one_pool(dev, bounce, attrs)) {
    const MappingClaim claim{size, dir, dev.id()};
    if (Status done = dev.io_tlb()->unmap(bounce, dev.config().min_align_mask, claim, attrs);
        !done) {
      return dev.debug().record(done.error());
    }
    return {};
  }
  if (dev.config().iommu) {
    return iommu_unmap_page(dev, addr, size, dir, attrs);
  }
  const PhysAddr phys = dev.dma_to_phys(addr);
  IoTlb* io_tlb = dev.io_tlb();
  if (io_tlb != nullptr && dev.uses_io_tlb() && io_tlb->contains(phys)) {
    if (dev.config().coherent || attrs.has(Attr::skip_cpu_sync)) {
      // No cache maintenance between the checks and the copy back: IoTlb
      // does both in one call.
      if (Status done =
              io_tlb->unmap(phys, dev.config().min_align_mask, {size, dir, dev.id()}, attrs);
          !done) {
        return dev.debug().record(done.error());
      }
      return {};
    }
    Result<BounceMapping> mapping =
        io_tlb->begin_unmap(phys, dev.config().min_align_mask, {size, dir, dev.id()});
    if (!mapping) {
      return dev.debug().record(std::move(mapping).error());
    }
    if (!attrs.has(Attr::skip_cpu_sync)) {
      dev.cache_sync(CacheOp::for_cpu, phys, size, dir);
    }
    io_tlb->finish_unmap(*mapping, attrs);
    return {};
  }
  if (Status removed = dev.debug().remove_direct(addr, size, dir); !removed) {
    return dev.debug().record(removed.error());
  }
  if (!attrs.has(Attr::skip_cpu_sync)) {
    dev.cache_sync(CacheOp::for_cpu, phys, size, dir);
  }
  return {};
}

}  // namespace

Status unmap_page(Device& dev, DmaAddr addr, std::uint64_t size, Direction dir, Attrs attrs) {
  const PhysAddr phys(addr.value());
  if (const BounceRoute* route = dev.streaming_route();
      route != nullptr && unmaps_through_one_pool(dev, phys, attrs) &&
      StreamingHit::unmap(*dev.io_tlb(), *route, phys, size, dir, attrs)) {
    return {};
  }
  return unmap_page_slow(dev, addr, size, dir, attrs);
}

Status unmap_single(Device& dev, DmaAddr addr, std::uint64_t size, Direction dir, Attrs attrs) {
  return unmap_page(dev, addr, size, dir, attrs);
}

Status sync_single_for_cpu(Device& dev, DmaAddr addr, std::uint64_t size, Direction dir) {
  if (dev.config().iommu) {
    return iommu_sync(dev, addr, size, dir, CacheOp::for_cpu);
  }
  const PhysAddr phys = dev.dma_to_phys(addr);
  IoTlb* io_tlb = dev.io_tlb();
  if (io_tlb != nullptr && dev.uses_io_tlb() && io_tlb->contains(phys)) {
    Result<BounceMapping> mapping = io_tlb->find_for_sync(phys, size, dir, dev.id());
    if (!mapping) {
      return dev.debug().record(std::move(mapping).error());
    }
    dev.cache_sync(CacheOp::for_cpu, phys, size, dir);
    io_tlb->copy_for_cpu(*mapping, phys, size);
    return {};
  }
  if (Result<DirectMapping> m = dev.debug().find_direct(addr, size, dir); !m) {
    return dev.debug().record(std::move(m).error());
  }
  dev.cache_sync(CacheOp::for_cpu, phys, size, dir);
  return {};
}

Status sync_single_for_device(Device& dev, DmaAddr addr, std::uint64_t size, Direction dir) {
  if (dev.config().iommu) {
    return iommu_sync(dev, addr, size, dir, CacheOp::for_device);
  }
  const PhysAddr phys = dev.dma_to_phys(addr);
  IoTlb* io_tlb = dev.io_tlb();
  if (io_tlb != nullptr && dev.uses_io_tlb() && io_tlb->contains(phys)) {
    Result<BounceMapping> mapping = io_tlb->find_for_sync(phys, size, dir, dev.id());
    if (!mapping) {
      return dev.debug().record(std::move(mapping).error());
    }
    io_tlb->copy_for_device(*mapping, phys, size);
    dev.cache_sync(CacheOp::for_device, phys, size, dir);
    return {};
  }
  if (Result<DirectMapping> m = dev.debug().find_direct(addr, size, dir); !m) {
    return dev.debug().record(std::move(m).error());
  }
  dev.cache_sync(CacheOp::for_device, phys, size, dir);
  return {};
}

std::uint64_t max_mapping_size(const Device& dev) {
  const IoTlb* io_tlb = dev.io_tlb();
  const bool limited = dev.dma_limit() < kRequiredMask;
  // Behind an IOMMU only an untrusted device bounces.
  const bool bounces = dev.config().iommu
                           ? dev.config().untrusted
                           : limited || (io_tlb != nullptr && io_tlb->force_bounce());
  if (io_tlb == nullptr || !bounces) {
    return ~std::uint64_t{0};
  }
  const std::uint64_t min_align = dev.config().min_align_mask;
  return kSegmentBytes - (min_align != 0 ? kernel_align(min_align, kSlotSize) : 0);
}

}  // namespace swiotlb
