// The DMA API's bounce path (internal to dma/): shared by map_page and the
// waiting and queued maps.
#pragma once

#include "swiotlb/dma/dma_api.h"
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb {

// The request for bouncing [phys, phys + size) for `dev`, without a pool.
BounceRequest bounce_request(const Device& dev, PhysAddr phys, std::uint64_t size, Direction dir);

// Why a device with no pool it reaches cannot bounce (counted by the caller).
[[gnu::cold]] Error no_pool_error(const Device& dev, const IoTlb& io_tlb);

// After io_tlb.map(request): counts a failure, or checks that the device
// reaches the bounce buffer (undoing it when not), marks the device as one
// that uses its IoTlb and does the cache maintenance for the device.
Result<DmaAddr> finish_bounce(Device& dev, IoTlb& io_tlb, const BounceRequest& request,
                              Result<PhysAddr> tlb, Attrs attrs);

// The kernel's swiotlb_map(): bounces through the device's pools in order.
// With Attr::may_sleep the last pool waits until `*deadline` (null: the
// IoTlb's wait_timeout from now). A pointer, not an optional: map_page
// passes none on every call, and an optional built just before the call is
// read back whole, which stalls the store that built it.
Result<DmaAddr> bounce_map(Device& dev, IoTlb& io_tlb, PhysAddr phys, std::uint64_t size,
                           Direction dir, Attrs attrs,
                           const WaitQueue::Clock::time_point* deadline);

}  // namespace swiotlb
