// The op vocabulary: every request the library's targets take, as plain
// values. A trace reads as ops (trace_ops.h), a fuzzer's bytes decode to
// ops, a test writes them down; apply(op, target) carries one out on a
// SlotPool (pool/apply_op.h), an IoTlb (iotlb/apply_op.h), an IovaDomain
// (iova/apply_op.h) or a Device (dma/apply_op.h). docs/ops.md has the table
// of which target takes which op.
//
// Plain values; no synchronization needed.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>

#include "swiotlb/core/direction.h"
#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"

namespace swiotlb::ops {

// Bounce `size` bytes at `orig` (swiotlb_tbl_map_single). The masks are the
// device's; an IoTlb or SlotPool target serves it from its first pool.
struct Map {
  std::uint64_t orig = 0;
  std::uint64_t size = 0;
  std::uint64_t alloc_size = 0;  // 0: the same as size
  std::uint64_t alloc_align_mask = 0;
  std::uint64_t min_align_mask = 0;
  std::uint64_t seg_boundary_mask = ~std::uint64_t{0};  // all ones: no boundary
  Direction dir = Direction::bidirectional;
  std::uint32_t attrs = 0;  // DMA_ATTR_* bits
  std::uint32_t cpu = 0;
  // The address a recorded kernel gave (kInvalidAddress when it failed the
  // map); nothing when not recorded. Targets ignore it: it is what a
  // replay compares against.
  std::optional<std::uint64_t> recorded_tlb;
  bool operator==(const Map&) const = default;
};

// Give back the mapping at `addr` (the address its map returned), claiming
// the size and direction it was mapped with; a size of 0 claims nothing (a
// trace that did not record it), and the target then checks the address
// alone.
struct Unmap {
  std::uint64_t addr = 0;
  std::uint64_t size = 0;            // 0: not claimed
  std::uint64_t min_align_mask = 0;  // the device's: locates the mapping's first slot
  Direction dir = Direction::bidirectional;
  std::uint32_t attrs = 0;
  bool operator==(const Unmap&) const = default;
};

enum class SyncFor : std::uint8_t { cpu, device };

// Hand [addr, addr + size) of a live mapping to the CPU or to the device.
struct Sync {
  std::uint64_t addr = 0;
  std::uint64_t size = 0;
  Direction dir = Direction::bidirectional;
  SyncFor to = SyncFor::cpu;
  bool operator==(const Sync&) const = default;
};

// Add a pool of `nslabs` slots in `nareas` areas to the pools maps search
// (what a kernel with CONFIG_SWIOTLB_DYNAMIC does when its pools run short).
struct Grow {
  std::uint64_t nslabs = 0;
  std::uint32_t nareas = 1;
  bool operator==(const Grow&) const = default;
};

// Time passes: `ns` nanoseconds. A target with a clock of its own moves it
// and does what falls due (an IoTlb shrinks pools idle long enough).
struct Tick {
  std::uint64_t ns = 0;
  bool operator==(const Tick&) const = default;
};

// IOVA ops, as the kernel's reserve_iova, alloc_iova_fast and
// free_iova_fast take them (pfns and sizes in granules).
struct IovaReserve {
  std::uint64_t pfn_lo = 0;
  std::uint64_t pfn_hi = 0;  // inclusive
  bool operator==(const IovaReserve&) const = default;
};

struct IovaAlloc {
  std::uint32_t cpu = 0;
  std::uint64_t size = 0;
  std::uint64_t limit_pfn = 0;  // inclusive
  bool flush = false;           // flush the caches and retry once on failure
  bool operator==(const IovaAlloc&) const = default;
};

struct IovaFree {
  std::uint32_t cpu = 0;
  std::uint64_t pfn = 0;
  std::uint64_t size = 0;
  bool operator==(const IovaFree&) const = default;
};

using Op = std::variant<Map, Unmap, Sync, Grow, Tick, IovaReserve, IovaAlloc, IovaFree>;

// "map", "unmap", "sync_cpu", "sync_dev", "grow", "tick", "iova_reserve",
// "iova_alloc", "iova_free".
SWIOTLB_API std::string_view op_name(const Op& op);

// What apply() gives: the address a Map got or the start of the pool a Grow
// added (on a Device: the DMA address a Map got), the pfn an IovaAlloc got;
// 0 for the other ops. An error when the target refused the op, changing
// nothing, with the target's own error code and message.
using Applied = Result<std::uint64_t>;

// The error for an op a target does not take (Errc::invalid_argument):
// "<target> takes no <op> op".
SWIOTLB_API Error not_taken(const Op& op, std::string_view target);

// For a target that unmaps only against the size and direction of the map
// (an IoTlb, the DMA API): an error (Errc::invalid_argument) when `unmap`
// claims no size, naming `target`; success otherwise.
SWIOTLB_API Status require_claimed_size(const Unmap& unmap, std::string_view target);

}  // namespace swiotlb::ops
