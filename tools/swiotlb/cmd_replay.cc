// `swiotlb replay`: runs a recorded trace through a pool of the trace's
// geometry (or another) and reports what that pool would have done: maps
// served and failed, peak use, fragmentation at the end, and how many maps
// got the kernel's own slot. Accounting only; no data is copied.
//
// With --dynamic the pools grow as the kernel's dynamic swiotlb grows them
// (sim/dynamic_replay.h), and the report says how far they grew; a trace
// with pool events is followed where its pools came and went, and every
// map compared with the kernel's.
//
// Exit status (README.md): 0 when the replay ran (failed maps are a result,
// not an error), 2 for a trace or an option that is not valid, 3 when the
// trace cannot be read.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "cli_limits.h"
#include "commands.h"
#include "progress.h"
#include "swiotlb/sim/dynamic_replay.h"
#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/report_json.h"

namespace swiotlb::cli {
namespace {

struct ReplayCliOptions {
  std::string path;
  std::string policy;
  std::uint64_t nslabs = 0;
  std::uint32_t nareas = 0;
  std::uint64_t start = 0;
  bool skip_bad = false;
  bool json = false;
  bool dynamic = false;
  std::uint64_t grow_nslabs = sim::kDefaultGrowNslabs;
  std::uint64_t max_nslabs = 0;
  std::string order = "kernel";
  std::uint64_t shrink_after = 0;
  // Set by CLI11 after parsing: which overrides were given.
  CLI::Option* nslabs_option = nullptr;
  CLI::Option* nareas_option = nullptr;
  CLI::Option* start_option = nullptr;
  CLI::Option* max_nslabs_option = nullptr;
  CLI::Option* shrink_after_option = nullptr;
};

void print_bad_lines(const sim::ReplayReport& report) {
  if (report.bad_lines == 0) {
    return;
  }
  fmt::print(stderr, "swiotlb: skipped {} line(s) that do not parse\n", report.bad_lines);
  for (const sim::BadLine& bad : report.first_bad_lines) {
    fmt::print(stderr, "swiotlb:   {}\n", bad.message);
  }
}

void print_failures(const sim::ReplayReport& r) {
  fmt::print("failures:          {} (no room), {} would spin, {} rejected\n", r.failures,
             r.would_spin, r.rejected);
  for (const sim::FailedMap& failed : r.first_failures) {
    fmt::print("  line {}: map of {} bytes: {}\n", failed.line, failed.size,
               to_string(failed.reason));
  }
  if (r.kernel_failed_maps != 0) {
    fmt::print("kernel failed:     {} map(s); this pool failed {} of them\n", r.kernel_failed_maps,
               r.kernel_failed_also_here);
  }
}

void print_unmaps(const sim::ReplayReport& r) {
  if (r.unmatched_unmaps != 0) {
    fmt::print("unmatched unmaps:  {} (first at line{} {})\n", r.unmatched_unmaps,
               r.first_unmatched_lines.size() > 1 ? "s" : "",
               fmt::join(r.first_unmatched_lines, ", "));
  }
  if (r.unmaps_of_failed_maps != 0) {
    fmt::print("unmaps of maps that failed here: {}\n", r.unmaps_of_failed_maps);
  }
  if (r.lost_unmaps != 0) {
    fmt::print("lost unmaps:       {} (an address was mapped again while live here)\n",
               r.lost_unmaps);
  }
}

void print_agreement(const sim::ReplayReport& r) {
  if (!r.slot_agreement) {
    fmt::print("slot agreement:    not measured: {}\n", r.slot_agreement_unavailable);
    return;
  }
  const sim::SlotAgreement& a = *r.slot_agreement;
  if (a.first_mismatch_line) {
    fmt::print("slot agreement:    {}/{} maps got the kernel's slot; first difference at line {}\n",
               a.matched, a.compared, *a.first_mismatch_line);
  } else {
    fmt::print("slot agreement:    {}/{} maps got the kernel's slot\n", a.matched, a.compared);
  }
  if (a.left_out != 0) {
    fmt::print("                   {} maps left out: {}\n", a.left_out,
               r.pool_state.unknown_reason);
  }
}

// What the trace's `# state` lines gave and how the replay held to them.
void print_pool_state(const sim::ReplayReport& r) {
  const sim::PoolStateReport& p = r.pool_state;
  if (!p.state_recorded) {
    return;
  }
  fmt::print(
      "pool state:        {} area cursors from '# state'; {} earlier mappings ({} slots) "
      "held from the start{}\n",
      p.cursors_set, p.earlier_mappings, p.earlier_slots,
      p.earlier_not_placed != 0 ? fmt::format(", {} could not be placed", p.earlier_not_placed)
                                : std::string());
  fmt::print(
      "                   {} recorded values checked, {} differ{}; state known from {}\n",
      p.state_values_checked, p.state_values_differing,
      p.first_differing_line ? fmt::format(" (first at line {})", *p.first_differing_line)
                             : std::string(),
      p.known_from_line ? fmt::format("line {}", *p.known_from_line) : std::string("no line"));
}

void print_report(const std::string& path, const sim::ReplayReport& r) {
  fmt::print("replay of {}\n", path);
  fmt::print("pool:              policy {}, {} slots ({} KiB) in {} area(s) at {:#x}\n", r.policy,
             r.nslabs, (r.nslabs << 11) >> 10, r.nareas, r.start);
  fmt::print("events:            {} ({} maps, {} unmaps, {} syncs){}\n", r.events, r.maps, r.unmaps,
             r.syncs, r.stopped_early ? ", stopped early" : "");
  print_failures(r);
  print_unmaps(r);
  fmt::print("hiwater:           {} slots\n", r.hiwater_slots);
  fmt::print("final used:        {} slots\n", r.final_used_slots);
  fmt::print("largest free run:  {} slots\n", r.largest_free_run_slots);
  print_agreement(r);
  print_pool_state(r);
}

sim::ReplayOptions library_options(const ReplayCliOptions& o) {
  sim::ReplayOptions options;
  options.policy = o.policy;
  if (o.nslabs_option->count() != 0) {
    options.nslabs = o.nslabs;
  }
  if (o.nareas_option->count() != 0) {
    options.nareas = o.nareas;
  }
  if (o.start_option->count() != 0) {
    options.start = o.start;
  }
  return options;
}

std::string slots_text(std::uint64_t slots) {
  const std::uint64_t kib = (slots << 11) >> 10;
  return kib % 1024 == 0 ? fmt::format("{} slots ({} MiB)", slots, kib / 1024)
                         : fmt::format("{} slots ({} KiB)", slots, kib);
}

void print_dynamic_pools(const sim::DynamicReplayReport& r) {
  fmt::print("pools:\n");
  for (std::size_t i = 0; i < r.pools.size(); ++i) {
    const sim::DynamicPoolReport& p = r.pools[i];
    std::string when = p.kind == sim::DynamicPoolKind::default_pool
                           ? std::string()
                           : fmt::format(", added before event {}", p.added_at_event);
    if (p.given_back_at_event) {
      when += fmt::format(", given back before event {}", *p.given_back_at_event);
    }
    fmt::print("  {:2} {:7} {:#x}, {} slots in {} area(s){}: {} maps, {} used, hiwater {}\n", i,
               to_string(p.kind), p.start, p.nslabs, p.nareas, when, p.maps, p.used_slots,
               p.hiwater_slots);
  }
}

void print_dynamic_report(const std::string& path, const sim::DynamicReplayReport& r) {
  fmt::print("dynamic replay of {}\n", path);
  fmt::print("default pool:      policy {}, {} in {} area(s) at {:#x}\n", r.policy,
             slots_text(r.nslabs), r.nareas, r.start);
  if (r.follows_pool_events) {
    fmt::print("growth:            where the trace's {} pool event(s) say; search order {}\n",
               r.pool_events, to_string(r.order));
  } else {
    fmt::print("growth:            pools of {} slots up to {} in all; search order {}; {}\n",
               r.grow_nslabs, slots_text(r.max_nslabs), to_string(r.order),
               r.shrink_after
                   ? fmt::format("idle pools given back after {} events", *r.shrink_after)
                   : std::string("no shrink"));
  }
  fmt::print("events:            {} ({} maps, {} unmaps, {} syncs)\n", r.events, r.maps, r.unmaps,
             r.syncs);
  fmt::print("failures:          {} (no room), {} would spin, {} rejected\n", r.failures,
             r.would_spin, r.rejected);
  for (const sim::FailedMap& failed : r.first_failures) {
    fmt::print("  line {}: map of {} bytes: {}\n", failed.line, failed.size,
               to_string(failed.reason));
  }
  if (r.kernel_failed_maps != 0) {
    fmt::print("kernel failed:     {} map(s); failed here too: {}\n", r.kernel_failed_maps,
               r.kernel_failed_also_here);
  }
  if (r.unmatched_unmaps != 0) {
    fmt::print("unmatched unmaps:  {} (first at line{} {})\n", r.unmatched_unmaps,
               r.first_unmatched_lines.size() > 1 ? "s" : "",
               fmt::join(r.first_unmatched_lines, ", "));
  }
  if (r.lost_unmaps != 0) {
    fmt::print("lost unmaps:       {}\n", r.lost_unmaps);
  }
  fmt::print(
      "no room:           {} map(s) found no room; {} pool(s) grown, {} refused at the "
      "maximum\n",
      r.maps_without_room, r.pools_grown, r.growth_refused);
  fmt::print("grown pools:       {} at the end, {} at the peak; {} given back\n",
             r.grown_pools_final, r.grown_pools_peak, r.pools_given_back);
  fmt::print("default + grown:   peak {}, final {}\n", slots_text(r.total_slots_peak),
             slots_text(r.total_slots_final));
  fmt::print("transient pools:   {} made, peak {} slots, {} left\n", r.transient_pools,
             r.transient_slots_peak, r.transient_pools_final);
  if (r.slot_agreement) {
    const sim::SlotAgreement& a = *r.slot_agreement;
    fmt::print("slot agreement:    {}/{} maps on the kernel's slot{}\n", a.matched, a.compared,
               a.first_mismatch_line
                   ? fmt::format(" (first difference at line {})", *a.first_mismatch_line)
                   : std::string());
  }
  if (r.pool_events_not_followed != 0) {
    fmt::print("not followed:      {} pool event(s) (first at line{} {})\n",
               r.pool_events_not_followed, r.first_pool_events_not_followed.size() > 1 ? "s" : "",
               fmt::join(r.first_pool_events_not_followed, ", "));
  }
  fmt::print("hiwater:           {} slots\n", r.hiwater_slots);
  fmt::print("final used:        {} slots\n", r.final_used_slots);
  if (r.follows_pool_events) {
    fmt::print(
        "kernel's debugfs:  io_tlb_nslabs {}, io_tlb_used {}, io_tlb_used_hiwater {}, "
        "io_tlb_transient_nslabs {}\n",
        r.total_slots_final, r.final_used_slots, r.hiwater_slots, r.transient_slots_final);
  }
  fmt::print("memory:            peak {} KiB, final {} KiB\n", r.peak_bytes >> 10,
             r.final_bytes >> 10);
  print_dynamic_pools(r);
}

int run_dynamic_replay(const ReplayCliOptions& o, const sim::ParseOptions& parse) {
  Result<sim::DynamicOrder> order = sim::parse_dynamic_order(o.order);
  if (!order) {
    fmt::print(stderr, "swiotlb: error: --order: {}\n", order.error().message());
    return 2;
  }
  const sim::ReplayOptions plain = library_options(o);
  sim::DynamicReplayOptions options;
  options.policy = plain.policy;
  options.nslabs = plain.nslabs;
  options.nareas = plain.nareas;
  options.start = plain.start;
  options.grow_nslabs = o.grow_nslabs;
  if (o.max_nslabs_option->count() != 0) {
    options.max_nslabs = o.max_nslabs;
  }
  options.order = *order;
  if (o.shrink_after_option->count() != 0) {
    options.shrink_after = o.shrink_after;
  }
  sim::TerminalProgress progress("replay");
  options.progress = progress.callback();
  Result<sim::DynamicReplayReport> report = sim::replay_dynamic_file(o.path, parse, options);
  progress.finish();
  if (!report) {
    const bool named = report.error().message().find(o.path) != std::string::npos;
    fmt::print(stderr, "swiotlb: error: {}{}\n", named ? "" : o.path + ": ",
               report.error().message());
    return exit_code_for(report.error());
  }
  if (report->bad_lines != 0) {
    fmt::print(stderr, "swiotlb: skipped {} line(s) that do not parse\n", report->bad_lines);
    for (const sim::BadLine& bad : report->first_bad_lines) {
      fmt::print(stderr, "swiotlb:   {}\n", bad.message);
    }
  }
  if (o.json) {
    fmt::print("{}\n", sim::to_json(*report).dump(2));
  } else {
    print_dynamic_report(o.path, *report);
  }
  return 0;
}

int run_replay(const ReplayCliOptions& o) {
  sim::ParseOptions parse;
  parse.skip_bad = o.skip_bad;
  if (o.dynamic) {
    return run_dynamic_replay(o, parse);
  }
  sim::ReplayOptions options = library_options(o);
  sim::TerminalProgress progress(
      fmt::format("replay {}{}", options.policy,
                  options.nslabs ? fmt::format(" nslabs={}", *options.nslabs) : std::string()));
  options.progress = progress.callback();
  // Parses on a second thread while it replays: see sim/replay.h.
  Result<sim::ReplayReport> report = sim::replay_trace_file(o.path, parse, options);
  progress.finish();
  if (!report) {
    const bool named = report.error().message().find(o.path) != std::string::npos;
    fmt::print(stderr, "swiotlb: error: {}{}\n", named ? "" : o.path + ": ",
               report.error().message());
    return exit_code_for(report.error());
  }
  print_bad_lines(*report);
  if (o.json) {
    fmt::print("{}\n", sim::to_json(*report).dump(2));
  } else {
    print_report(o.path, *report);
  }
  return 0;
}

}  // namespace

void add_replay_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ReplayCliOptions>();
  CLI::App* cmd = app.add_subcommand("replay", "Replay a trace (trace v1) through a pool");
  cmd->add_option("trace", o->path, "The trace file")->required();
  cmd->add_option("--policy", o->policy,
                  "Slot policy: linux-6.1 or linux (default: linux-6.1 for a 6.1 kernel's "
                  "trace, else linux)");
  o->nslabs_option =
      cmd->add_option("--nslabs", o->nslabs, "Pool size in slots (default: the trace's)")
          ->check(whole_number(0, UINT64_MAX));
  o->nareas_option = cmd->add_option("--nareas", o->nareas, "Areas (default: the trace's)")
                         ->check(whole_number(0, UINT32_MAX));
  o->start_option =
      cmd->add_option("--start", o->start, "Pool start address (default: the trace's)")
          ->check(whole_number(0, UINT64_MAX));
  cmd->add_flag("--skip-bad", o->skip_bad, "Skip lines that do not parse (counted and reported)");
  cmd->add_flag("--json", o->json, "Print the report as JSON");
  CLI::Option* dynamic = cmd->add_flag(
      "--dynamic", o->dynamic,
      "Pools grow as the kernel's dynamic swiotlb grows them (Linux 6.6+); default policy linux");
  cmd->add_option("--grow-nslabs", o->grow_nslabs,
                  "With --dynamic: slots per grown pool (default 2048, 4 MiB)")
      ->needs(dynamic)
      ->check(whole_number(0, UINT64_MAX));
  o->max_nslabs_option =
      cmd->add_option("--max-nslabs", o->max_nslabs,
                      "With --dynamic: most default and grown slots together (default: 16 times "
                      "the default pool)")
          ->needs(dynamic)
          ->check(whole_number(0, UINT64_MAX));
  cmd->add_option("--order", o->order,
                  "With --dynamic: pool search order, kernel (newest first) or oldest (default "
                  "first, then oldest grown)")
      ->needs(dynamic);
  o->shrink_after_option =
      cmd->add_option("--shrink-after", o->shrink_after,
                      "With --dynamic: give back a grown pool idle for this many events "
                      "(default: never, as the kernel)")
          ->needs(dynamic)
          ->check(whole_number(0, UINT64_MAX));
  cmd->callback([o, exit_code] { *exit_code = run_replay(*o); });
}

}  // namespace swiotlb::cli
