// The backend seam's defaults, and the simulation backend.
#include "swiotlb/iotlb/backend.h"

#include <algorithm>
#include <bit>

#include "swiotlb/core/constants.h"

namespace swiotlb {

Status IoTlbBackend::announce(const PoolMemory& /*memory*/, const PoolMemoryRequest& /*request*/) {
  return {};
}

Result<PoolMemory> IoTlbBackend::reattach(const PoolMemoryRequest& request, PhysAddr start,
                                          std::uint64_t /*token*/) {
  return make_error(Errc::invalid_argument,
                    "the {} pool at {:#x} cannot be attached again: its backend's memory ends "
                    "with its process",
                    request.name, start.value());
}

SimulationBackend::SimulationBackend(std::uint64_t base) : next_(base) {}

Result<PoolMemory> SimulationBackend::allocate(const PoolMemoryRequest& request) {
  if (request.bytes == 0) {
    return make_error(Errc::invalid_argument, "{}: a pool of 0 bytes", request.name);
  }
  std::lock_guard guard(lock_);
  std::uint64_t start = next_;
  if (placed_) {
    start = *placed_;
    placed_.reset();
    if (start + request.bytes < start) {
      return make_error(Errc::invalid_argument, "{}: {} bytes at {:#x} pass the end of memory",
                        request.name, request.bytes, start);
    }
    next_ = std::max(next_, start + request.bytes);
    PoolMemory memory;
    memory.start = PhysAddr(start);
    memory.bytes = request.bytes;
    return memory;
  }
  if (base_used_ || request.kind != PoolKind::configured || request.tier != 0) {
    // As the page allocator aligns its blocks.
    const std::uint64_t align = std::bit_ceil(std::max<std::uint64_t>(request.bytes, kPageSize));
    start = (next_ + align - 1) & ~(align - 1);
  }
  if (start + request.bytes < start) {
    return make_error(Errc::system, "{}: {} bytes past the end of the simulated address space",
                      request.name, request.bytes);
  }
  base_used_ = true;
  next_ = start + request.bytes;
  PoolMemory memory;
  memory.start = PhysAddr(start);
  memory.bytes = request.bytes;
  return memory;
}

void SimulationBackend::release(PoolMemory /*memory*/) noexcept {
  // Addresses are never reused, so that a stale one is never a live one.
}

IoTlbBackend::Clock::time_point SimulationBackend::now() const {
  return Clock::time_point(kTick * static_cast<Clock::rep>(ticks_.load(std::memory_order_relaxed)));
}

void SimulationBackend::place_next(std::optional<std::uint64_t> start) {
  std::lock_guard guard(lock_);
  placed_ = start;
}

void SimulationBackend::advance(std::uint64_t ticks) {
  ticks_.fetch_add(ticks, std::memory_order_relaxed);
}

}  // namespace swiotlb
