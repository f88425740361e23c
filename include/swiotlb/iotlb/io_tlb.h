// IoTlb: a software IO TLB. One or more SlotPools, each over a Region of
// memory, with the bounce copies between original buffers and bounce slots,
// the kernel's warnings and its statistics.
//
// This is the kernel's io_tlb_mem. Devices hold a pointer to the IoTlb they
// bounce through (the kernel's dev->dma_io_tlb_mem); the DMA API in dma/
// decides when to bounce and which pool a device can use.
//
// Pools: pool 0 is the default pool, placed low (below 4 GiB where the
// system allows) so that 32-bit devices reach it. An optional high pool
// (pool 1) serves devices that reach it, so that the low pool stays free for
// those that cannot. A restricted IoTlb (the kernel's restricted-dma-pool)
// belongs to the devices bound to it: all their mappings bounce there and
// their coherent memory comes from it.
//
// Copy rules (as the kernel's swiotlb_tbl_map_single and friends):
//  - map always fills the bounce buffer from the original, whatever the
//    direction, so a device that writes only part of a from_device buffer
//    leaves the rest as it was;
//  - unmap copies back for from_device and bidirectional unless
//    skip_cpu_sync;
//  - sync_for_cpu copies back (from_device, bidirectional);
//    sync_for_device copies in (to_device, bidirectional); both accept a
//    range inside the mapping.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "swiotlb/core/config.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/core/direction.h"
#include "swiotlb/core/error.h"
#include "swiotlb/core/log.h"
#include "swiotlb/platform/region.h"
#include "swiotlb/platform/region_spec.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {

struct IoTlbOptions {
  std::uint64_t nslabs = kDefaultSlotCount;  // a multiple of 128
  std::uint32_t nareas = 1;                  // a power of two
  bool force_bounce = false;                 // bounce every streaming mapping
  std::string policy = "fast";               // a name make_slot_policy() knows
  RegionPlacement placement = RegionPlacement::low;

  // The high pool: 0 slots for none. Placed anywhere.
  std::uint64_t high_nslabs = 0;
  std::uint32_t high_nareas = 1;
  // Whether a device that prefers the high pool may fall back to the low
  // one when the high pool is full (off: the low pool is kept for devices
  // that can reach nothing else).
  bool high_overflows_to_low = false;

  // A restricted pool: force_bounce is implied.
  bool restricted = false;

  // Where the default pool lives, when not in anonymous memory placed by
  // `placement`: a memfd, a file, a fixed address (platform/region_spec.h).
  // Its `bytes` is set from nslabs.
  std::optional<RegionSpec> region;

  // The options a parsed `swiotlb=` gives (noforce is refused: it means no
  // pool at all; addr= places the default pool at that address).
  static Result<IoTlbOptions> from_config(const SwiotlbConfig& config);
};

struct PoolInfo {
  std::string_view name;  // "low" for the default pool, "high"
  PhysAddr start;
  PhysAddr end;
};

// A live bounce mapping and the pool that holds it.
struct BounceMapping {
  MappingInfo info;
  std::uint32_t pool = 0;
};

// What the caller asks of a bounce mapping, beyond the slot request.
struct BounceRequest {
  std::uint32_t pool = 0;  // which pool (see pool_count())
  PhysAddr orig;
  std::uint64_t size = 0;
  std::uint64_t alloc_align_mask = 0;
  std::uint64_t min_align_mask = 0;
  std::uint64_t seg_boundary_mask = ~std::uint64_t{0};
  DmaAddr pool_dma_start;  // where the device sees that pool
  Direction dir = Direction::bidirectional;
  Attrs attrs;
  std::uint32_t owner = 0;
  std::string_view owner_name;  // for messages
};

struct IoTlbStats {
  std::vector<PoolStats> pools;            // by pool index
  std::uint64_t coherent_allocations = 0;  // live alloc_coherent buffers
};

class IoTlb {
 public:
  static Result<std::unique_ptr<IoTlb>> create(const IoTlbOptions& options);
  ~IoTlb();
  IoTlb(const IoTlb&) = delete;
  IoTlb& operator=(const IoTlb&) = delete;

  // Reserves slots in request.pool and fills them from the original buffer.
  // On a full pool the kernel's "swiotlb buffer is full" warning is logged
  // (rate-limited, unless attrs has no_warn) and Errc::pool_full returned.
  Result<PhysAddr> map(const BounceRequest& request);

  // Copies back as the direction asks (unless skip_cpu_sync) and frees the
  // slots. The claim (size, direction, owner) must match the map; otherwise
  // nothing happens and Errc::mapping_mismatch is returned.
  Status unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask, const MappingClaim& claim,
               Attrs attrs);

  // unmap in two steps, for callers that act between the check and the
  // copy (cache maintenance on a non-coherent device): begin_unmap checks
  // the claim and marks the mapping as going; finish_unmap copies back and
  // frees. REQUIRES for finish_unmap: `mapping` from begin_unmap, once.
  Result<BounceMapping> begin_unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask,
                                    const MappingClaim& claim);
  void finish_unmap(const BounceMapping& mapping, Attrs attrs);

  // Syncs [addr, addr + size), which must lie inside one live mapping of
  // `owner` mapped with `dir`.
  Status sync_for_cpu(PhysAddr addr, std::uint64_t size, Direction dir, std::uint32_t owner);
  Status sync_for_device(PhysAddr addr, std::uint64_t size, Direction dir, std::uint32_t owner);

  // The two steps of a sync: the check, then the copy the direction asks for.
  Result<BounceMapping> find_for_sync(PhysAddr addr, std::uint64_t size, Direction dir,
                                      std::uint32_t owner) const;
  void copy_for_cpu(const BounceMapping& mapping, PhysAddr addr, std::uint64_t size);
  void copy_for_device(const BounceMapping& mapping, PhysAddr addr, std::uint64_t size);

  // A zeroed allocation of `size` bytes from pool `pool` (the kernel's
  // swiotlb_alloc), and its release.
  Result<PhysAddr> alloc(std::uint32_t pool, std::uint64_t size, DmaAddr pool_dma_start,
                         std::uint32_t owner);
  Status free(PhysAddr addr, std::uint64_t size, std::uint32_t owner);

  // The kernel's is_swiotlb_buffer().
  bool contains(PhysAddr addr) const { return pool_of(addr) >= 0; }
  // The pool that holds `addr`, or -1.
  int pool_of(PhysAddr addr) const;
  bool force_bounce() const { return force_bounce_; }
  bool restricted() const { return restricted_; }
  bool high_overflows_to_low() const { return high_overflows_to_low_; }

  std::uint32_t pool_count() const { return static_cast<std::uint32_t>(pools_.size()); }
  PoolInfo pool_info(std::uint32_t pool) const;
  // The default pool's region (its file descriptor, for sharing a memfd).
  const Region& region() const { return *pools_[0].region; }
  // The default (low) pool's extent.
  PhysAddr start() const { return pools_[0].slots->start(); }
  PhysAddr end() const { return pools_[0].slots->end(); }
  SlotPool& pool(std::uint32_t index = 0) { return *pools_[index].slots; }
  const SlotPool& pool(std::uint32_t index = 0) const { return *pools_[index].slots; }

  // CPU pointer to bounce address `addr`. REQUIRES: contains(addr).
  std::byte* bounce_pointer(PhysAddr addr) const;

  IoTlbStats stats() const;
  // The kernel's debugfs files, one "name: value" line each; the high
  // pool's names end in "_high".
  std::string debugfs_text() const;
  nlohmann::json to_json() const;
  // The kernel's boot line: "software IO TLB: mapped [mem 0x...-0x...] (64MB)",
  // whose second address is the pool's end (one past its last byte); one
  // line per pool.
  std::string boot_line() const;

 private:
  struct Pool {
    std::string name;
    std::unique_ptr<Region> region;
    std::unique_ptr<SlotPool> slots;
  };

  IoTlb(std::vector<Pool> pools, const IoTlbOptions& options);
  static Result<Pool> make_pool(std::string name, std::uint64_t nslabs, std::uint32_t nareas,
                                RegionSpec spec, const std::shared_ptr<const SlotPolicy>& policy);

  // bounce_pointer() for a caller that already knows the pool.
  std::byte* bounce_pointer_in(std::uint32_t pool, PhysAddr addr) const;
  void copy_to_bounce(const BounceMapping& mapping, PhysAddr addr, std::uint64_t size);
  void copy_from_bounce(const BounceMapping& mapping, PhysAddr addr, std::uint64_t size);
  [[gnu::cold]] void warn_full(const BounceRequest& request, const Error& error);

  std::vector<Pool> pools_;  // fixed after creation
  const bool force_bounce_;
  const bool restricted_;
  const bool high_overflows_to_low_;
  RateLimit full_warnings_;
  std::atomic<std::uint64_t> coherent_allocations_{0};
};

}  // namespace swiotlb
