// The `swiotlb_high=` parameter (internal to core/config.cc).
#pragma once

#include <string_view>

#include "swiotlb/core/config.h"

namespace swiotlb {

// Applies every `swiotlb_high=<nslabs>[,<nareas>]` word of `text` to config.
Status apply_high_pool(std::string_view text, SwiotlbConfig& config);

}  // namespace swiotlb
