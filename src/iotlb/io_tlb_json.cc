// IoTlb's statistics as JSON (io_tlb_json.h).
#include "swiotlb/iotlb/io_tlb_json.h"

namespace swiotlb {

namespace {

nlohmann::json own_json(const PoolStats& s) {
  return {{"nslabs", s.nslabs},
          {"used", s.used},
          {"hiwater", s.hiwater},
          {"searches_failed", s.failures}};
}

nlohmann::json areas_json(const PoolStats& s) {
  nlohmann::json areas = nlohmann::json::array();
  for (const AreaStats& a : s.areas) {
    areas.push_back({{"used", a.used},
                     {"cursor", a.cursor},
                     {"maps", a.maps},
                     {"search_steps", a.search_steps}});
  }
  return areas;
}

nlohmann::json pool_json(const IoTlb& tlb, std::uint32_t index, const IoTlbStats& s) {
  const PoolInfo info = tlb.pool_info(index);
  const PoolStats& own = s.pools[index];
  const ServedStats& served = s.served[index];
  return {{"name", info.name},
          {"start", info.start.value()},
          {"end", info.end.value()},
          {"nslabs", served.nslabs},
          {"nareas", own.nareas},
          {"used", served.used},
          {"hiwater", served.hiwater},
          {"maps", own.maps},
          {"failures", served.refused},
          {"fall_throughs", served.fall_throughs},
          {"search_steps", own.search_steps},
          {"areas", areas_json(own)},
          {"own", own_json(own)}};
}

}  // namespace

nlohmann::json io_tlb_json(const IoTlb& tlb) {
  const IoTlbStats s = tlb.stats();
  nlohmann::json pools = nlohmann::json::array();
  for (std::uint32_t i = 0; i < tlb.pool_count(); ++i) {
    pools.push_back(pool_json(tlb, i, s));
  }
  // The default pool's figures at the top, as the kernel's debugfs has them.
  nlohmann::json out = pools.empty() ? nlohmann::json::object() : pools[0];
  out.erase("name");
  out["enabled"] = tlb.enabled();
  out["policy"] = tlb.enabled() ? tlb.pool().policy().name() : "none";
  out["force"] = tlb.force_bounce();
  out["restricted"] = tlb.restricted();
  out["coherent_allocations"] = s.coherent_allocations;
  out["pools"] = pools;
  nlohmann::json dynamic = nlohmann::json::array();
  for (const DynamicPoolStats& d : s.dynamic) {
    dynamic.push_back({{"name", d.name},
                       {"kind", to_string(d.kind)},
                       {"serves", tlb.pool_info(d.tier).name},
                       {"start", d.start},
                       {"end", d.end},
                       {"nslabs", d.nslabs},
                       {"used", d.used}});
  }
  const GrowthStats& g = s.growth;
  out["growth"] = {{"enabled", tlb.grows()},
                   {"transient", tlb.makes_transient_pools()},
                   {"grown_pools", g.grown_pools},
                   {"grown_nslabs", g.grown_nslabs},
                   {"grow_events", g.grow_events},
                   {"grow_failures", g.grow_failures},
                   {"grown_smaller", g.grown_smaller},
                   {"limit_reached", g.limit_reached},
                   {"shrunk_pools", g.shrunk_pools},
                   {"transient_pools", g.transient_pools},
                   {"transient_nslabs", g.transient_nslabs},
                   {"transient_nslabs_total", g.transient_nslabs_total},
                   {"transient_failures", g.transient_failures},
                   {"pools", dynamic}};
  out["reserve"] = {{"nslabs", s.reserve.nslabs},
                    {"used", s.reserve.used},
                    {"hiwater", s.reserve.hiwater},
                    {"maps", s.reserve.maps},
                    {"exhausted", s.reserve.exhausted}};
  out["waits"] = {{"waits", s.waits.waits},
                  {"wait_ns", s.waits.wait_ns},
                  {"timeouts", s.waits.timeouts},
                  {"queued", s.waits.queued},
                  {"waiting_now", s.waits.waiting_now}};
  return out;
}

}  // namespace swiotlb
