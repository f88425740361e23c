// IoPool: one pool of an IoTlb, with the memory under it.
//
// An IoTlb holds the pools it was configured with (the default low pool and
// perhaps a high one) for its whole life, and pools that come and go:
//  - grown pools, added by the IoTlb's worker when a configured pool runs
//    short, and given back when they have been idle for a while;
//  - transient pools, made for one mapping that found every pool full when
//    its caller could not wait, and freed when that mapping is unmapped.
// A grown pool extends the configured pool it was grown for (its `tier`):
// requests for that pool search it too.
//
// Thread safety: the fields are fixed once the pool is published, except
// `accepting` (atomic) and the SlotPool (thread-safe itself).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "swiotlb/core/address.h"
#include "swiotlb/iotlb/backend.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {

struct IoPool {
  // Gives the memory back to the backend that gave it, after the slots.
  ~IoPool();

  std::string name;
  PoolKind kind = PoolKind::configured;
  std::uint32_t tier = 0;   // the configured pool this one serves
  std::uint32_t owner = 0;  // transient: the device it was made for
  PoolMemory memory;
  std::shared_ptr<IoTlbBackend> backend;  // where `memory` goes back to
  std::unique_ptr<SlotPool> slots;
  // Where lookups by address find the pool: the region's part that slots
  // cover. A transient pool's SlotPool spans a whole segment but its region
  // only the bytes its one mapping needs, so two transient pools may sit
  // closer together than their SlotPools' extents.
  PhysAddr start;
  PhysAddr end;
  // Whether new mappings may go here. The worker clears it before it gives
  // a grown pool back (see IoTlb's shrink), and a transient pool never
  // accepts more than the mapping it was made for.
  std::atomic<bool> accepting{true};
  // A pool of a persistent IoTlb beside the default one: its entry in the
  // pool directory (pool_directory.h), cleared before the pool goes.
  std::optional<std::uint32_t> directory_slot;

  std::uint64_t bytes() const { return end - start; }
  // The CPU's view of bounce address `addr` in this pool, or null when no
  // memory stands behind it (a simulation backend).
  std::byte* data_at(PhysAddr addr) const {
    return memory.data != nullptr ? memory.data + (addr - memory.start) : nullptr;
  }
  std::uint64_t nslabs() const { return bytes() >> 11; }
  bool contains(PhysAddr addr) const { return addr >= start && addr < end; }
};

}  // namespace swiotlb
