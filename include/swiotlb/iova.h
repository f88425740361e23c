// The IOVA entry header: IOMMU domains' device address spaces as Linux's
// iova.c manages them.
//
//   #include <swiotlb/iova.h>
//
// gives IovaDomain (the allocator with its per-CPU caches), the aperture and
// DMA windows of a domain, reserved regions in the kernel's sysfs format and
// VFIO's valid IOVA ranges, and DeviceDomain (an IOVA domain as a device
// sees it). JSON for reserved regions is opt-in:
// <swiotlb/iova/reserved_regions_json.h>.
#pragma once

#include "swiotlb/iova/aperture.h"
#include "swiotlb/iova/device_domain.h"
#include "swiotlb/iova/dma_window.h"
#include "swiotlb/iova/iova_domain.h"
#include "swiotlb/iova/reserved_regions.h"
