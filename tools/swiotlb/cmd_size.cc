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
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli_limits.h"
#include "commands.h"
#include "swiotlb/sim/progress.h"
#include "swiotlb/sim/report_json.h"
#include "swiotlb/sim/sizing.h"
#include "swiotlb/sim/trace_parser.h"

namespace swiotlb::cli {
namespace {

struct SizeCliOptions {
  std::string path;
  std::string ram;
  std::vector<std::string> policies;
  std::uint32_t nareas = 0;
  bool skip_bad = false;
  bool json = false;
  CLI::Option* nareas_option = nullptr;
};

// "17179869184", "16G", "16GiB", "512M": binary units.
std::optional<std::uint64_t> parse_bytes(std::string text) {
  for (const char* suffix : {"iB", "B"}) {
    const std::string s(suffix);
    if (text.size() > s.size() && text.compare(text.size() - s.size(), s.size(), s) == 0) {
      text.resize(text.size() - s.size());
      break;
    }
  }
  unsigned shift = 0;
  if (!text.empty()) {
    const std::string units = "KMGT";
    const std::size_t unit = units.find(static_cast<char>(std::toupper(text.back())));
    if (unit != std::string::npos) {
      shift = 10 * static_cast<unsigned>(unit + 1);
      text.pop_back();
    }
  }
  Result<std::uint64_t> parsed = parse_count(text, std::numeric_limits<std::uint64_t>::max());
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || !parsed) {
    return std::nullopt;
  }
  const std::uint64_t value = *parsed;
  if (value > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
    return std::nullopt;
  }
  return value << shift;
}

std::string mib(std::uint64_t bytes) {
  return bytes % (1 << 20) == 0 ? fmt::format("{} MiB", bytes >> 20)
                                : fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

std::string signed_mib(std::int64_t bytes) {
  return bytes < 0 ? "-" + mib(static_cast<std::uint64_t>(-bytes))
                   : mib(static_cast<std::uint64_t>(bytes));
}

void print_policy(const sim::PolicySize& s) {
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
  fmt::print("  {:<10} {:>8} slots ({:>8})  {:<18} peak demand {} slots, {} replay(s)\n", s.policy,
             s.nslabs, mib(s.bytes()), s.swiotlb_param(), s.peak_demand_slots, s.replays);
  if (s.first_failure_below) {
    fmt::print("  {:<10} one step below, {} slots, fails at line {} (a map of {} bytes)\n", "",
               s.below_nslabs, s.first_failure_below->line, s.first_failure_below->size);
  }
}

void print_report(const std::string& path, const sim::SizingReport& r,
                  const std::optional<std::uint64_t>& ram) {
  fmt::print("sizing for {} ({} area(s)): smallest pool with no failed map\n", path, r.nareas);
  for (const sim::PolicySize& size : r.sizes) {
    print_policy(size);
  }
  fmt::print("dynamic growth:    would peak at {} slots = {} in {} MiB chunks\n",
             r.dynamic_peak_slots, mib(r.dynamic_peak_bytes), sim::kGrowthChunkBytes >> 20);
  const sim::PolicySize& best = r.recommended();
  if (!best.found) {
    return;
  }
  const auto saved = [&](std::uint64_t theirs) {
    return signed_mib(static_cast<std::int64_t>(theirs) - static_cast<std::int64_t>(best.bytes()));
  };
  fmt::print("saved vs default:  {} (kernel default {})\n", saved(r.default_bytes),
             mib(r.default_bytes));
  if (r.coco_default_bytes) {
    fmt::print("saved vs CoCo:     {} (confidential guest default {} for {} of RAM)\n",
               saved(*r.coco_default_bytes), mib(*r.coco_default_bytes), mib(*ram));
  }
  fmt::print("# for {}:\n{}\n", best.policy, best.swiotlb_param());
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
  if (o.nareas_option->count() != 0) {
    options.nareas = o.nareas;
  }
  sim::TerminalProgress progress("size");
  options.progress = progress.callback();
  Result<sim::SizingReport> report = sim::size_pool(*trace, options);
  progress.finish();
  if (!report) {
    fmt::print(stderr, "swiotlb: error: {}: {}\n", o.path, report.error().message());
    return exit_code_for(report.error());
  }
  if (o.json) {
    fmt::print("{}\n", sim::to_json(*report).dump(2));
  } else {
    print_report(o.path, *report, options.ram_bytes);
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
  o->nareas_option = cmd->add_option("--nareas", o->nareas, "Areas (default: the trace's)")
                         ->check(whole_number(0, UINT32_MAX));
  cmd->add_flag("--skip-bad", o->skip_bad, "Skip lines that do not parse");
  cmd->add_flag("--json", o->json, "Print the report as JSON");
  cmd->callback([o, exit_code] { *exit_code = run_size(*o); });
}

}  // namespace swiotlb::cli
