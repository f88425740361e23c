// first_long_run(): where, along a stride, the kernel's slot search next
// finds a free run long enough (private to the pool layer).
//
// The kernel's search tests candidates one at a time: is the candidate's
// free-run counter at least the number of slots wanted? Along a stride of
// one or two slots the counters of eight slots are one 16-byte load, so
// eight (or four) candidates are tested by one vector compare; which
// candidate answers first, and so every step the kernel would count, stays
// the same. Wider strides put each candidate in a line of its own and are
// tested one by one.
//
// first_fitting_candidate() adds the segment boundary test to it, and
// stride_keeps_alignment() says when a search may use it over a stretch of
// candidates; the `linux` and `linux-6.1` searches both use them.
//
// Pure functions on memory the caller owns; nothing to synchronize.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "swiotlb/pool/slot_policy.h"

namespace swiotlb {

// The index j of the first of candidates list[j * stride], j in
// [from, count), whose counter is at least `need`; `count` when none is.
// REQUIRES: list[0, (count - 1) * stride] is readable.
inline std::uint32_t first_long_run(const std::uint16_t* list, std::uint32_t from,
                                    std::uint32_t count, std::uint32_t stride, std::uint32_t need) {
  if (need > 0xffff) {
    return count;  // no counter is that large
  }
  std::uint32_t j = from;
  if (stride <= 2) {
    using Lanes = std::uint16_t __attribute__((vector_size(16)));
    constexpr std::uint32_t kLanes = 8;
    // Along a stride of two, every other lane is a candidate.
    const std::uint64_t candidates = stride == 1 ? ~std::uint64_t{0} : 0x0000ffff0000ffffULL;
    const std::uint32_t per_load = kLanes / stride;
    const Lanes wanted = Lanes{} + static_cast<std::uint16_t>(need);
    // Loads that stay within the candidates' span only: the last
    // candidate's counter may be the last of the pool.
    const std::uint64_t span = count == 0 ? 0 : std::uint64_t{count - 1} * stride + 1;
    for (; std::uint64_t{j} * stride + kLanes <= span; j += per_load) {
      Lanes counters;
      std::memcpy(&counters, list + std::uint64_t{j} * stride, sizeof counters);
      const auto hits = counters >= wanted;  // all ones in each lane that holds
      static_assert(std::endian::native == std::endian::little, "lane 0 is the low bits");
      std::uint64_t words[2];
      std::memcpy(words, &hits, sizeof words);
      const std::uint64_t low = words[0] & candidates;
      const std::uint64_t high = words[1] & candidates;
      if ((low | high) != 0) {
        const int bit = low != 0 ? std::countr_zero(low) : 64 + std::countr_zero(high);
        return j + static_cast<std::uint32_t>(bit / 16) / stride;
      }
    }
  }
  for (; j < count; ++j) {
    if (list[std::uint64_t{j} * stride] >= need) {
      return j;
    }
  }
  return count;
}

// Whether every candidate a search reaches by striding from an aligned one
// is aligned too: the stride is a power of two of bytes, above every bit
// either alignment test looks at. (Odd masks from a trace may not be.)
inline bool stride_keeps_alignment(const SearchPlan& plan) {
  const std::uint64_t stride_bytes = std::uint64_t{plan.stride} << kSlotShift;
  // A power of two (std::has_single_bit may be a library call).
  return stride_bytes != 0 && (stride_bytes & (stride_bytes - 1)) == 0 &&
         (plan.alloc_align_mask | plan.iotlb_align_mask) < stride_bytes;
}

// The first candidate j in [0, count), global slot first + j * stride, that
// the kernel's search takes: its free run long enough and within the
// segment boundary. `count` when none is. REQUIRES: as first_long_run, for
// list + first.
inline std::uint32_t first_fitting_candidate(const std::uint16_t* list, const SearchPlan& plan,
                                             std::uint64_t first, std::uint32_t count) {
  for (std::uint32_t j = 0;; ++j) {
    j = first_long_run(list + first, j, count, plan.stride, plan.nslots);
    if (j == count || !AreaView::crosses_boundary(plan, first + std::uint64_t{j} * plan.stride)) {
      return j;
    }
  }
}

}  // namespace swiotlb
