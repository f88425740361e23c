// The statistics of a swiotlb_tlb as debugfs text, JSON and the Prometheus
// text exposition format (version 0.0.4: "# HELP", "# TYPE", then one
// "name{labels} value" line per sample).
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "capi_internal.h"
#include "swiotlb/iotlb/io_tlb_json.h"

namespace swiotlb::capi {
namespace {

class Exposition {
 public:
  // Starts a metric family.
  void family(std::string_view name, std::string_view type, std::string_view help) {
    name_ = name;
    text_ += "# HELP ";
    text_ += name;
    text_ += ' ';
    text_ += help;
    text_ += "\n# TYPE ";
    text_ += name;
    text_ += ' ';
    text_ += type;
    text_ += '\n';
  }
  // A sample of the current family, with a pool label or none.
  void sample(std::string_view pool, std::uint64_t value) {
    text_ += name_;
    if (!pool.empty()) {
      text_ += "{pool=\"";
      text_ += pool;  // pool names are plain words ("low", "high")
      text_ += "\"}";
    }
    text_ += ' ';
    text_ += std::to_string(value);
    text_ += '\n';
  }
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
  std::string name_;
};

std::string prometheus_text(const IoTlb& tlb) {
  const IoTlbStats stats = tlb.stats();
  Exposition out;
  struct PoolFamily {
    std::string_view name;
    std::string_view type;
    std::string_view help;
    std::uint64_t PoolStats::*field;
  };
  static constexpr PoolFamily kPoolFamilies[] = {
      {"swiotlb_pool_slots", "gauge", "Slots of 2 KiB in the configured pool.", &PoolStats::nslabs},
      {"swiotlb_pool_used_slots", "gauge", "Slots in use now.", &PoolStats::used},
      {"swiotlb_pool_used_slots_hiwater", "gauge",
       "Most slots in use at once since the last reset.", &PoolStats::hiwater},
      {"swiotlb_pool_maps_total", "counter", "Bounce mappings made.", &PoolStats::maps},
      {"swiotlb_pool_map_failures_total", "counter", "Maps refused for want of slots.",
       &PoolStats::failures},
  };
  for (const PoolFamily& family : kPoolFamilies) {
    out.family(family.name, family.type, family.help);
    for (std::uint32_t i = 0; i < tlb.pool_count() && i < stats.pools.size(); ++i) {
      out.sample(tlb.pool_info(i).name, stats.pools[i].*family.field);
    }
  }
  out.family("swiotlb_coherent_allocations", "gauge", "Live coherent allocations.");
  out.sample({}, stats.coherent_allocations);
  out.family("swiotlb_grown_pools", "gauge", "Pools grown beyond the configured ones, now.");
  out.sample({}, stats.growth.grown_pools);
  out.family("swiotlb_grow_events_total", "counter", "Pools grown, ever.");
  out.sample({}, stats.growth.grow_events);
  out.family("swiotlb_transient_pools", "gauge", "Transient pools now.");
  out.sample({}, stats.growth.transient_pools);
  return out.take();
}

}  // namespace
}  // namespace swiotlb::capi

using swiotlb::capi::fail;
using swiotlb::capi::guarded;
using swiotlb::capi::null_argument;

extern "C" {

swiotlb_status swiotlb_tlb_stats(const swiotlb_tlb* tlb, swiotlb_stats_format format, char* buf,
                                 size_t size, size_t* length) {
  return guarded("swiotlb_tlb_stats", [&] {
    if (tlb == nullptr || length == nullptr) {
      return null_argument("swiotlb_tlb_stats", tlb == nullptr ? "tlb" : "length");
    }
    std::string text;
    switch (format) {
      case SWIOTLB_STATS_DEBUGFS:
        text = tlb->tlb->debugfs_text();
        break;
      case SWIOTLB_STATS_JSON:
        text = io_tlb_json(*tlb->tlb).dump();
        break;
      case SWIOTLB_STATS_PROMETHEUS:
        text = swiotlb::capi::prometheus_text(*tlb->tlb);
        break;
      default:
        return fail(SWIOTLB_E_INVALID_ARGUMENT,
                    "swiotlb_tlb_stats: format " + std::to_string(static_cast<int>(format)) +
                        " is none of debugfs (0), json (1), prometheus (2)");
    }
    *length = text.size();
    if (buf == nullptr || size <= text.size()) {
      return fail(SWIOTLB_E_BUFFER_TOO_SMALL,
                  "swiotlb_tlb_stats: the statistics need " + std::to_string(text.size() + 1) +
                      " bytes with the NUL; the buffer has " + std::to_string(buf ? size : 0));
    }
    std::memcpy(buf, text.c_str(), text.size() + 1);
    return SWIOTLB_OK;
  });
}

}  // extern "C"
