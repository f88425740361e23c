// The `fast` policy's entry points; the index and its search are in
// fast_area_state.cc. Stateless: the per-area state is the pool's, guarded
// by the area lock the pool holds around every call.
#include "swiotlb/pool/fast_policy.h"

#include "fast_area_state.h"
#include "swiotlb/core/check.h"

namespace swiotlb {

AreaSearch FastPolicy::search_area(const AreaView& area, const SearchPlan& plan) const {
  SWIOTLB_CHECK(dynamic_cast<fast::FastAreaState*>(area.state) != nullptr,
                "a fast area holds fast state");
  return static_cast<fast::FastAreaState*>(area.state)->search(area, plan);
}

std::unique_ptr<AreaState> FastPolicy::make_area_state(std::uint32_t nslabs) const {
  return std::make_unique<fast::FastAreaState>(nslabs);
}

}  // namespace swiotlb
