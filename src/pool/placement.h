// Placement: the slots of a segment at which a plan's run may start, as a
// mask (private to the pool layer, used by the `fast` slot policy).
//
// The kernel tests each candidate slot s one at a time (LinuxPolicy):
//   a = tbl_dma + s * 2048
//   (a & alloc_align_mask) == 0                       alignment
//   orig == 0 || (a & iotlb_align_mask) == (orig & iotlb_align_mask)
//                                                     kept min_align_mask bits
//   !AreaView::crosses_boundary(plan, s)              segment boundary
// Placement answers the same three questions for all 128 slots of a segment
// at once. Both address tests are one test, ((T + s) & m) == v, with
// T = tbl_dma >> 11 and m, v the masks above shifted down by 11 (their low
// 11 bits depend on tbl_dma alone). Since a segment's first slot is a
// multiple of 128, the low 7 bits of T + s run through a fixed rotation of
// 0..127 in every segment: the test on them is one 128-bit pattern per plan.
// The bits above change at most once inside a segment (where T + s crosses a
// multiple of 128), so they are tested twice per segment, not 128 times. The
// boundary is a multiple of slots (a power of two): below 128 its pattern is
// the same in every segment; from 128 up it falls at most once in a segment.
//
// A value type, built once per search and read only.
#pragma once

#include <cstdint>

#include "segment_bits.h"
#include "swiotlb/pool/slot_policy.h"

namespace swiotlb::fast {

class Placement {
 public:
  explicit Placement(const SearchPlan& plan);

  // True when no slot of any segment can start the run (the masks
  // contradict each other, or the run is longer than a boundary allows).
  bool impossible() const { return impossible_; }

  // The starts the plan allows in the segment whose first slot (global
  // index) is `segment_slot`. REQUIRES: segment_slot % 128 == 0.
  SegmentBits allowed(std::uint64_t segment_slot) const {
    return address_bits(segment_slot) & boundary_bits(segment_slot);
  }

 private:
  SegmentBits address_bits(std::uint64_t segment_slot) const {
    if (high_mask_ == 0) {
      return low_pattern_;
    }
    return low_pattern_ & high_bits(segment_slot);
  }
  SegmentBits boundary_bits(std::uint64_t segment_slot) const {
    return periodic_boundary_ ? boundary_pattern_ : boundary_once(segment_slot);
  }
  SegmentBits high_bits(std::uint64_t segment_slot) const;
  SegmentBits boundary_once(std::uint64_t segment_slot) const;

  std::uint64_t first_ = 0;       // T: device slot number of the pool's slot 0
  std::uint64_t high_mask_ = 0;   // bits of m above the low 7
  std::uint64_t high_value_ = 0;  // bits of v above the low 7
  unsigned rotation_ = 0;         // T & 127
  SegmentBits low_pattern_ = 0;   // starts allowed by the low 7 bits, rotated
  std::uint64_t shift_ = 0;       // the boundary test's shift: nr_slots(tbl_dma)
  std::uint64_t max_slots_ = 0;   // boundary, in slots
  unsigned nslots_ = 0;
  bool periodic_boundary_ = true;
  SegmentBits boundary_pattern_ = kAllSlots;  // when periodic
  bool impossible_ = false;
};

}  // namespace swiotlb::fast
