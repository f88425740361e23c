// swiotlb_iova_domain: an IovaDomain, and reserved regions read from the
// kernel's sysfs text.
#include <string>

#include "capi_internal.h"
#include "swiotlb/iova/reserved_regions.h"
#include "swiotlb/platform/cpu.h"

using swiotlb::capi::fail;
using swiotlb::capi::guarded;
using swiotlb::capi::null_argument;

namespace {

swiotlb_status result(const swiotlb::Status& status) {
  return status ? SWIOTLB_OK : fail(status.error());
}

}  // namespace

extern "C" {

swiotlb_status swiotlb_iova_domain_create(uint64_t granule, uint64_t start_pfn, unsigned cpu_count,
                                          swiotlb_iova_domain** out) {
  return guarded("swiotlb_iova_domain_create", [&] {
    if (out == nullptr) {
      return null_argument("swiotlb_iova_domain_create", "out");
    }
    const unsigned cpus = cpu_count != 0 ? cpu_count : swiotlb::cpu_count();
    auto domain = swiotlb::iova::IovaDomain::create(granule, start_pfn, cpus);
    if (!domain) {
      return fail(domain.error());
    }
    auto handle = std::make_unique<swiotlb_iova_domain>();
    handle->domain = std::move(*domain);
    *out = handle.release();
    return SWIOTLB_OK;
  });
}

swiotlb_status swiotlb_iova_domain_destroy(swiotlb_iova_domain* domain) {
  delete domain;  // the domain's destructor does not throw
  return SWIOTLB_OK;
}

swiotlb_status swiotlb_iova_alloc(swiotlb_iova_domain* domain, uint64_t size, uint64_t limit_pfn,
                                  int size_aligned, uint64_t* pfn_lo, uint64_t* pfn_hi) {
  return guarded("swiotlb_iova_alloc", [&] {
    if (domain == nullptr || pfn_lo == nullptr || pfn_hi == nullptr) {
      return null_argument("swiotlb_iova_alloc", domain == nullptr ? "domain" : "pfn_lo or pfn_hi");
    }
    auto range = domain->domain->alloc(size, limit_pfn, size_aligned != 0);
    if (!range) {
      return fail(range.error());
    }
    *pfn_lo = range->pfn_lo;
    *pfn_hi = range->pfn_hi;
    return SWIOTLB_OK;
  });
}

swiotlb_status swiotlb_iova_free(swiotlb_iova_domain* domain, uint64_t pfn_lo) {
  return guarded("swiotlb_iova_free", [&] {
    if (domain == nullptr) {
      return null_argument("swiotlb_iova_free", "domain");
    }
    return result(domain->domain->free(pfn_lo));
  });
}

swiotlb_status swiotlb_iova_alloc_fast(swiotlb_iova_domain* domain, unsigned cpu, uint64_t size,
                                       uint64_t limit_pfn, int flush, uint64_t* pfn) {
  return guarded("swiotlb_iova_alloc_fast", [&] {
    if (domain == nullptr || pfn == nullptr) {
      return null_argument("swiotlb_iova_alloc_fast", domain == nullptr ? "domain" : "pfn");
    }
    auto got = domain->domain->alloc_fast(cpu, size, limit_pfn, flush != 0);
    if (!got) {
      return fail(got.error());
    }
    *pfn = *got;
    return SWIOTLB_OK;
  });
}

swiotlb_status swiotlb_iova_free_fast(swiotlb_iova_domain* domain, unsigned cpu, uint64_t pfn,
                                      uint64_t size) {
  return guarded("swiotlb_iova_free_fast", [&] {
    if (domain == nullptr) {
      return null_argument("swiotlb_iova_free_fast", "domain");
    }
    return result(domain->domain->free_fast(cpu, pfn, size));
  });
}

swiotlb_status swiotlb_iova_reserve(swiotlb_iova_domain* domain, uint64_t pfn_lo, uint64_t pfn_hi) {
  return guarded("swiotlb_iova_reserve", [&] {
    if (domain == nullptr) {
      return null_argument("swiotlb_iova_reserve", "domain");
    }
    auto reserved = domain->domain->reserve(pfn_lo, pfn_hi);
    return reserved ? SWIOTLB_OK : fail(reserved.error());
  });
}

swiotlb_status swiotlb_iova_reserve_regions(swiotlb_iova_domain* domain, const char* text,
                                            size_t* count) {
  return guarded("swiotlb_iova_reserve_regions", [&] {
    if (domain == nullptr || text == nullptr) {
      return null_argument("swiotlb_iova_reserve_regions", domain == nullptr ? "domain" : "text");
    }
    auto regions = swiotlb::iova::parse_reserved_regions(text);
    if (!regions) {
      return fail(regions.error());
    }
    swiotlb::iova::IovaDomain& d = *domain->domain;
    std::size_t reserved = 0;
    for (const swiotlb::iova::ReservedRegion& region :
         swiotlb::iova::merge_reserved_regions(std::move(*regions))) {
      // VFIO hands direct-relaxable regions to the user; everything else is
      // kept from the allocator.
      if (region.type == swiotlb::iova::ReservedType::direct_relaxable) {
        continue;
      }
      const std::uint64_t lo = region.start >> d.shift();
      if (lo > d.max_pfn()) {
        continue;  // wholly above the domain
      }
      const std::uint64_t hi = std::min(region.end >> d.shift(), d.max_pfn());
      auto done = d.reserve(lo, hi);
      if (!done) {
        if (count != nullptr) {
          *count = reserved;
        }
        return fail(done.error());
      }
      ++reserved;
    }
    if (count != nullptr) {
      *count = reserved;
    }
    return SWIOTLB_OK;
  });
}

}  // extern "C"
