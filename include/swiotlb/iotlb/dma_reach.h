// DmaReach: how a device sees a pool.
//
// A device that bounces must reach the pool as one run of device addresses
// below its limit. Pools configured at creation are checked once, when the
// device is set up; pools that come later (grown, transient) are checked
// through this interface, which the DMA layer's devices implement.
#pragma once

#include <cstdint>
#include <optional>

#include "swiotlb/core/address.h"
#include "swiotlb/core/export.h"

namespace swiotlb {

class SWIOTLB_API DmaReach {
 public:
  // The device address of `start`, when the device reaches all of
  // [start, start + bytes) below its limit; nothing otherwise.
  virtual std::optional<DmaAddr> pool_dma_start(PhysAddr start, std::uint64_t bytes) const = 0;

 protected:
  ~DmaReach() = default;
};

}  // namespace swiotlb
