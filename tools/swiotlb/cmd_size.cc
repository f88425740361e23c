// `swiotlb size`: the smallest pool that would have served every map of a
// trace, under each slot policy, with the `swiotlb=` parameter to boot it,
// what dynamic growth would have used, and the memory it saves against the
// kernel's defaults. The method and the growth model are in sim/sizing.h.
//
// Exit status (README.md): 0 when sizing ran (even if no pool size serves the
// trace), 2 for a trace or an option that is not valid, 3 when the trace
// cannot be read.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli_limits.h"
#include "commands.h"
#include "progress.h"
#include "report_units.h"
#include "swiotlb/sim/report_json.h"
#include "swiotlb/sim/sizing.h"
#include "swiotlb/sim/trace_parser.h"

namespace swiotlb::cli {
namespace {

struct SizeCliOptions {
  std::string path;
  std::string ram;
  std::string cmdline;
  std::vector<std::string> policies;
  std::vector<std::uint32_t> area_counts;
  std::string margin = "0";
  bool skip_bad = false;
  bool json = false;
};

// "line 412 (a map of 262144 bytes by 0000:00:05.0 nvme)".
std::string describe_failure(const sim::Trace& trace, const sim::FailedMap& f) {
  const auto event =
      std::lower_bound(trace.events.begin(), trace.events.end(), f.line,
                       [](const sim::TraceEvent& e, std::uint32_t line) { return e.line < line; });
  std::string device;
  if (event != trace.events.end() && event->line == f.line) {
    const sim::TraceDevice& d = trace.devices[event->device];
    device = d.name.empty() ? fmt::format(" by {}", d.id) : fmt::format(" by {} {}", d.id, d.name);
  }
  return fmt::format("line {} (a map of {} bytes{})", f.line, f.size, device);
}

void print_policy(const sim::Trace& trace, const sim::PolicySize& s) {
  if (s.unservable_maps != 0) {
    fmt::print("  {:<10} no pool serves this trace: {} map(s) larger than one segment\n", s.policy,
               s.unservable_maps);
    return;
  }
  if (!s.found) {
    fmt::print("  {:<10} no pool up to {} slots serves every map (peak demand {} slots)\n",
               s.policy, sim::kMaxSizingSlots, s.peak_demand_slots);
    return;
  }
  fmt::print("  {:<10} {:>8} slots ({:>8}) at {} area(s), peak demand {} slots, {} replay(s)\n",
             s.policy, s.nslabs, mib(s.bytes()), s.nareas, s.peak_demand_slots, s.replays);
  if (s.first_failure_below) {
    fmt::print("  {:<10} one step below, {} slots, fails at {}\n", "", s.below_nslabs,
               describe_failure(trace, *s.first_failure_below));
  }
  fmt::print("  {:<10} {} ({} slots with a {}% margin; a kernel with areas boots {} slots = {})\n",
             "", s.swiotlb_param(), s.advised_nslabs, s.margin_percent, s.boot_nslabs,
             mib(s.boot_bytes()));
}

void print_report(const std::string& path, const sim::Trace& trace, const sim::SizingReport& r,
                  const std::optional<std::uint64_t>& ram) {
  fmt::print("sizing for {}: smallest pool with no failed map, in {}-slot steps\n", path,
             sim::pool_step_slots(r.nareas));
  for (const sim::PolicySize& size : r.sizes) {
    print_policy(trace, size);
  }
  fmt::print("dynamic growth:    would peak at {} slots = {} in {} MiB chunks\n",
             r.dynamic_peak_slots, mib(r.dynamic_peak_bytes), sim::kGrowthChunkBytes >> 20);
  const sim::PolicySize& best = r.recommended();
  if (!best.found) {
    return;
  }
  const auto saved = [&](std::uint64_t theirs) {
    return signed_mib(static_cast<std::int64_t>(theirs) -
                      static_cast<std::int64_t>(best.boot_bytes()));
  };
  fmt::print("saved vs default:  {} (kernel default {})\n", saved(r.default_bytes),
             mib(r.default_bytes));
  if (r.coco_default_bytes) {
    fmt::print("saved vs CoCo:     {} (confidential guest default {} for {} of RAM)\n",
               saved(*r.coco_default_bytes), mib(*r.coco_default_bytes), mib(*ram));
  }
  fmt::print("# for {} at {} area(s):\n{}\n", best.policy, best.nareas, best.swiotlb_param());
}

int run_size(const SizeCliOptions& o) {
  sim::SizingOptions options;
  if (!o.ram.empty()) {
    options.ram_bytes = parse_bytes(o.ram);
    if (!options.ram_bytes) {
      fmt::print(stderr,
                 "swiotlb: error: --ram '{}' is not a byte count that fits 64 bits (e.g. "
                 "17179869184, 16G)\n",
                 quote_prefix(o.ram));
      return 2;
    }
  }
  sim::ParseOptions parse;
  parse.skip_bad = o.skip_bad;
  Result<sim::Trace> trace = sim::load_trace(o.path, parse);
  if (!trace) {
    return report_error(trace.error());
  }
  if (trace->bad_line_count != 0) {
    fmt::print(stderr, "swiotlb: skipped {} line(s) that do not parse\n", trace->bad_line_count);
  }
  options.policies = o.policies;
  options.area_counts = o.area_counts;
  const std::optional<std::uint32_t> margin = parse_percent(o.margin);
  if (!margin) {
    fmt::print(stderr, "swiotlb: error: --margin '{}' is not a percentage from 0 to {}\n", o.margin,
               kMaxMarginPercent);
    return 2;
  }
  options.margin_percent = *margin;
  options.flags = sim::recorded_swiotlb_flags(*trace, o.cmdline);
  sim::TerminalProgress progress("size");
  options.progress = progress.callback();
  options.on_try = [&progress](const std::string& policy, std::uint32_t nareas,
                               std::uint64_t nslabs) {
    progress.set_stage(fmt::format("size {} nareas={} nslabs={}", policy, nareas, nslabs));
  };
  Result<sim::SizingReport> report = sim::size_pool(*trace, options);
  progress.finish();
  if (!report) {
    fmt::print(stderr, "swiotlb: error: {}: {}\n", o.path, report.error().message());
    return exit_code_for(report.error());
  }
  if (o.json) {
    fmt::print("{}\n", sim::to_json(*report).dump(2));
  } else {
    print_report(o.path, *trace, *report, options.ram_bytes);
  }
  return 0;
}

}  // namespace

void add_size_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<SizeCliOptions>();
  CLI::App* cmd = app.add_subcommand("size", "Find the smallest pool that serves a trace");
  cmd->add_option("trace", o->path, "The trace file (trace v1)")->required();
  cmd->add_option("--ram", o->ram,
                  "The guest's RAM (bytes, or with K/M/G/T), to compare with a confidential "
                  "guest's default pool");
  cmd->add_option("--policy", o->policies,
                  "Size for this policy only (repeatable; default: linux and linux-6.1)");
  cmd->add_option("--nareas", o->area_counts,
                  "Size for this many areas (repeatable; default: the trace's)")
      ->check(whole_number(1, UINT32_MAX));
  cmd->add_option("--margin", o->margin,
                  "Head room in the swiotlb= advice, percent of the smallest size (\"25\" or "
                  "\"25%\"; default 0)");
  cmd->add_option("--cmdline", o->cmdline,
                  "The kernel command line the trace was recorded under, for its swiotlb= flags "
                  "(default: any swiotlb= in the trace's comments)");
  cmd->add_flag("--skip-bad", o->skip_bad, "Skip lines that do not parse");
  cmd->add_flag("--json", o->json, "Print the report as JSON");
  cmd->callback([o, exit_code] { *exit_code = run_size(*o); });
}

}  // namespace swiotlb::cli
