// PoolTable: the pools of an IoTlb, found by address without a lock.
//
// Every bounce address that comes back (unmap, sync, is_swiotlb_buffer)
// must be traced to the pool that holds it, and pools come and go while
// other threads look them up. The table keeps an immutable snapshot (the
// pools sorted by address, and per configured pool its search order) behind
// one atomic pointer. A reader enters a read-side critical section
// (ReadGuard), loads the pointer and binary-searches the snapshot: O(log n)
// in the number of pools, no lock, no write to shared memory beyond its own
// thread's reader state. A writer (one at a time) builds a new snapshot,
// publishes it, and puts the old snapshot, and any pool it took out, on a
// list that reclaim() frees once every reader that might still hold them
// has left its critical section.
//
// The read-side critical sections and the grace period are user-space RCU
// (liburcu's "bulletproof" flavour, which needs no registration of reader
// threads, so any thread of a library user may read). The ordering argument:
//  1. A writer fully builds a snapshot, then publishes it with a release
//     store; a reader loads it with an acquire load. A reader therefore sees
//     a snapshot and the pools it lists fully initialized.
//  2. Once a snapshot no longer lists a pool, only readers that loaded an
//     older snapshot can reach the pool, and each of them loaded it inside a
//     critical section that began before the unpublication.
//  3. reclaim() first takes the retired list (under the writer lock), then
//     waits for a grace period: every critical section that was running
//     when the wait began has ended. Those are all the readers of 2, so
//     nothing reaches what the list holds, and it is freed.
// A reader must not keep a pool pointer past its critical section; the
// IoTlb also never retires a pool that holds a live mapping, so a caller
// that holds a mapping knows its pool outlives it.
//
// Thread safety: readers anywhere, with a ReadGuard; insert(), retire() and
// reclaim() from any thread (serialized inside).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "swiotlb/core/address.h"
#include "swiotlb/iotlb/io_pool.h"

namespace swiotlb {

class PoolTable {
 public:
  // A read-side critical section of the calling thread. Nests. An owner
  // whose table never changes after setup may pass `active` false and
  // skip it (there is then nothing to wait for).
  class ReadGuard {
   public:
    // Inline, so that an inactive guard (on every map and unmap of an
    // IoTlb without growth) costs a test of `active`.
    explicit ReadGuard(bool active = true) : active_(active) {
      if (active_) {
        enter();
      }
    }
    ~ReadGuard() {
      if (active_) {
        leave();
      }
    }
    ReadGuard(const ReadGuard&) = delete;
    ReadGuard& operator=(const ReadGuard&) = delete;

   private:
    static void enter();
    static void leave();
    const bool active_;
  };

  explicit PoolTable(std::uint32_t tiers);
  ~PoolTable();  // REQUIRES: no reader inside; frees every pool
  PoolTable(const PoolTable&) = delete;
  PoolTable& operator=(const PoolTable&) = delete;

  // Readers. REQUIRES: a ReadGuard alive in this thread; results valid
  // until it ends.
  //
  // The pool whose [start, end) holds `addr`, or null.
  IoPool* find(PhysAddr addr) const;
  // The pools a request for configured pool `tier` searches, in order: the
  // configured pool, then the pools grown for it, oldest first.
  std::span<IoPool* const> search_order(std::uint32_t tier) const;
  // Every pool, by address.
  std::span<IoPool* const> pools() const;

  // Writers.
  //
  // Adds a pool (its range must not overlap another's: Errc::invalid_argument).
  Status insert(std::unique_ptr<IoPool> pool);
  // Takes `pool` out of the table; it is freed by a later reclaim().
  // REQUIRES: `pool` is in the table.
  void retire(IoPool* pool);
  // Waits until every read-side critical section that is running now has
  // ended (a grace period). REQUIRES: not inside a ReadGuard.
  static void wait_for_readers();
  // Whether retire() or insert() left anything for reclaim().
  bool has_retired() const;
  // Waits for a grace period and frees what was retired before the call.
  // Blocks for as long as the longest read-side critical section running.
  void reclaim();

 private:
  struct Snapshot;
  struct Retired;

  void publish(std::unique_ptr<Snapshot> next);  // REQUIRES: write_lock_ held

  const std::uint32_t tiers_;
  std::atomic<const Snapshot*> current_;
  mutable std::mutex write_lock_;
  std::vector<std::unique_ptr<IoPool>> owned_;  // guarded by write_lock_
  std::vector<Retired> retired_;                // guarded by write_lock_
  std::atomic<bool> has_retired_{false};
};

}  // namespace swiotlb
