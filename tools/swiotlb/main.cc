// `swiotlb`: inspect a configuration, run the demo workload, benchmark,
// replay and size from kernel traces, and work with IOVA domains.
#include <CLI/CLI.hpp>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"swiotlb: a software IO TLB for user space"};
  app.require_subcommand(1);
  int exit_code = 0;
  swiotlb::cli::add_info_command(app, &exit_code);
  swiotlb::cli::add_demo_command(app, &exit_code);
  swiotlb::cli::add_bench_command(app, &exit_code);
  swiotlb::cli::add_iova_command(app, &exit_code);
  swiotlb::cli::add_replay_command(app, &exit_code);
  swiotlb::cli::add_size_command(app, &exit_code);
  swiotlb::cli::add_workload_command(app, &exit_code);
  swiotlb::cli::add_report_command(app, &exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
