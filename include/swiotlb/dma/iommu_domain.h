// IommuDomain: a device address space behind an IOMMU, as the kernel's
// dma-iommu layer drives it. A map allocates an IOVA from the device's IOVA
// domain (iova/device_domain.h) and records, per granule, which CPU page the
// IOVA page stands for (a model of the IOMMU's page table); the device then
// reaches the buffer at that IOVA and nothing else.
//
// Unmap takes the page-table entries away at once. The IOVA itself goes back
// to the allocator at once in strict mode; in lazy mode (the kernel's flush
// queue) it waits in a queue until the next IOTLB flush, so that a stale
// IOTLB entry can never point at a reused IOVA. The queue is flushed when
// it holds kFlushQueueSize entries or when flush() is called.
//
// Several devices may share one domain (an IOMMU group).
//
// Thread safety: every method may be called from any thread; the page table
// and the flush queue are guarded by one mutex, the allocator by its own.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"
#include "swiotlb/iova/device_domain.h"

namespace swiotlb {

enum class IommuMode : std::uint8_t { strict, lazy };

class IommuDomain {
 public:
  static constexpr std::size_t kFlushQueueSize = 256;

  static Result<std::shared_ptr<IommuDomain>> create(const iova::DeviceIovaSpec& spec,
                                                     IommuMode mode = IommuMode::strict);

  std::uint64_t granule() const { return granule_; }
  IommuMode mode() const { return mode_; }
  iova::DeviceIovaDomain& iova_domain() { return *iova_; }

  // Maps [phys, phys + size) and returns the IOVA of phys (the IOVA of its
  // granule plus its offset in the granule). Fails as the IOVA allocator
  // does (pool_full when the domain has no room below `limit`).
  Result<DmaAddr> map(PhysAddr phys, std::uint64_t size, unsigned cpu);
  // Unmaps what map returned for `size`. Fails (not_mapped) when any of its
  // granules is not mapped.
  Status unmap(DmaAddr iova, std::uint64_t size, unsigned cpu);

  // The CPU address the device reaches at `iova`, or kInvalidAddress (the
  // kernel's iommu_iova_to_phys).
  PhysAddr translate(DmaAddr iova) const;

  // Gives every queued IOVA back to the allocator (an IOTLB flush).
  void flush();
  std::size_t queued() const;
  std::size_t mapped_pages() const;

 private:
  struct QueuedFree {
    DmaAddr iova;
    std::uint64_t bytes;
    unsigned cpu;
  };

  IommuDomain(std::unique_ptr<iova::DeviceIovaDomain> iova, IommuMode mode, unsigned cpu_count);
  // Magazines exist per modelled CPU; a caller's CPU is folded onto them.
  unsigned cpu_slot(unsigned cpu) const { return cpu % cpu_count_; }
  void flush_locked(std::vector<QueuedFree>& out);
  void release(const std::vector<QueuedFree>& frees);

  const std::unique_ptr<iova::DeviceIovaDomain> iova_;
  const std::uint64_t granule_;
  const IommuMode mode_;
  const unsigned cpu_count_;
  mutable std::mutex lock_;
  std::map<std::uint64_t, std::uint64_t> page_table_;  // IOVA page -> CPU page; guarded by lock_
  std::vector<QueuedFree> flush_queue_;                // guarded by lock_
};

}  // namespace swiotlb
