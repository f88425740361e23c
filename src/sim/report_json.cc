// JSON for the replay and sizing reports. Optional values are null rather
// than absent, so that scripts can index every documented key.
#include "swiotlb/sim/report_json.h"

namespace swiotlb::sim {
namespace {

using nlohmann::json;

json failed_map_json(const FailedMap& failed) {
  return {{"line", failed.line}, {"size", failed.size}, {"reason", to_string(failed.reason)}};
}

json agreement_json(const ReplayReport& report) {
  if (!report.slot_agreement) {
    return nullptr;
  }
  const SlotAgreement& a = *report.slot_agreement;
  return {{"matched", a.matched},
          {"compared", a.compared},
          {"first_mismatch_line",
           a.first_mismatch_line ? json(*a.first_mismatch_line) : json(nullptr)}};
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
              {"peak_demand_slots", size.peak_demand_slots},
              {"unservable_maps", size.unservable_maps},
              {"replays", size.replays},
              {"step_below", below_json(size)}};
  return out;
}

}  // namespace

json to_json(const ReplayReport& r) {
  json failed = json::array();
  for (const FailedMap& f : r.first_failures) {
    failed.push_back(failed_map_json(f));
  }
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
              {"slot_agreement", agreement_json(r)},
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
               best.found ? json(saved(r.default_bytes, best.bytes())) : json(nullptr)},
              {"coco_default_bytes", nullptr},
              {"saved_bytes_vs_coco_default", nullptr}};
  if (r.coco_default_bytes) {
    out["coco_default_bytes"] = *r.coco_default_bytes;
    out["saved_bytes_vs_coco_default"] =
        best.found ? json(saved(*r.coco_default_bytes, best.bytes())) : json(nullptr);
  }
  return out;
}

}  // namespace swiotlb::sim
