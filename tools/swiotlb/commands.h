// The subcommands of `swiotlb`. Each adds itself to the app and, when it is
// the one chosen, stores the process exit status in *exit_code.
#pragma once

#include <CLI/CLI.hpp>

namespace swiotlb::cli {

void add_info_command(CLI::App& app, int* exit_code);
void add_demo_command(CLI::App& app, int* exit_code);
void add_bench_command(CLI::App& app, int* exit_code);
void add_iova_command(CLI::App& app, int* exit_code);
void add_replay_command(CLI::App& app, int* exit_code);
void add_size_command(CLI::App& app, int* exit_code);
void add_workload_command(CLI::App& app, int* exit_code);
void add_io_command(CLI::App& app, int* exit_code);
void add_report_command(CLI::App& app, int* exit_code);

}  // namespace swiotlb::cli
