// DmaDebug: the always-on checks of the DMA API (the kernel's
// CONFIG_DMA_API_DEBUG, which the kernel leaves off by default; here it
// costs little and stays on).
//
// Bounced mappings are checked by the pool itself, which records on each
// mapping its size, direction and owner. Direct mappings have no slots, so
// this table records them: start, size and direction, by device address.
// An unmap or sync that names no mapping, or one with another size or
// direction, a double unmap, a sync beyond the mapping: each is an error
// value, counted here, and changes nothing.
//
// Thread safety: all methods may be called from any thread; the table is
// guarded by one mutex per device.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>

#include "swiotlb/core/address.h"
#include "swiotlb/core/direction.h"
#include "swiotlb/core/error.h"

namespace swiotlb {

struct DirectMapping {
  DmaAddr start;
  std::uint64_t size = 0;
  Direction dir = Direction::none;
};

class DmaDebug {
 public:
  void add_direct(DirectMapping mapping);
  // Removes the direct mapping that starts at `start`, if its size and
  // direction match.
  Status remove_direct(DmaAddr start, std::uint64_t size, Direction dir);
  // The direct mapping that holds all of [addr, addr + size), if its
  // direction is `dir`.
  Result<DirectMapping> find_direct(DmaAddr addr, std::uint64_t size, Direction dir) const;
  std::uint64_t live_direct() const;

  // Counts a misuse and hands the error back, so a caller can write
  // `return debug.record(error)`.
  Error record(Error error);
  std::uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }

 private:
  mutable std::mutex lock_;
  std::map<std::uint64_t, DirectMapping> direct_;  // by start; guarded by lock_
  std::atomic<std::uint64_t> errors_{0};
};

}  // namespace swiotlb
