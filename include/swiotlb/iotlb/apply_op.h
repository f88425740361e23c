// apply(op, IoTlb): the op vocabulary (ops/op.h) on an IoTlb.
//
//   map       IoTlb::map on configured pool 0, the pool's own address as the
//             device's (pool_dma_start = start()); gives the bounce address
//   unmap     IoTlb::unmap with the op's claim (owner 0); an op with no
//             size (no claim) is refused: an IoTlb unmaps against a claim
//   sync_*    IoTlb::sync_for_cpu / sync_for_device (owner 0)
//   grow      IoTlb::add_pool on configured pool 0 (refused unless the
//             IoTlb grows); gives the new pool's start
//   tick      moves `clock` on by the op's time in whole ticks of
//             SimulationBackend::kTick, then runs the maintenance due
//             (idle pools shrink, growth asked for happens); refused
//             without a clock, since a real backend's clock is real time
//   iova_*    refused (Errc::invalid_argument)
//
// Errors are the IoTlb's own, nothing changed by them. Thread safety: as
// the IoTlb calls it makes. `clock`, when given, must be the IoTlb's backend.
#pragma once

#include "swiotlb/core/export.h"
#include "swiotlb/iotlb/backend.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/ops/op.h"

namespace swiotlb::ops {

SWIOTLB_API Applied apply(const Op& op, IoTlb& tlb, SimulationBackend* clock = nullptr);

// The request a Map op makes of an IoTlb (what apply() maps), for a caller
// that wants to judge it too.
SWIOTLB_API BounceRequest bounce_request(const Map& map, const IoTlb& tlb);

}  // namespace swiotlb::ops
