// The DMA API's IOMMU path (internal to dma/): called by map_page,
// unmap_page and the syncs when the device has an IOMMU domain.
#pragma once

#include "swiotlb/dma/dma_api.h"

namespace swiotlb {

Result<DmaAddr> iommu_map_page(Device& dev, PhysAddr phys, std::uint64_t size, Direction dir,
                               Attrs attrs);
Status iommu_unmap_page(Device& dev, DmaAddr iova, std::uint64_t size, Direction dir, Attrs attrs);
Status iommu_sync(Device& dev, DmaAddr iova, std::uint64_t size, Direction dir, CacheOp op);

}  // namespace swiotlb
