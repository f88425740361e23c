// RingBackend: an IoTlb backend whose pools an IoDevice's ring can use.
//
// A pool the IoTlb makes after its IoDevice was set up (grown by the
// worker, or transient for one mapping) is memory the ring has never
// heard of: fixed-buffer I/O on it would fail, and the Device would not
// reach it. RingBackend wraps the real backend and, in announce(), before
// any mapping in the pool is handed out, has the attached IoDevice
// register the pool in a free entry of its ring's sparse buffer table
// (io_uring_register_buffers_update) and add it to the Device's reach; in
// release(), after the last mapping in it is gone, the entry is emptied
// and the pool leaves the reach. So a pool is reachable exactly while it
// is registered (docs/io.md).
//
// Use: make the IoTlb with it, then the IoDevice with it:
//   auto ring = std::make_shared<io::RingBackend>(make_region_backend({}));
//   IoTlbOptions options; options.backend = ring; options.growth.enabled = true;
//   auto tlb = IoTlb::create(options);
//   auto dev = io::IoDevice::create(fd, tlb->get(), {.pools = ring});
// The IoDevice attaches itself at creation (registering every pool the
// IoTlb has, configured ones included) and detaches when it goes; pools
// announced while no IoDevice is attached are registered at the next
// attach.
//
// Errors: announce() fails, and the IoTlb drops the pool (a grown pool is
// tried smaller, a transient one is a refused map), when the ring refuses
// the registration (the locked-memory limit, a pool above 1 GiB) or the
// buffer table has no free entry. release() never fails.
//
// Thread safety: every method may be called from any thread; announce()
// and release() run on the IoTlb's worker and on callers' threads while
// the IoDevice's owner submits I/O.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "swiotlb/core/error.h"
#include "swiotlb/iotlb/backend.h"

namespace swiotlb::io {

// What RingBackend tells about pools: an IoDevice.
class PoolRegistrar {
 public:
  // Registers [start, start + bytes) and adds it to the device's reach.
  virtual Status add_pool(PhysAddr start, std::uint64_t bytes) = 0;
  // Takes the pool at `start` out of the reach and the ring.
  virtual void remove_pool(PhysAddr start) noexcept = 0;

 protected:
  ~PoolRegistrar() = default;
};

class RingBackend final : public WrappingBackend {
 public:
  // `inner`: the real backend (required).
  explicit RingBackend(std::shared_ptr<IoTlbBackend> inner);

  Status announce(const PoolMemory& memory, const PoolMemoryRequest& request) override;
  void release(PoolMemory memory) noexcept override;

  // Registers every pool announced and not yet released with `registrar`
  // and sends it every later one. One registrar at a time. Errors:
  // invalid_argument (one is attached already), and the first
  // registration that failed (then nothing stays attached or registered).
  Status attach(PoolRegistrar* registrar);
  // Stops telling `registrar` (which keeps what it registered).
  void detach(PoolRegistrar* registrar);

  // Pools announced and not yet released.
  std::size_t live_pools() const;

 private:
  mutable std::mutex lock_;
  // Held across the registrar's calls, so that detach() waits for one
  // in progress and a pool is never added after it.
  PoolRegistrar* registrar_ = nullptr;           // guarded by lock_
  std::map<std::uint64_t, std::uint64_t> live_;  // start -> bytes; guarded by lock_
};

}  // namespace swiotlb::io
