// IoTlb's statistics as JSON, for tools and reports that want them; the
// library itself needs no JSON (io_tlb.h does not include this).
//
// Layout: the default pool's figures at the top level, as the kernel's
// debugfs has them, then "pools" (one entry per configured pool), "growth"
// and "waits". A configured pool's entry counts as debugfs does, over the
// pool and the grown and transient pools that serve it: nslabs (configured
// and grown), used, hiwater, failures (maps refused) and fall_throughs
// (maps that found the first pool searched full and got room in a later
// one); "areas" and "own" hold the configured pool's own SlotPool figures
// (per area; its slots, use, mark and the searches that failed in it).
//
// Thread safety: as IoTlb::stats(), which it reads once.
#pragma once

#include <nlohmann/json.hpp>

#include "swiotlb/core/export.h"
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb {

SWIOTLB_API nlohmann::json io_tlb_json(const IoTlb& tlb);

}  // namespace swiotlb
