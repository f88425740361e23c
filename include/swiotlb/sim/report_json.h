// The JSON forms of the replay and sizing reports, as `swiotlb replay --json`
// (with or without --dynamic) and `swiotlb size --json` print them. The keys are a contract for
// scripts; docs/trace-format.md lists them.
#pragma once

#include <nlohmann/json.hpp>

#include "swiotlb/core/export.h"
#include "swiotlb/sim/dynamic_replay.h"
#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/sizing.h"

namespace swiotlb::sim {

SWIOTLB_API nlohmann::json to_json(const ReplayReport& report);
SWIOTLB_API nlohmann::json to_json(const SizingReport& report);
SWIOTLB_API nlohmann::json to_json(const DynamicReplayReport& report);

}  // namespace swiotlb::sim
