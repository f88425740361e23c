// Reserved regions and valid IOVA ranges as JSON (opt-in: needs
// nlohmann-json). Pure functions over values; no synchronization needed.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "swiotlb/iova/dma_window.h"
#include "swiotlb/iova/reserved_regions.h"

namespace swiotlb::iova {

// [{"start": "0x...", "end": "0x...", "type": "..."}] and
// [{"start": "0x...", "end": "0x..."}]; addresses as 0x%016llx strings, since
// JSON numbers lose precision above 2^53.
nlohmann::json reserved_regions_json(const std::vector<ReservedRegion>& regions);
nlohmann::json dma_windows_json(const std::vector<DmaWindow>& windows);

}  // namespace swiotlb::iova
