// A slot policy decides which free slots a request gets. The pool owns the
// slots, the areas and their locks; a policy only reads them and names an
// index. Two policies reproduce the kernel exactly (same requests, same
// geometry, same CPU -> same slots): `linux` (mainline) and `linux-6.1`.
// The third, `fast` (fast_policy.h), keeps the kernel's rules but not its
// choices, and searches indexes of its own.
//
// A policy object is stateless and shared by all threads. A policy that
// searches with more than the free-run counters keeps that in an AreaState,
// one per area, which the pool creates, owns and guards with the area's
// lock: it tells the state of every run taken and released, and passes it
// to search_area(). The kernel policies keep none, and the pool then skips
// the calls. search_area() and the AreaState hooks run with the area's lock
// held.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "swiotlb/core/constants.h"
#include "swiotlb/core/error.h"
#include "swiotlb/pool/slot_request.h"

namespace swiotlb {

// A request turned into the terms of one search.
struct SearchPlan {
  std::uint64_t orig = 0;               // original address (0: none)
  std::uint64_t search_bytes = 0;       // bytes to find slots for, leading offset included
  std::uint32_t nslots = 0;             // nr_slots(search_bytes)
  std::uint32_t stride = 1;             // slots to step once a candidate is aligned
  std::uint64_t alloc_align_mask = 0;   // alignment of the first slot (at least 2047)
  std::uint64_t iotlb_align_mask = 0;   // address bits a slot must share with orig
  std::uint64_t tbl_dma = 0;            // device address of slot 0, cut by the boundary mask
  std::uint64_t max_slots = 0;          // segment boundary, in slots (a power of two)
  std::uint32_t pad_slots = 0;          // leading slots kept only for alignment
  std::uint32_t tlb_offset = 0;         // byte offset of the data in its first slot
  std::uint64_t slot_alloc_offset = 0;  // offset the per-slot alloc_size is counted from
  std::uint64_t reported_bytes = 0;     // the size the kernel names when the pool is full
};

// The kernel's wrap_area_index(): an index past the area's end goes back to
// 0 (not modulo).
constexpr std::uint32_t wrap_area_index(std::uint64_t index, std::uint32_t nslabs) {
  return index >= nslabs ? 0 : static_cast<std::uint32_t>(index);
}

class AreaState;

// One area as a policy sees it: the counters read-only, the policy's own
// state (which a search may tighten) writable. The caller holds the area
// lock.
struct AreaView {
  const std::uint16_t* list = nullptr;  // free-run counters of the whole pool
  std::uint32_t base = 0;               // first global slot of the area
  std::uint32_t nslabs = 0;             // slots in the area
  std::uint32_t cursor = 0;             // where the last search left off (area-relative)
  AreaState* state = nullptr;           // the policy's own state for the area, if any

  std::uint32_t wrap(std::uint64_t index) const { return wrap_area_index(index, nslabs); }
  // True when nslots slots from global slot `slot` would cross the boundary.
  // The kernel's iommu_is_span_boundary() with the pool's first slot number
  // (in boundary terms) as the shift. Inline: every candidate of every
  // search, and every run taken from a run cache, is tested.
  static bool crosses_boundary(const SearchPlan& plan, std::uint64_t slot) {
    const std::uint64_t shift = nr_slots(plan.tbl_dma);
    const std::uint64_t offset = (shift + slot) & (plan.max_slots - 1);
    return offset + plan.nslots > plan.max_slots;
  }
};

struct AreaSearch {
  enum class Outcome : std::uint8_t { found, not_found, would_spin };
  Outcome outcome = Outcome::not_found;
  std::uint32_t index = 0;  // area-relative start of the run, when found
  std::uint64_t steps = 0;  // candidates looked at: slots (kernel policies), segments (fast)
};

// What a policy keeps about one area beside the free-run counters, kept in
// step with them by the pool. Every call is made with the area's lock held.
class AreaState {
 public:
  virtual ~AreaState() = default;

  // Slots [first, first + nslots) of the area (area-relative, within one
  // segment) were taken or given back. The pool calls these after it has
  // updated the free-run counters.
  virtual void on_take(std::uint32_t first, std::uint32_t nslots) = 0;
  virtual void on_release(std::uint32_t first, std::uint32_t nslots) = 0;

  // Checks the state against the area's free-run counters (the truth) and
  // its own internal consistency; returns the first disagreement.
  virtual Status check(const AreaView& area) const = 0;
};

class SlotPolicy {
 public:
  virtual ~SlotPolicy() = default;

  virtual std::string_view name() const = 0;

  // Turns a request into a plan; fails for requests the kernel refuses
  // outright (linux-6.1: mapping_size > alloc_size). The pool fills
  // tbl_dma and max_slots.
  virtual Result<SearchPlan> plan(const SlotRequest& request) const = 0;

  // Searches one area. REQUIRES: the area's lock is held.
  virtual AreaSearch search_area(const AreaView& area, const SearchPlan& plan) const = 0;

  // The alloc_align_mask a coherent allocation of `bytes` asks for (the
  // kernel's swiotlb_alloc): mainline aligns to the allocation's page order,
  // 6.1 asks for none and relies on the page stride.
  virtual std::uint64_t coherent_align_mask(std::uint64_t bytes) const = 0;

  // The state this policy searches an area of `nslabs` slots with (a whole
  // number of segments, all free), or null when it needs none.
  virtual std::unique_ptr<AreaState> make_area_state(std::uint32_t nslabs) const;

  // True when a pool should keep recently freed runs in per-area magazines
  // and hand them out again without a search (src/pool/run_cache.h). The
  // kernel policies never do: their choice of slots is the kernel's. A
  // policy that does must plan as mainline_plan() (linux_policy.h) does:
  // SlotPool::map_streaming plans a hit with it, without asking the policy.
  virtual bool caches_runs() const { return false; }
};

// The policies by name: "linux" (mainline), "linux-6.1" and "fast".
Result<std::shared_ptr<const SlotPolicy>> make_slot_policy(std::string_view name);

// The names make_slot_policy() accepts.
std::string_view slot_policy_names();

}  // namespace swiotlb
