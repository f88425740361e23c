// A swiotlb trace in memory: what a kernel's pool saw, event by event.
//
// A Trace is the parsed form of a trace v1 file (docs/trace-format.md): the
// header (kernel release, the pool's geometry, the devices) and the events in
// file order. It carries no interpretation: replay (replay.h) and sizing
// (sizing.h) decide what the events mean for a pool.
//
// Events are small fixed-size records so that a trace of millions of events
// is one contiguous array; device ids are interned to indices into
// Trace::devices. Fields a trace left unrecorded (`-` in the file) are marked
// in TraceEvent::recorded and hold the default documented beside them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "swiotlb/core/direction.h"
#include "swiotlb/core/export.h"

namespace swiotlb::ops {

enum class TraceOp : std::uint8_t {
  map,       // swiotlb_tbl_map_single
  unmap,     // swiotlb_tbl_unmap_single
  sync_cpu,  // swiotlb_sync_single_for_cpu
  sync_dev,  // swiotlb_sync_single_for_device
};

SWIOTLB_API std::string_view to_string(TraceOp op);

// Bits of TraceEvent::recorded: set when the file gave the field a value.
namespace recorded {
inline constexpr std::uint8_t kTime = 1u << 0;
inline constexpr std::uint8_t kCpu = 1u << 1;
inline constexpr std::uint8_t kAllocSize = 1u << 2;
inline constexpr std::uint8_t kTlb = 1u << 3;   // map only: the kernel's answer
inline constexpr std::uint8_t kSize = 1u << 4;  // unmap only: its mapping_size
}  // namespace recorded

// One event. Which fields an op uses:
//   map:      orig, size (mapping_size), alloc_size, alloc_align_mask, dir,
//             attrs, tlb (the kernel's bounce address, kInvalidAddress when
//             the kernel failed the map)
//   unmap:    tlb (the address being unmapped), size (mapping_size), dir, attrs
//   sync_*:   tlb, size, dir
struct TraceEvent {
  std::uint64_t t_ns = 0;  // 0 when not recorded
  std::uint64_t orig = 0;
  std::uint64_t size = 0;
  std::uint64_t alloc_size = 0;        // 0 when not recorded: same as size
  std::uint64_t alloc_align_mask = 0;  // 0 when not recorded
  std::uint64_t tlb = 0;
  std::uint32_t line = 0;    // 1-based line number in the file
  std::uint32_t cpu = 0;     // 0 when not recorded
  std::uint32_t attrs = 0;   // DMA_ATTR_* bits; 0 when not recorded
  std::uint16_t device = 0;  // index into Trace::devices
  TraceOp op = TraceOp::map;
  Direction dir = Direction::bidirectional;
  std::uint8_t recorded = 0;  // recorded::k* bits

  bool has(std::uint8_t bit) const { return (recorded & bit) != 0; }
};

// A `# device` line: what replay needs to know about a device.
struct TraceDevice {
  std::string id;  // as events name it
  std::uint64_t min_align_mask = 0;
  std::uint64_t seg_boundary_mask = ~std::uint64_t{0};  // all ones: no boundary
  std::optional<std::uint64_t> dma_mask;
  std::string name;  // free text (a driver name), may be empty
  std::uint32_t line = 0;
};

// The `# pool` line: the geometry of the pool the kernel used.
struct TracePool {
  std::string name;
  std::uint64_t start = 0;
  std::uint64_t nslabs = 0;
  std::uint32_t nareas = 1;
  std::uint32_t line = 0;
};

// A `# state` line: the kernel's pool as a capture read it, just before the
// event on the next line (docs/trace-format.md, "Pool state"). A line with
// `area` describes that area of the pool; one without, the whole pool. Each
// value is absent when the line did not give it.
struct TraceState {
  std::uint32_t line = 0;
  std::optional<std::uint32_t> area;
  std::optional<std::uint64_t> index;         // the area's next search start, from its first slot
  std::optional<std::uint64_t> used;          // slots in use in the area
  std::optional<std::uint64_t> total_used;    // slots in use in the pool
  std::optional<std::uint64_t> used_hiwater;  // the most the pool had in use at once
};

// A pool that came or went on a kernel whose pools grow
// (CONFIG_SWIOTLB_DYNAMIC): a `pool_add` or `pool_del` line
// (docs/trace-format.md, "Pool events"). It happened after the events
// before it in the file and before those after it.
enum class TracePoolOp : std::uint8_t { add, del };
enum class TracePoolKind : std::uint8_t {
  grown,      // added by the kernel's worker to the pools every map searches
  transient,  // made for the one map on the next event line, deleted at its unmap
};

SWIOTLB_API std::string_view to_string(TracePoolOp op);
SWIOTLB_API std::string_view to_string(TracePoolKind kind);

struct TracePoolEvent {
  TracePoolOp op = TracePoolOp::add;
  std::string name;  // as pool_del names it again
  std::uint64_t t_ns = 0;
  std::optional<std::uint32_t> cpu;  // absent when `-`
  // pool_add only.
  TracePoolKind kind = TracePoolKind::grown;
  std::uint64_t start = 0;
  std::uint64_t nslabs = 0;
  std::uint32_t nareas = 1;
  // How many events (map, unmap, sync lines) the file holds before it.
  std::uint64_t before_event = 0;
  std::uint32_t line = 0;
};

// A `#` line the parser does not know, kept as written (without the `#`).
struct TraceComment {
  std::uint32_t line = 0;
  std::string text;
};

// A line skipped by --skip-bad, with the error it would have been.
struct BadLine {
  std::uint32_t line = 0;
  std::string message;
};

struct SWIOTLB_API Trace {
  std::string kernel;  // the `# kernel` release string; empty when absent
  std::optional<TracePool> pool;
  std::vector<TraceDevice> devices;
  std::vector<TraceComment> comments;
  std::vector<TraceState> states;           // in file order
  std::vector<TracePoolEvent> pool_events;  // in file order
  std::vector<TraceEvent> events;

  // Lines that did not parse, when the parse was asked to skip them: all are
  // counted, the first few are kept with their messages.
  std::uint64_t bad_line_count = 0;
  std::vector<BadLine> bad_lines;

  // The device with id `id`, or nullopt.
  std::optional<std::uint16_t> find_device(std::string_view id) const;
  // True when any map carries the kernel's bounce address.
  bool has_kernel_addresses() const;
  // True when the `# kernel` release is a 6.1 kernel ("6.1", "6.1.x...").
  bool kernel_is_6_1() const;
};

// The slot policy a trace was most likely recorded under: "linux-6.1" for a
// 6.1 kernel, else "linux".
SWIOTLB_API std::string_view default_policy_for(const Trace& trace);

}  // namespace swiotlb::ops
