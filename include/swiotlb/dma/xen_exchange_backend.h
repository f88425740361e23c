// XenExchangeBackend: an IoTlb backend that runs Xen's fixup of a bounce
// pool (xen_swiotlb_fixup, frame_translator.h) on every pool as it is
// made, grown and transient pools included, so that a translated device
// reaches each of them (docs/xen.md).
//
// It wraps another backend. announce(), which the IoTlb calls before a
// pool takes any mapping, checks whether the pool's pages already lie in
// one run of machine frames below the limit for the pool's tier; if not,
// it exchanges them with the hypervisor model (FrameExchange) and adds the
// run to its ExchangedTranslator, which every translated device of the
// IoTlb shares as its DeviceConfig::translator: the devices reach the pool
// from that moment on, without being made again. release() takes the run
// out and hands its frames back to the hypervisor before the memory goes.
//
// A failed exchange (no run of free machine frames below the limit, an
// exchange the hypervisor stopped part way, frames another page holds)
// fails the announcement with a message that names the pool and the limit;
// the IoTlb then drops the pool (a grown pool is tried at half the size, a
// transient pool's map is refused, add_pool() and IoTlb::create() return
// the error). No frame stays taken: the exchange gives back what it took,
// and frames the translator could not use go back too. A device is never
// given an address in a pool it does not reach.
//
// Pools are not re-attached through this backend (reattach() keeps the
// default refusal): the machine frames a pool held in an earlier process
// are not recorded, and in-flight DMA would still target them.
//
// The kernel runs xen_swiotlb_fixup on the pool it makes at boot, and in
// its dynamic swiotlb (6.6 on) does not grow a pool that needed such a
// remap; this backend does what a growing Xen guest would need instead.
//
// Ownership: the IoTlb shares the backend (IoTlbOptions::backend); the
// backend shares the inner backend, the hypervisor and the translator.
// Thread safety: every method may be called from any thread (the IoTlb's
// worker announces grown pools, callers' threads transient ones).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/dma/exchanged_translator.h"
#include "swiotlb/dma/frame_translator.h"
#include "swiotlb/iotlb/backend.h"

namespace swiotlb {

struct XenExchangeBackendOptions {
  // The backend that gives the pools' memory. Required.
  std::shared_ptr<IoTlbBackend> inner;
  // The hypervisor's side of the exchange. Required.
  std::shared_ptr<FrameExchange> hypervisor;
  // The guest's frames before any pool is exchanged (null: every page in
  // its own frame).
  std::shared_ptr<const FrameTranslator> base;
  // The highest machine address a pool serving the default pool (tier 0)
  // may reach to, and one serving the high pool (tier 1): what the
  // translated devices reach.
  std::uint64_t limit = 0xffffffff;
  std::uint64_t high_limit = ~std::uint64_t{0};
  // Exchanged pools at once (configured, grown and transient together).
  std::uint32_t max_pools = 256;
};

struct XenExchangeStats {
  std::uint64_t exchanged = 0;    // pools whose frames were exchanged
  std::uint64_t reachable = 0;    // pools that needed no exchange
  std::uint64_t failed = 0;       // exchanges that failed (the pool was dropped)
  std::uint64_t given_back = 0;   // exchanged pools whose frames went back
  std::uint64_t live_frames = 0;  // machine frames held by live pools now
};

class SWIOTLB_API XenExchangeBackend final : public WrappingBackend {
 public:
  // Errors: invalid_argument (no inner backend or hypervisor, max_pools 0,
  // a limit of 0).
  static Result<std::shared_ptr<XenExchangeBackend>> create(XenExchangeBackendOptions options);

  Status announce(const PoolMemory& memory, const PoolMemoryRequest& request) override;
  void release(PoolMemory memory) noexcept override;

  // The translation every translated device of the IoTlb is given
  // (DeviceConfig::translator); it changes as pools come and go.
  std::shared_ptr<const ExchangedTranslator> translator() const { return translator_; }
  XenExchangeStats stats() const;

 private:
  explicit XenExchangeBackend(XenExchangeBackendOptions options);
  Status fix_up(const PoolMemory& memory, const PoolMemoryRequest& request);

  const XenExchangeBackendOptions options_;
  const std::shared_ptr<ExchangedTranslator> translator_;
  mutable std::mutex lock_;
  XenExchangeStats stats_;  // guarded by lock_
};

}  // namespace swiotlb
