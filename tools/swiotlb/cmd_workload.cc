// `swiotlb workload`: writes a synthetic trace (trace v1) from one of the
// device models of docs/trace-format.md, for replay and sizing when no kernel
// trace is at hand. The same options give the same file.
//
// Exit status (README.md): 0 when the trace was written, 2 for a bad option
// value, 3 when the file could not be written.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "cli_limits.h"
#include "commands.h"
#include "swiotlb/sim/trace_writer.h"
#include "swiotlb/sim/workload.h"

namespace swiotlb::cli {
namespace {

struct WorkloadCliOptions {
  std::string profile = "mixed";
  std::uint64_t events = 100000;
  std::uint64_t seed = 1;
  std::uint32_t cpus = 4;
  std::string output = "-";
};

int run_workload(const WorkloadCliOptions& o) {
  const std::optional<sim::WorkloadProfile> profile = sim::workload_profile_from_string(o.profile);
  if (!profile) {
    fmt::print(stderr, "swiotlb: error: unknown profile '{}' (known: {})\n", o.profile,
               sim::workload_profile_names());
    return 2;
  }
  sim::WorkloadOptions options;
  options.profile = *profile;
  options.events = o.events;
  options.seed = o.seed;
  options.cpus = o.cpus;
  Result<sim::Trace> trace = sim::generate_workload(options);
  if (!trace) {
    fmt::print(stderr, "swiotlb: error: {}\n", trace.error().message());
    return 2;
  }
  if (Status written = sim::write_trace(*trace, o.output); !written) {
    return report_error(written.error());
  }
  return 0;
}

}  // namespace

void add_workload_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<WorkloadCliOptions>();
  CLI::App* cmd = app.add_subcommand("workload", "Write a synthetic trace from a device model");
  cmd->add_option("--profile", o->profile, "nvme, virtio-blk, network or mixed")
      ->capture_default_str();
  cmd->add_option("--events", o->events, "About this many events")
      ->capture_default_str()
      ->check(whole_number(0, kMaxWorkloadEvents));
  cmd->add_option("--seed", o->seed, "Random seed")
      ->capture_default_str()
      ->check(whole_number(0, UINT64_MAX));
  cmd->add_option("--cpus", o->cpus, "CPUs, each with its own queues (a power of two)")
      ->capture_default_str()
      ->check(whole_number(1, kMaxCpus));
  cmd->add_option("-o,--output", o->output, "Output file ('-': standard output)")
      ->capture_default_str();
  cmd->callback([o, exit_code] { *exit_code = run_workload(*o); });
}

}  // namespace swiotlb::cli
