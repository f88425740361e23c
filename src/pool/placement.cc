// Placement: the per-plan masks (see placement.h).
#include "placement.h"

#include <bit>

#include "swiotlb/core/constants.h"

namespace swiotlb::fast {

namespace {

constexpr unsigned kLowBits = 7;  // log2 of the slots in a segment

// The starts whose device slot number has low 7 bits j with
// (j & mask) == value, before rotation: one bit test per mask bit.
SegmentBits low_bits_pattern(std::uint64_t mask, std::uint64_t value) {
  SegmentBits pattern = kAllSlots;
  for (std::uint64_t m = mask & (kSegmentBits - 1); m != 0; m &= m - 1) {
    const auto b = static_cast<unsigned>(std::countr_zero(m));
    pattern &= (value >> b & 1) != 0 ? kIndexBitSet[b] : ~kIndexBitSet[b];
  }
  return pattern;
}

}  // namespace

Placement::Placement(const SearchPlan& plan) {
  const std::uint64_t keep = plan.orig != 0 ? plan.iotlb_align_mask : 0;
  const std::uint64_t mask = plan.alloc_align_mask | keep;
  const std::uint64_t value = plan.orig & keep;
  nslots_ = plan.nslots;
  max_slots_ = plan.max_slots;
  // Bits that must be both zero and orig's, low bits of tbl_dma (which no
  // slot changes) that break the rule, or a run no segment or boundary holds.
  if ((value & plan.alloc_align_mask) != 0 ||
      ((plan.tbl_dma ^ value) & mask & (kSlotSize - 1)) != 0 || nslots_ == 0 ||
      nslots_ > kSegmentSlots || nslots_ > max_slots_) {
    impossible_ = true;
    return;
  }
  first_ = plan.tbl_dma >> kSlotShift;
  rotation_ = static_cast<unsigned>(first_ & (kSegmentBits - 1));
  const std::uint64_t slot_mask = mask >> kSlotShift;
  const std::uint64_t slot_value = value >> kSlotShift;
  high_mask_ = slot_mask >> kLowBits;
  high_value_ = slot_value >> kLowBits;
  low_pattern_ = rotate_right(low_bits_pattern(slot_mask, slot_value), rotation_);

  shift_ = nr_slots(plan.tbl_dma);
  periodic_boundary_ = max_slots_ <= kSegmentSlots;
  if (periodic_boundary_) {
    // Boundary blocks start at the same offsets in every segment; a start p
    // is allowed when no block starts in (p, p + nslots).
    const std::uint64_t phase = shift_ & (max_slots_ - 1);
    const auto first_block = static_cast<unsigned>((max_slots_ - phase) & (max_slots_ - 1));
    const SegmentBits block_starts = every_nth_bit(max_slots_) << first_block;
    boundary_pattern_ = run_starts(~block_starts >> 1, nslots_ - 1);
  }
}

SegmentBits Placement::high_bits(std::uint64_t segment_slot) const {
  // Device slot numbers T + s for this segment: those of the first
  // 128 - rotation slots share one value above the low 7 bits, the rest the
  // next one.
  const std::uint64_t high = (first_ + segment_slot) >> kLowBits;
  const unsigned split = kSegmentBits - rotation_;
  SegmentBits bits = 0;
  if ((high & high_mask_) == high_value_) {
    bits |= range_bits(0, split);
  }
  if (rotation_ != 0 && ((high + 1) & high_mask_) == high_value_) {
    bits |= range_bits(split, rotation_);
  }
  return bits;
}

SegmentBits Placement::boundary_once(std::uint64_t segment_slot) const {
  // A boundary of 128 slots or more starts a block at most once in the
  // segment, at `block`; the starts in (block - nslots, block) would cross it.
  const std::uint64_t phase = (shift_ + segment_slot) & (max_slots_ - 1);
  const std::uint64_t block = (max_slots_ - phase) & (max_slots_ - 1);
  if (block == 0 || block >= kSegmentSlots) {
    return kAllSlots;
  }
  const auto end = static_cast<unsigned>(block);
  const unsigned first = end + 1 > nslots_ ? end + 1 - nslots_ : 0;
  return ~range_bits(first, end - first);
}

}  // namespace swiotlb::fast
