// Word-at-a-time arithmetic on the 128 slots of one segment, for the `fast`
// slot policy (private to the pool layer).
//
// A segment is 128 slots and no mapping crosses one, so one 128-bit value
// holds everything a search needs to know about a segment: bit p stands for
// the segment's slot p. With that, "where does a free run of n slots start"
// is a handful of shifts and ANDs instead of a walk over 128 counters, and
// the alignment and boundary rules become masks of the starts they allow.
//
// Pure functions on values: no state, nothing to synchronize.
#pragma once

#include <bit>
#include <cstdint>

#include "swiotlb/core/constants.h"

namespace swiotlb::fast {

// Bit p = slot p of a segment (the lowest bit is the segment's first slot).
__extension__ typedef unsigned __int128 SegmentBits;

inline constexpr SegmentBits kAllSlots = ~SegmentBits{0};
inline constexpr unsigned kSegmentBits = 128;
static_assert(kSegmentSlots == kSegmentBits, "a segment must fit one SegmentBits");

constexpr std::uint64_t low_word(SegmentBits x) {
  return static_cast<std::uint64_t>(x);
}
constexpr std::uint64_t high_word(SegmentBits x) {
  return static_cast<std::uint64_t>(x >> 64);
}

// Bits [first, first + count). REQUIRES: first + count <= 128.
constexpr SegmentBits range_bits(unsigned first, unsigned count) {
  const SegmentBits ones = count >= kSegmentBits ? kAllSlots : (SegmentBits{1} << count) - 1;
  return count == 0 ? SegmentBits{0} : ones << first;
}

// Index of the lowest set bit. REQUIRES: x != 0.
constexpr unsigned lowest_bit(SegmentBits x) {
  const std::uint64_t low = low_word(x);
  return low != 0 ? static_cast<unsigned>(std::countr_zero(low))
                  : 64 + static_cast<unsigned>(std::countr_zero(high_word(x)));
}

// Index of the highest set bit. REQUIRES: x != 0.
constexpr unsigned highest_bit(SegmentBits x) {
  const std::uint64_t high = high_word(x);
  return high != 0 ? 127 - static_cast<unsigned>(std::countl_zero(high))
                   : 63 - static_cast<unsigned>(std::countl_zero(low_word(x)));
}

constexpr SegmentBits rotate_right(SegmentBits x, unsigned r) {
  r &= kSegmentBits - 1;
  return r == 0 ? x : (x >> r) | (x << (kSegmentBits - r));
}

// The starts of runs of n set bits: bit p is set when bits p .. p + n - 1
// all are. Runs never reach past bit 127 (the shifts bring in zeros), which
// is the rule that no mapping crosses a segment. n == 0 gives all ones.
// Cost: about 2 log2(n) shift-ANDs, since a run of 2k is a run of k followed
// by another, and a run of n is two overlapping runs of the largest
// power of two k <= n: [p, p + k) and [p + n - k, p + n).
constexpr SegmentBits run_starts(SegmentBits bits, unsigned n) {
  if (n == 0) {
    return kAllSlots;
  }
  if (n > kSegmentBits) {
    return 0;
  }
  unsigned length = 1;
  while (length * 2 <= n) {
    bits &= bits >> length;
    length *= 2;
  }
  return length == n ? bits : bits & (bits >> (n - length));
}

// The longest run of set bits, by binary lifting over the runs of 1, 2, 4,
// ... 128: a fixed ~40 shift-ANDs by constants, however the segment is cut
// up. runs[k] marks the starts of runs of 2^k; a run of `length` extends to
// one of length + 2^k where a run of 2^k starts and one of `length` follows.
constexpr unsigned longest_run(SegmentBits bits) {
  SegmentBits runs[8] = {bits};
  for (unsigned k = 1; k < 8; ++k) {
    runs[k] = runs[k - 1] & (runs[k - 1] >> (1u << (k - 1)));
  }
  if (runs[7] != 0) {
    return kSegmentBits;
  }
  unsigned length = 0;
  SegmentBits starts = 0;  // starts of runs of `length`, once length > 0
  for (unsigned k = 7; k-- > 0;) {
    // (A run of length 0 may start at 128, one past the last bit; hence
    // the first extension takes runs[k] as it is.)
    const SegmentBits longer = length == 0 ? runs[k] : runs[k] & (starts >> (1u << k));
    if (longer != 0) {
      starts = longer;
      length += 1u << k;
    }
  }
  return length;
}

// Length of the run of set bits that contains bits [first, first + count).
// REQUIRES: those bits are set, count >= 1, first + count <= 128.
constexpr unsigned run_around(SegmentBits bits, unsigned first, unsigned count) {
  const unsigned end = first + count;
  const SegmentBits clear_below = ~bits & range_bits(0, first);
  const SegmentBits clear_above = ~bits & range_bits(end, kSegmentBits - end);
  const unsigned run_first = clear_below == 0 ? 0 : highest_bit(clear_below) + 1;
  const unsigned run_end = clear_above == 0 ? kSegmentBits : lowest_bit(clear_above);
  return run_end - run_first;
}

// Bits 0, period, 2 * period, ... REQUIRES: period a power of two <= 128.
constexpr SegmentBits every_nth_bit(std::uint64_t period) {
  SegmentBits bits = 1;
  for (std::uint64_t shift = period; shift < kSegmentBits; shift <<= 1) {
    bits |= bits << shift;
  }
  return bits;
}

// Bits p whose index has bit b set: 0xaa.. for b = 0, 0xcc.. for b = 1, ...
constexpr SegmentBits index_bit_set(unsigned b) {
  const unsigned half = 1u << b;
  return every_nth_bit(std::uint64_t{half} * 2) * range_bits(half, half);
}

// index_bit_set(b) for the 7 bits of a slot's index in its segment.
inline constexpr SegmentBits kIndexBitSet[7] = {
    index_bit_set(0), index_bit_set(1), index_bit_set(2), index_bit_set(3),
    index_bit_set(4), index_bit_set(5), index_bit_set(6)};

}  // namespace swiotlb::fast
