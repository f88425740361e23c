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

struct IoPool;
class SlotPool;

struct BounceRoute {
  StreamingRoute slots;  // the pool's part (SlotPool::streaming_route)
  // That configured pool itself (it lives as long as its IoTlb): a map or
  // unmap goes to it without looking for it in the IoTlb first, a
  // dependent load fewer while the IoTlb's lines are cold (after a long
  // copy).
  IoPool* configured = nullptr;
  // That pool's slots (its SlotPool, which lives as long as the pool):
  // the hit reaches them without loading the pool first.
  SlotPool* slots_pool = nullptr;
  std::uint32_t pool = 0;  // its index among the configured pools
};

}  // namespace swiotlb
