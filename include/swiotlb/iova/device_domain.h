// DeviceIovaDomain: an IovaDomain set up for one device the way the kernel's
// DMA layer (drivers/iommu/dma-iommu.c) sets one up, and the DMA-address
// calls that layer makes on it.
//
// Setup (iommu_dma_init_domain, iova_reserve_iommu_regions): the domain
// starts at pfn max(1, base >> shift); then, for a PCI device, the host
// bridge's outbound MMIO windows and the holes around its inbound windows
// are reserved (aperture.h), and then every region the IOMMU reports for the
// device except software MSI windows (which the DMA layer maps itself).
//
// Allocation (iommu_dma_alloc_iova): the device's limit is its DMA mask cut
// by its bus limit; a PCI device whose limit is above 4 GiB first asks below
// 4 GiB without flushing the magazines (to get a single-address-cycle
// address), then with its own limit, flushing if it must.
//
// The same spec also gives the user's view: the reserved regions as sysfs
// would list them, and the valid IOVA ranges VFIO would report.
//
// Synchronization: as IovaDomain; the spec and the limit are immutable.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/iova/aperture.h"
#include "swiotlb/iova/dma_window.h"
#include "swiotlb/iova/iova_domain.h"
#include "swiotlb/iova/reserved_regions.h"

namespace swiotlb::iova {

struct DeviceIovaSpec {
  std::uint64_t granule = 4096;     // the IOMMU's smallest page
  unsigned cpu_count = 1;           // CPUs with magazines of their own
  unsigned mask_bits = 64;          // the device's DMA mask
  std::uint64_t bus_dma_limit = 0;  // the bus's limit, 0 for none
  std::uint64_t base = 0;           // lowest IOVA the domain may use
  bool is_pci = true;               // PCI: bridge windows apply, SAC is tried first
  std::vector<DmaWindow> inbound;   // the bridge's dma-ranges; empty: no holes
  std::vector<DmaWindow> outbound;  // the bridge's MMIO windows, in bus addresses
  // Regions the IOMMU reports for the device (MSI doorbells, RMRRs, ...), in
  // the order the driver lists them. Intel's driver lists kX86MsiWindow.
  std::vector<ReservedRegion> regions;
  // Whether the domain records handed-out IOVAs (iova_domain.h): on for
  // tests and debugging, off for production.
  IovaChecks checks = IovaChecks::on;
};

// The spec's reserved regions as sysfs would list them (merged and sorted;
// reserved_regions.h), holes cut at the aperture's top. Fails as
// device_dma_limit and sort_inbound_windows do.
SWIOTLB_API Result<std::vector<ReservedRegion>> device_reserved_regions(const DeviceIovaSpec& spec);

// The valid IOVA ranges within [0, device limit], as VFIO reports them.
SWIOTLB_API Result<std::vector<DmaWindow>> device_valid_ranges(const DeviceIovaSpec& spec);

class SWIOTLB_API DeviceIovaDomain {
 public:
  // Builds and reserves the domain. Fails (invalid_argument) for a bad
  // granule, CPU count or mask, overlapping inbound windows, and passes on
  // any reserve that fails (a region beyond the highest pfn).
  static Result<std::unique_ptr<DeviceIovaDomain>> create(const DeviceIovaSpec& spec);

  IovaDomain& domain() { return *domain_; }
  const IovaDomain& domain() const { return *domain_; }
  // The highest address / pfn the device may be given.
  std::uint64_t dma_limit() const { return dma_limit_; }
  std::uint64_t limit_pfn() const { return dma_limit_ >> domain_->shift(); }

  // iommu_dma_alloc_iova: an IOVA for `bytes` (rounded up to whole
  // granules). Fails (pool_full) when the domain has no room below the
  // device's limit, (invalid_argument) for 0 bytes or a bad CPU.
  Result<DmaAddr> alloc(unsigned cpu, std::uint64_t bytes);
  // iommu_dma_free_iova: gives back what alloc returned for `bytes`.
  // Fails as IovaDomain::free_fast.
  Status free(unsigned cpu, DmaAddr iova, std::uint64_t bytes);

 private:
  DeviceIovaDomain(std::unique_ptr<IovaDomain> domain, std::uint64_t dma_limit, bool try_sac)
      : domain_(std::move(domain)), dma_limit_(dma_limit), try_sac_(try_sac) {}

  std::unique_ptr<IovaDomain> domain_;
  const std::uint64_t dma_limit_;
  const bool try_sac_;
};

}  // namespace swiotlb::iova
