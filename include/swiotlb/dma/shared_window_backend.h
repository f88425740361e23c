// SharedWindowBackend: an IoTlb backend whose pools a device process sees
// (docs/shared-window.md).
//
// It wraps the real backend over a memfd window (make_region_backend with
// RegionKind::memfd), so every pool, configured, grown or transient, is a
// memfd of its own. announce() hands a pool's memfd to the device process
// over the host's WindowChannel (the hello for the first pool, an add
// window message for each later one) and waits for its acknowledgement,
// then adds the pool to the host's WindowTable at the DMA address it gave
// the device process, so that the pool is reachable before any mapping in
// it is handed out. release() takes the window out of the table, tells the
// device process to unmap it (window 0, the hello's, stays until goodbye;
// after WindowChannel::close() nobody is told, since the device process
// exits with all its mappings), and gives the memory back. The device
// process thus maps the windows and nothing else of the host.
//
// The host's Device for the device process takes the table as its whole
// reach: DeviceConfig{.windows = backend->windows()}. DMA addresses: the
// first window at `dma_base`, each later one at the next page past the
// ones before it; never reused, so that a stale address never names a
// newer window.
//
// Errors are values, and no call waits longer than the channel's timeout:
// announce() fails for a pool not in a memfd (a high pool, anonymous
// memory), a full table, a device process that refuses the window, is gone
// or does not answer in time; the IoTlb then drops the pool (for a grown
// pool it tries a smaller one, for a map it is a refusal). release() never
// fails: a device process that cannot be told is logged, and its mapping
// goes when it does.
//
// Ownership: the IoTlb shares the backend (IoTlbOptions::backend); the
// backend shares the inner backend, the channel and the table.
// Thread safety: every method may be called from any thread (the IoTlb's
// worker announces grown pools, callers' threads announce transient ones).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/dma/window_table.h"
#include "swiotlb/iotlb/backend.h"
#include "swiotlb/platform/shared_window.h"

namespace swiotlb {

struct SharedWindowBackendOptions {
  // The real backend over a memfd window. Required.
  std::shared_ptr<IoTlbBackend> inner;
  // The host's end of the socket to the device process. Required.
  std::shared_ptr<window::WindowChannel> channel;
  // Where the device process sees the first window.
  std::uint64_t dma_base = window::kDmaBase;
  // Windows at once (configured, grown and transient pools together).
  std::uint32_t max_windows = 256;
};

struct SharedWindowStats {
  std::uint64_t announced = 0;  // windows the device process acknowledged
  std::uint64_t released = 0;   // windows taken back (release() done)
  std::uint64_t refused = 0;    // announcements that failed
  std::uint64_t live = 0;       // windows announced and not yet taken back
};

class SWIOTLB_API SharedWindowBackend final : public WrappingBackend {
 public:
  // Errors: invalid_argument (no inner backend or channel, a DMA base that
  // is not page-aligned, max_windows 0).
  static Result<std::shared_ptr<SharedWindowBackend>> create(SharedWindowBackendOptions options);

  Status announce(const PoolMemory& memory, const PoolMemoryRequest& request) override;
  void release(PoolMemory memory) noexcept override;

  // The host's view of the windows, for the Device's config.
  std::shared_ptr<const WindowTable> windows() const { return table_; }
  SharedWindowStats stats() const;

 private:
  explicit SharedWindowBackend(SharedWindowBackendOptions options);
  Status publish(const PoolMemory& memory, const PoolMemoryRequest& request);

  const SharedWindowBackendOptions options_;
  const std::shared_ptr<WindowTable> table_;
  mutable std::mutex lock_;
  std::uint64_t next_dma_;                         // guarded by lock_
  std::uint32_t next_number_ = 0;                  // guarded by lock_
  std::map<std::uint64_t, std::uint32_t> number_;  // pool start -> window; lock_
  SharedWindowStats stats_;                        // guarded by lock_
};

}  // namespace swiotlb
