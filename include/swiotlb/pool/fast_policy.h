// The `fast` slot policy: the kernel's rules, a search that stays short.
//
// What it keeps. The same requests as `linux` become the same plans
// (LinuxPolicy::plan: the mainline bytes, pad slots, page alignment of
// page-sized streaming maps, kept min_align_mask bits, alloc_align_mask),
// and a run is acceptable under exactly the kernel's tests: alignment and
// kept bits on the candidate's device address, no crossing of a 128-slot
// segment, no crossing of the device's segment boundary. Only the choice
// among acceptable runs differs, and how it is found.
//
// Structure, per area (an AreaState the pool keeps in step under the area
// lock, beside the kernel's free-run counters, which it still maintains):
//  - per segment, a 128-bit map of its free slots and a bound on its
//    longest free run (never below it; a flag says when it is exact);
//  - 14 size classes (runs of at least 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48,
//    64, 96, 128 slots), each a set of segments whose bound reaches it: a
//    64-ary tree of bitmaps that finds the next member in O(log64 segments)
//    word operations (two levels for a default pool's area).
//
// Search, in the area the pool hands it:
//  1. Turn the plan into masks of the starts it allows inside a segment
//     (alignment and kept bits: one rotated 128-bit pattern for the low 7
//     bits of the slot number plus two tests of the bits above; boundary:
//     one pattern, or one range when the boundary is 128 slots or more).
//  2. Take the class of the largest limit <= nslots, and walk its segments
//     in address order.
//  3. Skip a segment whose bound is below nslots; otherwise compute the
//     starts of free runs of nslots slots in its map (about 2 log2 nslots
//     shift-ANDs), AND them with the allowed starts, and take the lowest:
//     address-ordered first fit.
//  4. Make the bound of a segment passed over exact (binary lifting over
//     runs of 1, 2, 4 ... 128: about 40 shift-ANDs), which may move it down
//     the classes, so later searches stop visiting it.
// Taking slots clears their bits and, if the run cut was as long as the
// bound, marks the bound inexact (taking only shortens runs, so it still
// holds). Releasing sets them and, if the merged run reaches the bound,
// makes it exact and raises it. Both are a few word operations; a map and
// unmap of the same run usually leave the classes as they were.
//
// Cost. A search costs O(log64 segments) to reach a candidate plus O(log
// nslots) per segment looked at. A segment in the class is passed over only
// when its bound is below nslots (at most 1.5x short), when its bound is
// stale (once), or when its long enough runs all start where the alignment
// or boundary forbid. Full segments are never looked at. Worst case, every
// segment of the class is looked at once: 256 for a default area, where
// the kernel's search may look at every one of its 32768 slots.
//
// Correctness. A run never crosses a segment, so an area has a run the
// rules allow iff some segment does. A segment with such a run has a
// longest run, hence a bound, >= nslots, so it is in the class searched
// (its limit is <= nslots); the class sets are exact functions of the
// bounds (SlotPool::check_invariants checks maps, bounds and classes
// against the free-run counters), every member is visited in order until
// one answers, and for each the masks name every start at which nslots
// free slots follow and which the kernel's three tests accept. So the
// search fails only when no acceptable run exists in the area: no false
// "full" (tests/pool check it against a brute-force oracle).
//
// Threads. The pool's locking is unchanged: one lock per area, a request
// starts in the area of its CPU and moves on to the next. Each area's index
// is touched only under that area's lock and lives in cache lines of its
// own; with the pool's per-area statistics, threads working in different
// areas write no shared cache line. First fit keeps each thread's mappings
// low in its area, in the same few segments, which stay in its core's
// cache.
//
// Magazines. A pool under this policy keeps, per area, magazines of
// recently freed runs of up to 32 slots (src/pool/run_cache.h): a map of
// n slots first takes the run of n slots its area's threads freed last, if
// it satisfies the request's alignment, kept bits and boundary, without
// the area lock or a search; an unmap puts the run back. A run parked there
// is hidden from the search, so a search that fails in an area first gives
// that area's cached runs back and searches again: a request fails only
// when the area has no acceptable run even with every cached run free.
// FastPolicy(false) is the same policy without magazines (for comparisons).
//
// The policy object is stateless and shared by all threads; its per-area
// state is made by make_area_state() and owned by the pool.
#pragma once

#include "swiotlb/pool/linux_policy.h"
#include "swiotlb/pool/slot_policy.h"

namespace swiotlb {

class FastPolicy final : public SlotPolicy {
 public:
  explicit FastPolicy(bool magazines = true) : magazines_(magazines) {}
  std::string_view name() const override { return "fast"; }
  // The mainline kernel's plan for the request.
  Result<SearchPlan> plan(const SlotRequest& request) const override {
    return mainline_.plan(request);
  }
  // REQUIRES: area.state came from this policy's make_area_state().
  AreaSearch search_area(const AreaView& area, const SearchPlan& plan) const override;
  std::uint64_t coherent_align_mask(std::uint64_t bytes) const override {
    return mainline_.coherent_align_mask(bytes);
  }
  std::unique_ptr<AreaState> make_area_state(std::uint32_t nslabs) const override;
  bool caches_runs() const override { return magazines_; }

 private:
  LinuxPolicy mainline_;
  bool magazines_;
};

}  // namespace swiotlb
