// DmaDebug: the checks of the DMA API that can be turned off (the kernel's
// CONFIG_DMA_API_DEBUG, which production kernels leave off).
//
// Bounced mappings are checked by the pool itself, which records on each
// mapping its size, direction and owner; that record is also what unmap
// needs to find the slots, so it is kept whether checks are on or off.
// Direct mappings (and IOMMU mappings) have no slots, so with checks on
// this table records them: start, size and direction, by device address.
// An unmap or sync that names no mapping, or one with another size or
// direction, a double unmap, a sync beyond the mapping: each is an error
// value, counted here, and changes nothing.
//
// With checks off the table records nothing: add_direct does nothing,
// remove_direct and find_direct accept the caller's word (as the kernel
// does without CONFIG_DMA_API_DEBUG), live_direct() is 0, so Device::close()
// sees only bounced mappings. Requests no mapping can satisfy (no
// direction, zero bytes) and every misuse of a bounced mapping are still
// refused: those checks are part of the API, not of the debugging.
//
// Coherent buffers in normal memory are different: the library mapped
// their memory and must unmap exactly that, so they are recorded whether
// checks are on or off (add_coherent/remove_coherent; a coherent
// allocation is never on a hot path). A free of a buffer that was not
// given, a double free, and a close() with buffers still live are refused
// in every build.
//
// Whether a device checks is fixed when it is created: DeviceConfig::debug,
// whose default follows the process default below.
//
// Thread safety: all methods may be called from any thread; the table is
// guarded by one mutex per device, taken only with checks on (and for
// coherent buffers in normal memory).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>

#include "swiotlb/core/address.h"
#include "swiotlb/core/direction.h"
#include "swiotlb/core/error.h"

namespace swiotlb {

// Whether a device runs the checks.
enum class DmaDebugMode : std::uint8_t {
  process_default,  // what dma_debug_default() says when the device is created
  on,
  off,
};

// The process default: on in builds that evaluate SWIOTLB_CHECK (Debug and
// sanitizer builds), off otherwise (Release), until set. Test programs turn
// it on before creating devices. Thread safety: any thread; a device takes
// the value current at its creation.
bool dma_debug_default();
void set_dma_debug_default(bool on);

// The mode made definite: `mode`, or the process default for process_default.
bool dma_debug_enabled(DmaDebugMode mode);

struct DirectMapping {
  DmaAddr start;
  std::uint64_t size = 0;
  Direction dir = Direction::none;
};

class DmaDebug {
 public:
  explicit DmaDebug(bool enabled) : enabled_(enabled) {}

  // Whether this table checks (see the top of this file).
  bool enabled() const { return enabled_; }

  void add_direct(DirectMapping mapping);
  // Removes the direct mapping that starts at `start`, if its size and
  // direction match.
  Status remove_direct(DmaAddr start, std::uint64_t size, Direction dir);
  // The direct mapping that holds all of [addr, addr + size), if its
  // direction is `dir`.
  Result<DirectMapping> find_direct(DmaAddr addr, std::uint64_t size, Direction dir) const;
  std::uint64_t live_direct() const;

  // Coherent buffers in normal memory, recorded in every mode. Errors:
  // remove_coherent refuses (not_mapped, mapping_mismatch) a buffer that
  // was not given or was given with another size.
  void add_coherent(DirectMapping mapping);
  Status remove_coherent(DmaAddr start, std::uint64_t size);
  std::uint64_t live_coherent() const;

  // Counts a misuse and hands the error back, so a caller can write
  // `return debug.record(error)`.
  Error record(Error error);
  std::uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }

 private:
  const bool enabled_;
  mutable std::mutex lock_;
  std::map<std::uint64_t, DirectMapping> direct_;    // by start; guarded by lock_
  std::map<std::uint64_t, DirectMapping> coherent_;  // by start; guarded by lock_
  std::atomic<std::uint64_t> errors_{0};
};

}  // namespace swiotlb
