// A device's IOVA domain: built and reserved as dma-iommu.c does, then used
// through IovaDomain's cached calls. No state of its own beyond immutables.
#include "swiotlb/iova/device_domain.h"

#include <algorithm>
#include <bit>

namespace swiotlb::iova {
namespace {

constexpr std::uint64_t kDmaBitMask32 = 0xffffffff;

// Everything in `spec` that the domain reserves, in the kernel's order, as
// pfn ranges: bridge windows and holes first, then the IOMMU's regions.
Result<std::vector<IovaRange>> kernel_reserves(const DeviceIovaSpec& spec, unsigned shift) {
  std::vector<IovaRange> reserves;
  if (spec.is_pci) {
    Result<std::vector<DmaWindow>> inbound = sort_inbound_windows(spec.inbound);
    if (!inbound) {
      return std::move(inbound).error();
    }
    reserves = kernel_pci_window_reserves(spec.outbound, *inbound, shift);
  }
  for (const ReservedRegion& region : spec.regions) {
    if (region.type != ReservedType::sw_msi) {
      reserves.push_back({region.start >> shift, region.end >> shift});
    }
  }
  return reserves;
}

}  // namespace

Result<std::vector<ReservedRegion>> device_reserved_regions(const DeviceIovaSpec& spec) {
  Result<std::uint64_t> top = device_dma_limit(spec.mask_bits, spec.bus_dma_limit);
  if (!top) {
    return std::move(top).error();
  }
  std::vector<ReservedRegion> regions = spec.regions;
  if (spec.is_pci) {
    Result<std::vector<DmaWindow>> inbound = sort_inbound_windows(spec.inbound);
    if (!inbound) {
      return std::move(inbound).error();
    }
    for (const DmaWindow& window : spec.outbound) {
      regions.push_back({window.start, window.end, ReservedType::reserved});
    }
    const std::vector<ReservedRegion> holes = inbound_window_holes(*inbound, *top);
    regions.insert(regions.end(), holes.begin(), holes.end());
  }
  return merge_reserved_regions(std::move(regions));
}

Result<std::vector<DmaWindow>> device_valid_ranges(const DeviceIovaSpec& spec) {
  Result<std::uint64_t> top = device_dma_limit(spec.mask_bits, spec.bus_dma_limit);
  if (!top) {
    return std::move(top).error();
  }
  Result<std::vector<ReservedRegion>> regions = device_reserved_regions(spec);
  if (!regions) {
    return std::move(regions).error();
  }
  return valid_iova_ranges({0, *top}, *regions);
}

Result<std::unique_ptr<DeviceIovaDomain>> DeviceIovaDomain::create(const DeviceIovaSpec& spec) {
  Result<std::uint64_t> limit = device_dma_limit(spec.mask_bits, spec.bus_dma_limit);
  if (!limit) {
    return std::move(limit).error();
  }
  if (Status st = IovaTree::check_geometry(spec.granule, 1); !st) {
    return st.error();
  }
  const unsigned shift = static_cast<unsigned>(std::countr_zero(spec.granule));
  Result<std::unique_ptr<IovaDomain>> domain = IovaDomain::create(
      spec.granule, std::max<std::uint64_t>(1, spec.base >> shift), spec.cpu_count, spec.checks);
  if (!domain) {
    return std::move(domain).error();
  }
  Result<std::vector<IovaRange>> reserves = kernel_reserves(spec, shift);
  if (!reserves) {
    return std::move(reserves).error();
  }
  for (const IovaRange& range : *reserves) {
    if (Result<IovaRange> r = (*domain)->reserve(range.pfn_lo, range.pfn_hi); !r) {
      return std::move(r).error();
    }
  }
  return std::unique_ptr<DeviceIovaDomain>(
      new DeviceIovaDomain(std::move(*domain), *limit, spec.is_pci));
}

Result<DmaAddr> DeviceIovaDomain::alloc(unsigned cpu, std::uint64_t bytes) {
  if (bytes == 0) {
    return make_error(Errc::invalid_argument, "an IOVA of 0 bytes");
  }
  const unsigned shift = domain_->shift();
  const std::uint64_t granules = ((bytes - 1) >> shift) + 1;
  if (try_sac_ && dma_limit_ > kDmaBitMask32) {
    if (Result<std::uint64_t> pfn =
            domain_->alloc_fast(cpu, granules, kDmaBitMask32 >> shift, false)) {
      return DmaAddr(*pfn << shift);
    }
  }
  Result<std::uint64_t> pfn = domain_->alloc_fast(cpu, granules, limit_pfn(), true);
  if (!pfn) {
    return std::move(pfn).error();
  }
  return DmaAddr(*pfn << shift);
}

Status DeviceIovaDomain::free(unsigned cpu, DmaAddr iova, std::uint64_t bytes) {
  if (bytes == 0) {
    return make_error(Errc::invalid_argument, "free of an IOVA of 0 bytes at {:#x}", iova.value());
  }
  const unsigned shift = domain_->shift();
  const std::uint64_t offset = iova.value() & (domain_->granule() - 1);
  const std::uint64_t granules = ((bytes + offset - 1) >> shift) + 1;
  return domain_->free_fast(cpu, iova.value() >> shift, granules);
}

}  // namespace swiotlb::iova
