// JSON for the replay and sizing reports. Optional values are null rather
// than absent, so that scripts can index every documented key.
#include "swiotlb/sim/report_json.h"

namespace swiotlb::sim {
namespace {

using nlohmann::json;

json failed_map_json(const FailedMap& failed) {
  return {{"line", failed.line}, {"size", failed.size}, {"reason", to_string(failed.reason)}};
}

json agreement_json(const std::optional<SlotAgreement>& agreement) {
  if (!agreement) {
    return nullptr;
  }
  const SlotAgreement& a = *agreement;
  return {{"matched", a.matched},
          {"compared", a.compared},
          {"left_out", a.left_out},
          {"first_mismatch_line",
           a.first_mismatch_line ? json(*a.first_mismatch_line) : json(nullptr)}};
}

json optional_line(const std::optional<std::uint32_t>& line) {
  return line ? json(*line) : json(nullptr);
}

json pool_state_json(const PoolStateReport& p) {
  return {{"state_recorded", p.state_recorded},
          {"earlier_mappings", p.earlier_mappings},
          {"earlier_slots", p.earlier_slots},
          {"earlier_not_placed", p.earlier_not_placed},
          {"cursors_set", p.cursors_set},
          {"state_values_checked", p.state_values_checked},
          {"state_values_differing", p.state_values_differing},
          {"first_differing_line", optional_line(p.first_differing_line)},
          {"known_from_line", optional_line(p.known_from_line)},
          {"left_out_reason", p.unknown_reason.empty() ? json(nullptr) : json(p.unknown_reason)}};
}

// Bytes saved by `ours` against `theirs`: negative when ours is larger.
std::int64_t saved(std::uint64_t theirs, std::uint64_t ours) {
  return static_cast<std::int64_t>(theirs) - static_cast<std::int64_t>(ours);
}

json below_json(const PolicySize& size) {
  if (size.below_nslabs == 0) {
    return nullptr;
  }
  json below = {{"nslabs", size.below_nslabs},
                {"fails", size.below_failures != 0},
                {"below_peak_demand", size.below_ruled_out_by_demand},
                {"first_failure", nullptr}};
  if (size.first_failure_below) {
    below["first_failure"] = failed_map_json(*size.first_failure_below);
  }
  return below;
}

json policy_size_json(const PolicySize& size) {
  json out = {{"policy", size.policy},
              {"found", size.found},
              {"nslabs", size.found ? json(size.nslabs) : json(nullptr)},
              {"nareas", size.nareas},
              {"bytes", size.found ? json(size.bytes()) : json(nullptr)},
              {"swiotlb", size.found ? json(size.swiotlb_param()) : json(nullptr)},
              {"step", size.step},
              {"margin_percent", size.margin_percent},
              {"advised_nslabs", size.found ? json(size.advised_nslabs) : json(nullptr)},
              {"boot_nslabs", size.found ? json(size.boot_nslabs) : json(nullptr)},
              {"peak_demand_slots", size.peak_demand_slots},
              {"unservable_maps", size.unservable_maps},
              {"replays", size.replays},
              {"step_below", below_json(size)}};
  return out;
}

json failures_json(const std::vector<FailedMap>& failures) {
  json failed = json::array();
  for (const FailedMap& f : failures) {
    failed.push_back(failed_map_json(f));
  }
  return failed;
}

json optional_json(const std::optional<std::uint64_t>& value) {
  return value ? json(*value) : json(nullptr);
}

json dynamic_pool_json(const DynamicPoolReport& pool) {
  return {{"kind", to_string(pool.kind)},
          {"start", pool.start},
          {"nslabs", pool.nslabs},
          {"nareas", pool.nareas},
          {"added_at_event", pool.added_at_event},
          {"given_back_at_event", optional_json(pool.given_back_at_event)},
          {"maps", pool.maps},
          {"used_slots", pool.used_slots},
          {"hiwater_slots", pool.hiwater_slots}};
}

}  // namespace

json to_json(const ReplayReport& r) {
  const json failed = failures_json(r.first_failures);
  json out = {{"policy", r.policy},
              {"nslabs", r.nslabs},
              {"nareas", r.nareas},
              {"start", r.start},
              {"events", r.events},
              {"maps", r.maps},
              {"unmaps", r.unmaps},
              {"syncs", r.syncs},
              {"failures", r.failures},
              {"would_spin", r.would_spin},
              {"rejected", r.rejected},
              {"first_failures", failed},
              {"kernel_failed_maps", r.kernel_failed_maps},
              {"kernel_failed_also_here", r.kernel_failed_also_here},
              {"unmatched_unmaps", r.unmatched_unmaps},
              {"unmatched_unmap_lines", r.first_unmatched_lines},
              {"unmaps_of_failed_maps", r.unmaps_of_failed_maps},
              {"lost_unmaps", r.lost_unmaps},
              {"hiwater_slots", r.hiwater_slots},
              {"final_used_slots", r.final_used_slots},
              {"largest_free_run_slots", r.largest_free_run_slots},
              {"slot_agreement", agreement_json(r.slot_agreement)},
              {"pool_state", pool_state_json(r.pool_state)},
              {"bad_lines", r.bad_lines},
              {"stopped_early", r.stopped_early}};
  if (!r.slot_agreement) {
    out["slot_agreement_unavailable"] = r.slot_agreement_unavailable;
  }
  return out;
}

json to_json(const SizingReport& r) {
  json policies = json::array();
  for (const PolicySize& size : r.sizes) {
    policies.push_back(policy_size_json(size));
  }
  const PolicySize& best = r.recommended();
  json out = {{"nareas", r.nareas},
              {"policies", policies},
              {"recommended_policy", best.policy},
              {"swiotlb", best.found ? json(best.swiotlb_param()) : json(nullptr)},
              {"dynamic",
               {{"peak_slots", r.dynamic_peak_slots},
                {"peak_bytes", r.dynamic_peak_bytes},
                {"chunk_bytes", kGrowthChunkBytes}}},
              {"default_bytes", r.default_bytes},
              {"saved_bytes_vs_default",
               best.found ? json(saved(r.default_bytes, best.boot_bytes())) : json(nullptr)},
              {"coco_default_bytes", nullptr},
              {"saved_bytes_vs_coco_default", nullptr}};
  if (r.coco_default_bytes) {
    out["coco_default_bytes"] = *r.coco_default_bytes;
    out["saved_bytes_vs_coco_default"] =
        best.found ? json(saved(*r.coco_default_bytes, best.boot_bytes())) : json(nullptr);
  }
  return out;
}

json to_json(const DynamicReplayReport& r) {
  json pools = json::array();
  for (const DynamicPoolReport& pool : r.pools) {
    pools.push_back(dynamic_pool_json(pool));
  }
  return {{"dynamic", true},
          {"policy", r.policy},
          {"order", to_string(r.order)},
          {"nslabs", r.nslabs},
          {"nareas", r.nareas},
          {"start", r.start},
          {"grow_nslabs", r.grow_nslabs},
          {"max_nslabs", r.max_nslabs},
          {"shrink_after", optional_json(r.shrink_after)},
          {"events", r.events},
          {"maps", r.maps},
          {"unmaps", r.unmaps},
          {"syncs", r.syncs},
          {"failures", r.failures},
          {"would_spin", r.would_spin},
          {"rejected", r.rejected},
          {"first_failures", failures_json(r.first_failures)},
          {"kernel_failed_maps", r.kernel_failed_maps},
          {"kernel_failed_also_here", r.kernel_failed_also_here},
          {"unmatched_unmaps", r.unmatched_unmaps},
          {"unmatched_unmap_lines", r.first_unmatched_lines},
          {"unmaps_of_failed_maps", r.unmaps_of_failed_maps},
          {"lost_unmaps", r.lost_unmaps},
          {"maps_without_room", r.maps_without_room},
          {"pools_grown", r.pools_grown},
          {"growth_refused", r.growth_refused},
          {"pools_given_back", r.pools_given_back},
          {"grown_pools_final", r.grown_pools_final},
          {"grown_pools_peak", r.grown_pools_peak},
          {"total_slots_final", r.total_slots_final},
          {"total_slots_peak", r.total_slots_peak},
          {"transient_pools", r.transient_pools},
          {"transient_pools_final", r.transient_pools_final},
          {"transient_slots_final", r.transient_slots_final},
          {"transient_slots_peak", r.transient_slots_peak},
          {"hiwater_slots", r.hiwater_slots},
          {"final_used_slots", r.final_used_slots},
          {"final_bytes", r.final_bytes},
          {"peak_bytes", r.peak_bytes},
          {"pools", pools},
          {"follows_pool_events", r.follows_pool_events},
          {"slot_agreement", agreement_json(r.slot_agreement)},
          {"pool_events", r.pool_events},
          {"pool_events_not_followed", r.pool_events_not_followed},
          {"pool_events_not_followed_lines", r.first_pool_events_not_followed},
          {"bad_lines", r.bad_lines}};
}

}  // namespace swiotlb::sim
