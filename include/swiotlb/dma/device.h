// A Device: what the DMA API knows of a device that does DMA.
//
// Its masks and limits say which device addresses it can reach; its
// min_align_mask, max_segment_size and segment boundary say what shape its
// mappings must have; `coherent` says whether its view of memory needs cache
// maintenance. A device bounces through the IoTlb it is attached to (the
// kernel's dev->dma_io_tlb_mem), if any.
//
// Addresses: a CPU address becomes a device address through an optional
// frame translator (Xen-like foreign frames) and then the device's dma
// ranges (the kernel's dma_range_map); with neither, a device sees CPU
// memory at the same address. A device reaches a buffer when the whole of
// it translates to one run of device addresses that fits under
// min(dma_mask, bus_dma_limit).
//
// Pools: at creation the device works out which pools of its IoTlb it can
// reach, and in which order it uses them (the high pool first when it
// reaches it; the low pool after it only if the IoTlb lets the high pool
// overflow), so that no map has to work it out again.
//
// Thread safety: all methods may be called from any thread. The
// configuration is fixed at creation; what an ExchangedTranslator or a
// WindowTable in it answers may change while the device runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "swiotlb/core/address.h"
#include "swiotlb/core/direction.h"
#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/dma/dma_debug.h"
#include "swiotlb/dma/dma_range_map.h"
#include "swiotlb/dma/frame_translation.h"
#include "swiotlb/dma/frame_translator.h"
#include "swiotlb/dma/iommu_domain.h"
#include "swiotlb/dma/window_table.h"
#include "swiotlb/iotlb/bounce_route.h"
#include "swiotlb/iotlb/dma_reach.h"

namespace swiotlb {

class IoTlb;

// Cache maintenance the kernel does for a non-coherent device:
// arch_sync_dma_for_device before the device reads, arch_sync_dma_for_cpu
// before the CPU reads what the device wrote. For a device with a frame
// translator the hook is given the machine address (what a cache-flush
// hypercall takes, since a machine address cannot be turned back into the
// guest's own); otherwise the CPU address.
enum class CacheOp : std::uint8_t { for_device, for_cpu };
using CacheHook = std::function<void(CacheOp op, PhysAddr addr, std::uint64_t size, Direction dir)>;

struct DeviceConfig {
  std::string name = "device";
  std::uint64_t dma_mask = ~std::uint64_t{0};
  std::uint64_t coherent_dma_mask = ~std::uint64_t{0};
  std::uint64_t bus_dma_limit = 0;                      // 0: no limit beyond the masks
  std::uint64_t min_align_mask = 0;                     // low address bits a bounce must keep
  std::uint32_t max_segment_size = 65536;               // the kernel's default (64 KiB)
  std::uint64_t seg_boundary_mask = ~std::uint64_t{0};  // of the form 2^n - 1
  bool coherent = true;
  CacheHook cache_hook;    // called only when !coherent
  DmaRangeMap dma_ranges;  // empty: the identity
  // A reach that changes while the device runs (window_table.h): when set,
  // the device reaches exactly these windows, pools added later included,
  // and dma_ranges must be empty. Its owner adds and removes windows.
  std::shared_ptr<const WindowTable> windows;
  // A frame translation before the dma ranges (null: none): a fixed
  // FrameTranslator, or an ExchangedTranslator that pools exchanged while
  // the device runs join (xen_exchange_backend.h).
  std::shared_ptr<const FrameTranslation> translator;
  // With a translator: call the cache hook only for a range that holds a
  // foreign page, as xen-swiotlb issues its cache-flush hypercall only for
  // those; local pages are maintained by the CPU itself (still counted).
  bool cache_hook_foreign_only = false;
  // Behind an IOMMU: mappings get IOVAs from this domain (null: no IOMMU).
  std::shared_ptr<IommuDomain> iommu;
  // An untrusted device (the kernel's external-facing PCI device): behind an
  // IOMMU, a buffer that does not fill whole granules is bounced, so the
  // device never sees other data that shares its pages.
  bool untrusted = false;
  // The DMA debug checks (dma_debug.h): on, off, or the process default.
  DmaDebugMode debug = DmaDebugMode::process_default;
};

// A pool the device can use, and where it sees the pool's first byte.
struct PoolChoice {
  std::uint32_t pool = 0;
  DmaAddr dma_start;
};

struct DeviceStats {
  std::uint64_t debug_errors = 0;   // misuse caught by the checks (see dma_debug.h)
  std::uint64_t map_failures = 0;   // maps refused: full pool, unreachable
  std::uint64_t cache_syncs = 0;    // cache maintenance calls made
  std::uint64_t live_direct = 0;    // direct mappings live now (recorded with checks on)
  std::uint64_t live_coherent = 0;  // coherent buffers in normal memory live now
  std::uint64_t live_bounced = 0;   // bounced mappings and coherent buffers in a pool live now
};

class SWIOTLB_API Device {
 public:
  // Fails for a configuration no kernel would accept: a zero mask, a
  // boundary mask not of the form 2^n - 1, a zero max_segment_size.
  static Result<std::unique_ptr<Device>> create(DeviceConfig config, IoTlb* io_tlb);

  // A device torn down with live mappings logs them; call close() first
  // to get them as an error instead.
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // Checks that no mapping or coherent buffer of this device is live:
  // Errc::busy naming how many, counted as a debug error, otherwise ok.
  Status close();

  const DeviceConfig& config() const { return config_; }
  const std::string& name() const { return config_.name; }
  std::uint32_t id() const { return id_; }
  IoTlb* io_tlb() const { return io_tlb_; }

  // The device address of [addr, addr + size), or kInvalidAddress when the
  // device cannot see the whole range as one run.
  DmaAddr phys_to_dma(PhysAddr addr, std::uint64_t size = 1) const;
  // The CPU address of a device address, or kInvalidAddress.
  PhysAddr dma_to_phys(DmaAddr addr, std::uint64_t size = 1) const;

  // The highest address the device can reach for streaming mappings:
  // min_not_zero(dma_mask, bus_dma_limit).
  std::uint64_t dma_limit() const;
  // The same for coherent allocations (coherent_dma_mask).
  std::uint64_t coherent_limit() const;
  // The kernel's dma_capable(): the whole of [addr, addr + size) is reachable.
  bool dma_capable(DmaAddr addr, std::uint64_t size) const;

  // The pools this device bounces through, in the order it tries them, for
  // streaming mappings and for coherent allocations. Empty when it has no
  // IoTlb or reaches none of its pools.
  const std::vector<PoolChoice>& streaming_pools() const { return streaming_pools_; }
  const std::vector<PoolChoice>& coherent_pools() const { return coherent_pools_; }
  // How the device sees pools that came later (grown, transient), for
  // streaming mappings and for coherent allocations.
  const DmaReach* streaming_reach() const { return &streaming_reach_; }
  const DmaReach* coherent_reach() const { return &coherent_reach_; }

  // Whether every streaming mapping of this device bounces through one
  // configured pool that it sees whole, at the CPU's own addresses: its
  // IoTlb forces bouncing, it has one streaming pool, and no IOMMU, frame
  // translator, window table or dma ranges. map_page and unmap_page then
  // take the pool's run cache first, through the device's route
  // (streaming_route(), IoTlb::map_streaming), without working out, per
  // call, what creation has already settled: the pool, where the device
  // sees it, its masks, and that it reaches every bounce address in the
  // pool. Fixed at creation.
  bool bounces_through_one_pool() const { return one_pool_; }
  // Whether that one pool holds `addr` (false for a device that does not
  // bounce through one pool). Reads only the device: an unmap asks this
  // first, and the pool's own fields are further away.
  bool one_pool_holds(PhysAddr addr) const {
    return addr >= one_pool_start_ && addr < one_pool_end_;
  }
  // The route of this device's streaming maps through that one pool
  // (IoTlb::streaming_route) when its run cache may serve them, for
  // IoTlb::map_streaming; null otherwise. Fixed at creation.
  const BounceRoute* streaming_route() const { return has_route_ ? &route_ : nullptr; }

  // The kernel's dma_supported() for a device that bounces: some pool it
  // would use lies wholly below `mask` as the device sees it.
  bool dma_supported(std::uint64_t mask) const;

  DmaDebug& debug() { return debug_; }
  DeviceStats stats() const;

  // The kernel's dev->dma_uses_io_tlb: whether the device has ever bounced
  // or taken coherent memory from its IoTlb. Until it has, unmap and sync
  // know every address of its to be a direct mapping and skip the pool
  // lookup. Set before the first bounce address is handed out; a thread
  // that is given that address (ordered by the caller) sees it set.
  bool uses_io_tlb() const { return uses_io_tlb_.load(std::memory_order_relaxed); }
  void mark_uses_io_tlb() {
    if (!uses_io_tlb_.load(std::memory_order_relaxed)) {
      uses_io_tlb_.store(true, std::memory_order_relaxed);
    }
  }

  // Used by the DMA API: count a refused map, run the cache hook.
  void count_map_failure() { map_failures_.fetch_add(1, std::memory_order_relaxed); }
  void cache_sync(CacheOp op, PhysAddr addr, std::uint64_t size, Direction dir);

 private:
  // A pool is usable when the device sees all of it as one run below `limit`.
  class Reach final : public DmaReach {
   public:
    Reach(const Device& device, std::uint64_t limit) : device_(device), limit_(limit) {}
    std::optional<DmaAddr> pool_dma_start(PhysAddr start, std::uint64_t bytes) const override;

   private:
    const Device& device_;
    const std::uint64_t limit_;
  };

  Device(DeviceConfig config, IoTlb* io_tlb, std::uint32_t id);
  std::uint64_t live_bounced() const;
  std::vector<PoolChoice> choose_pools(std::uint64_t limit) const;
  bool sees_one_pool_directly() const;

  const DeviceConfig config_;
  IoTlb* const io_tlb_;
  const std::uint32_t id_;
  std::vector<PoolChoice> streaming_pools_;  // fixed after creation
  std::vector<PoolChoice> coherent_pools_;   // fixed after creation
  const Reach streaming_reach_;
  const Reach coherent_reach_;
  // bounces_through_one_pool(), and that pool's extent (empty when not);
  // fixed after creation.
  bool one_pool_ = false;
  PhysAddr one_pool_start_;
  PhysAddr one_pool_end_;
  bool has_route_ = false;  // streaming_route(); fixed after creation
  BounceRoute route_;
  DmaDebug debug_;
  std::atomic<std::uint64_t> map_failures_{0};
  std::atomic<std::uint64_t> cache_syncs_{0};
  std::atomic<bool> uses_io_tlb_{false};
};

}  // namespace swiotlb
