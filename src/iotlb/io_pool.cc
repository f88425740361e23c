// An IoPool gives its memory back to its backend when it goes: after its
// slots, which may keep their bookkeeping in that memory (a pool image).
#include "swiotlb/iotlb/io_pool.h"

namespace swiotlb {

IoPool::~IoPool() {
  slots.reset();
  if (backend != nullptr) {
    backend->release(std::move(memory));
  }
}

}  // namespace swiotlb
