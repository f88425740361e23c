// BounceRoute: what the streaming maps of one device through one
// configured pool of an IoTlb share, worked out once.
//
// A device's min_align_mask, segment boundary and id, the pool it bounces
// through and where it sees that pool do not change from one map to the
// next. IoTlb::streaming_route() settles them when the device is made;
// IoTlb::map_streaming() is then handed only what each buffer changes (its
// address, size and direction), and plans nothing else. A plain value:
// copy it freely; it is only meaningful to the IoTlb that made it.
#pragma once

#include <cstdint>

#include "swiotlb/pool/slot_request.h"

namespace swiotlb {

struct BounceRoute {
  StreamingRoute slots;    // the pool's part (SlotPool::streaming_route)
  std::uint32_t pool = 0;  // which configured pool
};

}  // namespace swiotlb
