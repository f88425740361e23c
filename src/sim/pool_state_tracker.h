// PoolStateTracker: what a replay knows of the kernel pool's state when the
// trace does not start from an empty pool (replay.h, PoolStateReport).
// Private to the sim layer.
//
// It presets the replay's pool before the first event (mappings made before
// the capture, occupied where the kernel had them) and then, as the replay
// passes each `# state` line, sets an area's cursor the first time the
// area is named and checks every later value against the pool. known()
// says whether the next map can be compared with the kernel's.
//
// Not thread-safe: it belongs to one replay.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "swiotlb/pool/slot_pool.h"
#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/trace.h"

namespace swiotlb::sim {

// A mapping the kernel made before the trace's first event, seen only by
// its unmap: the kernel's bounce address, its mapping size, its device.
struct EarlierMapping {
  std::uint64_t tlb = 0;
  std::uint64_t size = 0;
  std::uint16_t device = 0;
  std::uint32_t line = 0;  // of the unmap
  // The device's masks (from its `# device` line), as replay uses them.
  std::uint64_t min_align_mask = 0;
  std::uint64_t seg_boundary_mask = ~std::uint64_t{0};
};

class PoolStateTracker {
 public:
  // `states` in line order. A trace without them is taken to start from
  // an empty pool, every area's cursor at 0.
  PoolStateTracker(SlotPool& pool, std::vector<TraceState> states);

  // Occupies the slots of `mapping` (device masks as replay uses them);
  // false when they cannot be (counted in the report).
  bool occupy(const EarlierMapping& mapping, const SlotRequest& request);

  // Applies the `# state` lines that come before line `line`.
  void advance_to(std::uint32_t line) {
    if (next_ < states_.size() && states_[next_].line < line) {
      apply_until(line);
    }
  }

  bool known() const { return known_; }
  // A map at `line` was compared (the first one sets known_from_line).
  void compared_at(std::uint32_t line) {
    if (!report_.known_from_line) {
      report_.known_from_line = line;
    }
  }

  // The report, with the reason maps were left out. REQUIRES: called once.
  PoolStateReport finish(std::uint64_t left_out);

 private:
  void apply_until(std::uint32_t line);
  void apply(const TraceState& state);
  void check(bool same, std::uint32_t line);
  void update_known();

  SlotPool& pool_;
  std::vector<TraceState> states_;
  std::size_t next_ = 0;
  std::vector<bool> cursor_known_;  // per area
  std::vector<bool> area_used_ok_;  // per area: the last recorded used matched
  bool pool_used_ok_ = true;        // the last recorded total_used matched
  std::uint32_t pool_used_line_ = 0;
  std::uint64_t pool_used_recorded_ = 0;
  std::uint64_t pool_used_here_ = 0;
  bool known_;
  PoolStateReport report_;
};

}  // namespace swiotlb::sim
