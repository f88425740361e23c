// The names IoTlb's options and pools go by, and the options `swiotlb=` gives.
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb {

Result<IoTlbOptions> IoTlbOptions::from_config(const SwiotlbConfig& config) {
  IoTlbOptions options;
  options.nslabs = config.nslabs;
  options.nareas = config.nareas;
  options.force_bounce = config.force == ForceMode::force;
  options.disabled = config.force == ForceMode::noforce;
  options.high_nslabs = config.high_nslabs.value_or(0);
  options.high_nareas = config.high_nareas;
  if (config.addr) {
    RegionSpec spec;
    spec.fixed_address = PhysAddr(*config.addr);
    options.region = spec;
  }
  return options;
}

std::string_view to_string(PoolKind kind) {
  switch (kind) {
    case PoolKind::configured:
      return "configured";
    case PoolKind::grown:
      return "grown";
    case PoolKind::transient:
      return "transient";
    case PoolKind::reserve:
      return "reserve";
  }
  return "unknown";
}

std::string_view to_string(PoolSearchOrder order) {
  return order == PoolSearchOrder::kernel ? "kernel" : "oldest";
}

Result<PoolSearchOrder> parse_pool_search_order(std::string_view name) {
  if (name == "oldest") {
    return PoolSearchOrder::oldest_first;
  }
  if (name == "kernel") {
    return PoolSearchOrder::kernel;
  }
  return make_error(Errc::invalid_argument, "unknown search order '{}' (known: oldest, kernel)",
                    name);
}

}  // namespace swiotlb
