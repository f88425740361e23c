// IoTlbBackend: where an IoTlb's pools get their memory, what time it is,
// and who runs the IoTlb's background work.
//
// The IoTlb keeps the bookkeeping (slots, the pool table, growth and shrink
// decisions); everything that depends on where it runs sits behind this
// seam, so that one IoTlb serves a real process, a device in another process
// and a trace replay alike:
//  - the real backend (make_region_backend) maps regions of the same kind as
//    the configured window: anonymous, memfd, file or hugetlbfs; a window
//    at a fixed address grows anywhere;
//  - a backend of the user's own can wrap it, for example to hand each new
//    memfd to a device process in announce(), before any mapping in it is
//    handed out;
//  - a simulation backend (SimulationBackend) gives synthetic
//    addresses with no memory behind them, an event clock and manual
//    maintenance, so that pools of many GiB cost nothing.
//
// The protocol, per pool:
//  1. allocate(): memory of at least `bytes` for a pool of the given kind,
//     serving configured pool `tier`. May fail (Errc::system and friends):
//     the IoTlb counts the failure and, for a grown pool, tries half the
//     size, down to one segment.
//  2. announce(): called once the pool's bookkeeping is ready and BEFORE any
//     address in it reaches a caller or the pool becomes searchable, so that
//     a backend can register or publish the memory (send it to a device
//     process). A failed announcement drops the pool (release() follows).
//  3. release(): after the pool has left the IoTlb and no reader can reach
//     it any more (after the pool table's grace period), exactly once per
//     allocate() that succeeded.
// The configured pools (tiers 0 and 1) take the same path at creation.
//
// This is snmalloc's backend concept (a range provider under the allocator,
// plus its platform's clock and its notion of who runs deferred work) cut to
// what a bounce-buffer pool needs.
//
// Ownership: an IoTlb shares ownership of its backend (IoTlbOptions::backend),
// which therefore outlives every pool it gave memory for.
//
// Thread safety: allocate(), announce() and release() may be called from any
// thread and at once: growth runs in the maintenance, transient pools are
// made on callers' threads, and release() follows a grace period. An
// implementation that keeps state must lock it. now() and maintenance()
// from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/platform/region.h"
#include "swiotlb/platform/region_spec.h"

namespace swiotlb {

// configured: the default and high pools; grown: added for a configured
// pool that ran short; transient: made for one mapping; reserve: made at
// creation and kept for callers that cannot sleep (IoTlbOptions::reserve_nslabs).
enum class PoolKind : std::uint8_t { configured, grown, transient, reserve };

SWIOTLB_API std::string_view to_string(PoolKind kind);

// What a pool's memory is for.
struct PoolMemoryRequest {
  std::uint64_t bytes = 0;  // at least this many; a whole number of slots
  PoolKind kind = PoolKind::configured;
  std::uint32_t tier = 0;  // the configured pool served: 0 low (or restricted), 1 high
  std::string_view name;   // the pool's name, for messages
};

// Memory a backend gave for one pool. Move-only; the IoTlb gives it back
// through release().
struct PoolMemory {
  PhysAddr start;           // the pool's first byte, as the IoTlb addresses it
  std::uint64_t bytes = 0;  // at least what was asked
  // The CPU's view of `start`, or null when no memory stands behind the
  // addresses (simulation): the IoTlb then skips every copy.
  std::byte* data = nullptr;
  // The mapping behind `data`, when the backend made one (its descriptor
  // is what a shared window hands over).
  std::unique_ptr<Region> region;
  // The backend's own name for the memory (a segment number, a file
  // offset); the IoTlb only carries it back to release().
  std::uint64_t token = 0;
};

// Who runs the IoTlb's background work (growth, shrink, reclaim of retired
// pools, queued maps).
enum class Maintenance : std::uint8_t {
  worker_thread,  // a thread of the IoTlb's own, woken when there is work
  caller_driven,  // nobody: the caller calls IoTlb::run_maintenance()
};

class SWIOTLB_API IoTlbBackend {
 public:
  using Clock = std::chrono::steady_clock;

  virtual ~IoTlbBackend() = default;

  // Memory for a pool. Errors are values; nothing is held after a failure.
  virtual Result<PoolMemory> allocate(const PoolMemoryRequest& request) = 0;

  // The pool in `memory` is about to take mappings (see the protocol
  // above). The default has nobody to tell.
  virtual Status announce(const PoolMemory& memory, const PoolMemoryRequest& request);

  // Takes the memory back. Never fails (a backend that cannot unpublish
  // logs it).
  virtual void release(PoolMemory memory) noexcept = 0;

  // Maps again the memory of a pool that an earlier holder of a persistent
  // IoTlb left (its pool directory names it, pool_directory.h): `token` and
  // `start` as that holder's allocate() gave them, `request.bytes` its
  // size. The memory must come back at `start`, since the pool's image and
  // its live mappings hold addresses in it; later allocate() calls must not
  // hand out any of it. released through release() like allocated memory.
  // The default: Errc::invalid_argument (a backend whose memory does not
  // outlive its process).
  virtual Result<PoolMemory> reattach(const PoolMemoryRequest& request, PhysAddr start,
                                      std::uint64_t token);

  // The clock that idle pools are timed by.
  virtual Clock::time_point now() const = 0;

  virtual Maintenance maintenance() const = 0;
};

// A backend that adds to another: every call goes on to `inner`, so that a
// wrapper (a shared window, Xen's exchange, an io_uring's registered
// buffers) overrides what it adds to, announce and release, and calls the
// wrapped step from its own. reattach is not passed on: a wrapper whose
// work on a pool does not outlive its process refuses it, as the default
// does. Thread safety: that of `inner`. REQUIRES: `inner` is not null.
class SWIOTLB_API WrappingBackend : public IoTlbBackend {
 public:
  explicit WrappingBackend(std::shared_ptr<IoTlbBackend> inner) : inner_(std::move(inner)) {}

  Result<PoolMemory> allocate(const PoolMemoryRequest& request) override {
    return inner_->allocate(request);
  }
  Status announce(const PoolMemory& memory, const PoolMemoryRequest& request) override {
    return inner_->announce(memory, request);
  }
  void release(PoolMemory memory) noexcept override { inner_->release(std::move(memory)); }
  Clock::time_point now() const override { return inner_->now(); }
  Maintenance maintenance() const override { return inner_->maintenance(); }

 private:
  const std::shared_ptr<IoTlbBackend> inner_;
};

// What the real backend makes pools of.
struct RegionBackendOptions {
  // The configured (default) pool's memory: its kind, path, offset, fixed
  // address. Empty: anonymous memory placed by `placement`.
  std::optional<RegionSpec> region;
  RegionPlacement placement = RegionPlacement::low;
  // Attach the configured pool to existing memory instead of making it.
  std::optional<AttachSpec> attach;
  // Every pool of the IoTlb persists: the high pool too lives in the
  // window's file, past the default pool (grown pools of a file window
  // always do), so that reattach() finds each of them again.
  bool persistent = false;
};

// The real backend: regions of the same kind as the configured window.
// Grown and transient pools of an anonymous window are anonymous (low when
// the window is low); of a memfd window, new memfds; of a file or hugetlbfs
// window, further ranges of the same file past the window (the file grows;
// ranges given back are reused); a window at a fixed address grows
// anywhere. The high pool (tier 1) is anonymous, placed anywhere. Wall
// clock, worker thread. With `persistent`, the high pool too is a range of
// the window's file; reattach() maps a range of that file again at its old
// address (a window given by path only).
SWIOTLB_API std::shared_ptr<IoTlbBackend> make_region_backend(const RegionBackendOptions& options);

// The simulation backend: pools at synthetic addresses with no memory
// behind them, starting at `base` (configured pool 0 at `base` exactly),
// each later pool aligned to its size rounded up to a power of two, never
// reused; a clock that advance() moves (one event, one tick); maintenance
// only when the caller runs it. Thread-safe.
class SWIOTLB_API SimulationBackend final : public IoTlbBackend {
 public:
  explicit SimulationBackend(std::uint64_t base);

  Result<PoolMemory> allocate(const PoolMemoryRequest& request) override;
  void release(PoolMemory memory) noexcept override;
  Clock::time_point now() const override;
  Maintenance maintenance() const override { return Maintenance::caller_driven; }

  // Moves the clock on by `ticks` (the simulation's events).
  void advance(std::uint64_t ticks = 1);
  // The next allocate() gives its memory at exactly `start` instead of a
  // synthetic address (a replay that puts a pool where a recorded kernel
  // had it); nullopt takes back a placement not used yet. The IoTlb's pool
  // table refuses a pool that overlaps another. Later synthetic addresses
  // stay above every placed pool.
  void place_next(std::optional<std::uint64_t> start);
  // One tick of the clock, as a duration (what shrink_after is counted in).
  static constexpr Clock::duration kTick = std::chrono::milliseconds{1};

 private:
  std::mutex lock_;
  std::uint64_t next_;                   // guarded by lock_
  bool base_used_ = false;               // guarded by lock_
  std::optional<std::uint64_t> placed_;  // guarded by lock_
  std::atomic<std::uint64_t> ticks_{0};
};

}  // namespace swiotlb
