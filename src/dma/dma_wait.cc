// Single mappings that wait for room or queue for it, built on the IoTlb's
// wait queue: only the bounce itself waits, everything else is map_page.
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "dma_bounce.h"
#include "swiotlb/dma/dma_api.h"
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb {

static_assert(std::is_same_v<DmaDeadline, WaitQueue::Clock::time_point>,
              "the DMA API's deadlines are the wait queue's");

namespace {

// The IoTlb a valid request of `dev` bounces through with its own pools,
// or null when map_page answers it without waiting (a direct mapping, an
// invalid request, an IOMMU, no pool the device reaches).
IoTlb* waiting_bounce(const Device& dev, PhysAddr phys, std::uint64_t size, Direction dir) {
  IoTlb* io_tlb = dev.io_tlb();
  if (io_tlb == nullptr || dev.config().iommu || size == 0 || dir == Direction::none ||
      dev.streaming_pools().empty()) {
    return nullptr;
  }
  const bool bounces =
      io_tlb->force_bounce() || !dev.dma_capable(dev.phys_to_dma(phys, size), size);
  return bounces ? io_tlb : nullptr;
}

}  // namespace

Result<DmaAddr> map_page_until(Device& dev, PhysAddr phys, std::uint64_t size, Direction dir,
                               DmaDeadline deadline, Attrs attrs) {
  attrs = attrs | Attr::may_sleep;
  if (IoTlb* io_tlb = waiting_bounce(dev, phys, size, dir); io_tlb != nullptr) {
    return bounce_map(dev, *io_tlb, phys, size, dir, attrs, &deadline);
  }
  return map_page(dev, phys, size, dir, attrs);
}

Result<DmaAddr> map_single_until(Device& dev, const void* cpu_addr, std::uint64_t size,
                                 Direction dir, DmaDeadline deadline, Attrs attrs) {
  return map_page_until(dev, PhysAddr::from_pointer(cpu_addr), size, dir, deadline, attrs);
}

DmaQueued map_page_queued(Device& dev, PhysAddr phys, std::uint64_t size, Direction dir,
                          std::optional<DmaDeadline> deadline, DmaMapCallback done, Attrs attrs) {
  IoTlb* io_tlb = waiting_bounce(dev, phys, size, dir);
  if (io_tlb == nullptr) {
    done(map_page(dev, phys, size, dir, attrs));
    return DmaQueued::done;
  }
  // The pools before the last only pass on a full pool, at once; the last
  // one queues.
  const std::vector<PoolChoice>& pools = dev.streaming_pools();
  BounceRequest request = bounce_request(dev, phys, size, dir);
  for (std::size_t i = 0; i + 1 < pools.size(); ++i) {
    request.pool = pools[i].pool;
    request.pool_dma_start = pools[i].dma_start;
    request.attrs = attrs | Attr::no_warn;
    request.more_pools = true;
    Result<PhysAddr> tried = io_tlb->map(request);
    if (tried || tried.error().code() != Errc::pool_full) {
      done(finish_bounce(dev, *io_tlb, request, std::move(tried), attrs));
      return DmaQueued::done;
    }
  }
  request.pool = pools.back().pool;
  request.pool_dma_start = pools.back().dma_start;
  request.attrs = attrs;
  request.more_pools = false;
  request.deadline = deadline;
  // The request's owner_name and reach belong to the device, which
  // outlives the callback.
  const QueuedMap how = io_tlb->map_queued(
      request, [&dev, io_tlb, request, attrs, done = std::move(done)](Result<PhysAddr> tlb) {
        done(finish_bounce(dev, *io_tlb, request, std::move(tlb), attrs));
      });
  return how == QueuedMap::done ? DmaQueued::done : DmaQueued::queued;
}

}  // namespace swiotlb
