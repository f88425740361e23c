// apply(op, Device): the op vocabulary (ops/op.h) through the DMA API, as
// a driver of that device would call it.
//
//   map       map_page of [orig, orig + size) (orig is a CPU address, as
//             everywhere in this library); gives the DMA address. The op's
//             masks must be the device's own (DeviceConfig); an op with an
//             alloc_size or alloc_align_mask is refused, since map_page
//             takes neither. The op's cpu is not used: the map runs on the
//             calling thread's CPU.
//   unmap     unmap_page of the DMA address with the op's size and
//             direction; an op with no size is refused
//   sync_*    sync_single_for_cpu / sync_single_for_device
//   tick      changes nothing: a device keeps no clock (its IoTlb's is its
//             backend's: apply the tick to the IoTlb)
//   grow, iova_*  refused: growth is the IoTlb's, IOVAs the IOMMU domain's
//
// Errors are the DMA API's own, nothing changed by them. Maps copy memory
// as map_page does: `orig` must be memory the caller owns. Thread safety:
// as the DMA API calls it makes.
#pragma once

#include "swiotlb/core/export.h"
#include "swiotlb/dma/device.h"
#include "swiotlb/ops/op.h"

namespace swiotlb::ops {

SWIOTLB_API Applied apply(const Op& op, Device& device);

}  // namespace swiotlb::ops
