// `swiotlb report TRACE... -o report.html`: one self-contained HTML page
// with plots of each trace's replay and the sizing advice (report_html.h).
//
// Exit status: 0 when the page was written, 1 when a trace cannot be read
// or reported or the page cannot be written, 2 for a malformed option.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "progress.h"
#include "report_data.h"
#include "report_html.h"
#include "report_units.h"

namespace swiotlb::cli {
namespace {

struct ReportCliOptions {
  std::vector<std::string> paths;
  std::string output;
  std::string policies;
  std::vector<std::uint32_t> area_counts;
  std::string margin = "25";
  std::string ram;
  std::string cmdline;
  bool skip_bad = false;
};

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) {
      out.push_back(item);
    }
  }
  return out;
}

// How the page was made, for its foot: the options that change it.
std::string describe_command(const ReportCliOptions& o) {
  std::string text = "swiotlb report";
  for (const std::string& path : o.paths) {
    text += " " + path;
  }
  if (!o.policies.empty()) {
    text += " --policy " + o.policies;
  }
  for (const std::uint32_t n : o.area_counts) {
    text += fmt::format(" --nareas {}", n);
  }
  text += " --margin " + o.margin + (o.margin.ends_with('%') ? "" : "%");
  if (!o.ram.empty()) {
    text += " --ram " + o.ram;
  }
  return text;
}

int run_report(const ReportCliOptions& o) {
  ReportOptions options;
  const std::optional<std::uint32_t> margin = parse_percent(o.margin);
  if (!margin) {
    fmt::print(stderr, "swiotlb: error: --margin '{}' is not a percentage from 0 to {}\n", o.margin,
               kMaxMarginPercent);
    return 2;
  }
  options.margin_percent = *margin;
  if (!o.ram.empty()) {
    options.ram_bytes = parse_bytes(o.ram);
    if (!options.ram_bytes) {
      fmt::print(stderr, "swiotlb: error: --ram '{}' is not a byte count (e.g. 17179869184, 16G)\n",
                 o.ram);
      return 2;
    }
  }
  options.policies = split_commas(o.policies);
  options.area_counts = o.area_counts;
  options.cmdline = o.cmdline;
  options.skip_bad = o.skip_bad;
  sim::TerminalProgress progress("report");
  options.progress = &progress;

  std::vector<TraceReport> reports;
  for (const std::string& path : o.paths) {
    Result<TraceReport> report = build_trace_report(path, options);
    if (!report) {
      progress.finish();
      fmt::print(stderr, "swiotlb: error: {}: {}\n", path, report.error().message());
      return 1;
    }
    reports.push_back(std::move(*report));
  }
  progress.set_stage("report: writing " + o.output);
  PageOptions page;
  page.margin_percent = options.margin_percent;
  page.ram_bytes = options.ram_bytes;
  page.command_line = describe_command(o);
  const std::string html = render_report_page(reports, page);
  progress.finish();
  std::ofstream out(o.output, std::ios::binary | std::ios::trunc);
  out << html;
  out.close();
  if (!out) {
    fmt::print(stderr, "swiotlb: error: cannot write {}\n", o.output);
    return 1;
  }
  fmt::print("wrote {} ({} KiB, {} trace(s))\n", o.output, (html.size() + 1023) / 1024,
             reports.size());
  return 0;
}

}  // namespace

void add_report_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ReportCliOptions>();
  CLI::App* cmd =
      app.add_subcommand("report", "Write an HTML page of plots and sizing advice for traces");
  cmd->add_option("trace", o->paths, "Trace files (trace v1)")->required();
  cmd->add_option("-o,--output", o->output, "The HTML file to write")->required();
  cmd->add_option("--policy", o->policies,
                  "Policies, comma separated (default: linux-6.1,linux,fast)");
  cmd->add_option("--nareas", o->area_counts,
                  "Area counts to size for (repeatable; default: the trace's, and 4)");
  cmd->add_option("--margin", o->margin, "Head room in the swiotlb= advice (default 25%)");
  cmd->add_option("--ram", o->ram,
                  "The guest's RAM (bytes, or with K/M/G/T), to compare with a confidential "
                  "guest's default pool");
  cmd->add_option("--cmdline", o->cmdline,
                  "The kernel command line the trace was recorded under, for its swiotlb= flags");
  cmd->add_flag("--skip-bad", o->skip_bad, "Skip lines that do not parse");
  cmd->callback([o, exit_code] { *exit_code = run_report(*o); });
}

}  // namespace swiotlb::cli
