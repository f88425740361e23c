// The kernel's slot searches.
//
// `linux` is the current mainline search (kernel/dma/swiotlb.c,
// swiotlb_search_pool_area): every candidate is tested for alignment, a
// streaming mapping of a page or more is page-aligned when the device keeps
// no address bits, alloc_align_mask is honoured by leading pad slots, and the
// search gives up after looking at a whole area.
//
// `linux-6.1` is the 6.1.y stable search (swiotlb_do_find_slots): alignment
// comes only from an aligned starting index and the stride, and the loop ends
// when the index comes back to where it started. When a +1 step leaves the
// stride grid the real kernel never comes back and spins with the area lock
// held; this model detects that (it can only happen once an index repeats,
// so after nslabs candidates) and reports `would_spin`.
#pragma once

#include "swiotlb/pool/slot_policy.h"

namespace swiotlb {

class LinuxPolicy final : public SlotPolicy {
 public:
  std::string_view name() const override { return "linux"; }
  Result<SearchPlan> plan(const SlotRequest& request) const override;
  AreaSearch search_area(const AreaView& area, const SearchPlan& plan) const override;
  std::uint64_t coherent_align_mask(std::uint64_t bytes) const override;
};

class Linux61Policy final : public SlotPolicy {
 public:
  std::string_view name() const override { return "linux-6.1"; }
  Result<SearchPlan> plan(const SlotRequest& request) const override;
  AreaSearch search_area(const AreaView& area, const SearchPlan& plan) const override;
  std::uint64_t coherent_align_mask(std::uint64_t) const override { return 0; }
};

}  // namespace swiotlb
