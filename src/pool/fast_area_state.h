// FastAreaState: the `fast` slot policy's index of one area (private to the
// pool layer; the design is written up in include/swiotlb/pool/fast_policy.h
// and docs/slot-search.md).
//
// Per segment of the area: a 128-bit map of its free slots and a bound on
// its longest free run, never below it and often equal (a flag says when it
// is known to be). Per size class k (runs of at least kClassMin[k] slots):
// the set of segments whose bound reaches it. A search takes the class of
// its run length, walks that set in address order and asks each segment,
// in a few word operations, for a free run that starts where the alignment
// and boundary rules allow; a segment that has none gets its bound made
// exact, which may move it down the classes.
//
// Why a bound: taking slots can only shorten runs, so the bound stays true
// without being recomputed, and a map costs a few word operations. Only a
// search that meets the segment again pays for the exact length, once.
//
// Synchronization: none of its own. The pool calls every method with the
// lock of the area this state belongs to held.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "cache_line_array.h"
#include "segment_bits.h"
#include "segment_set.h"
#include "swiotlb/pool/slot_policy.h"

namespace swiotlb::fast {

// Size classes: a segment is in class k when its longest free run is at
// least kClassMin[k] slots. Steps of at most 1.5x keep the segments a search
// has to pass over (longest run in [kClassMin[k], nslots)) few, and a change
// of a segment's longest run crosses few class limits.
inline constexpr std::array<std::uint8_t, 14> kClassMin{1,  2,  3,  4,  6,  8,  12,
                                                        16, 24, 32, 48, 64, 96, 128};

class alignas(kCacheLine) FastAreaState final : public AreaState {
 public:
  explicit FastAreaState(std::uint32_t nslabs);

  void on_take(std::uint32_t first, std::uint32_t nslots) override;
  void on_release(std::uint32_t first, std::uint32_t nslots) override;
  Status check(const AreaView& area) const override;

  // The first segment, in address order, with a free run the plan may use,
  // and the lowest such run in it. `steps` counts the segments looked at.
  // Tightens the bounds of the segments it passes over.
  AreaSearch search(const AreaView& area, const SearchPlan& plan);

 private:
  void set_longest(std::uint32_t segment, unsigned longest);
  void tighten(std::uint32_t segment);
  Status check_segment(const AreaView& area, std::uint32_t segment) const;

  std::uint32_t segment_count_;
  CacheLineArray<SegmentBits> free_;      // per segment: bit p set = slot p free
  CacheLineArray<std::uint8_t> longest_;  // per segment: >= its longest free run
  CacheLineArray<std::uint8_t> exact_;    // per segment: 1 when longest_ is exact
  std::array<SegmentSet, kClassMin.size()> classes_;
};

}  // namespace swiotlb::fast
