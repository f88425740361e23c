// `swiotlb`: inspect a configuration, run the demo workload, benchmark,
// replay and size from kernel traces, and work with IOVA domains.
#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

#include "commands.h"
#include "swiotlb/version.h"

namespace {

// Every subcommand's --help ends with an example a user can paste. A
// subcommand missing here has none, which tests/tools/help_test.cc catches.
struct Example {
  std::string_view command;
  std::string_view example;
};
constexpr Example kExamples[] = {
    {"info", "swiotlb info --cmdline 'swiotlb=32768,4,force'"},
    {"demo", "swiotlb demo --cmdline 'swiotlb=128' --transfers 1000"},
    {"bench", "swiotlb bench --filter 'map_unmap.*4096' --min-time 0.05"},
    {"iova", "swiotlb iova --mask-bits 32 --mmio 0xe0000000-0xefffffff"},
    {"iova replay", "swiotlb iova replay iova.trace --cpus 4 --json"},
    {"replay", "swiotlb workload --profile nvme -o nvme.trace && swiotlb replay nvme.trace"},
    {"size", "swiotlb workload --profile network -o net.trace && swiotlb size net.trace"},
    {"workload", "swiotlb workload --profile nvme --events 10000 --seed 7 -o nvme.trace"},
    {"report", "swiotlb report tests/data/linux-6.1-nvme-randrw-256k-qd32.trace -o report.html"},
    {"io", "swiotlb io --size 256M --bs 4k --qd 32 --rw randrw --verify"},
};

// Gives each subcommand (at any depth, named by its path: "iova replay")
// its example.
void add_examples(CLI::App& app, const std::string& path) {
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    const std::string name = path.empty() ? sub->get_name() : path + " " + sub->get_name();
    for (const Example& e : kExamples) {
      if (e.command == name) {
        sub->footer("Example:\n  " + std::string(e.example));
      }
    }
    add_examples(*sub, name);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"swiotlb: a software IO TLB for user space"};
  app.set_version_flag("--version", std::string("swiotlb ") + SWIOTLB_VERSION_STRING);
  app.require_subcommand(1);
  app.footer("Example:\n  swiotlb info --cmdline 'swiotlb=65536,8'");
  int exit_code = 0;
  swiotlb::cli::add_info_command(app, &exit_code);
  swiotlb::cli::add_demo_command(app, &exit_code);
  swiotlb::cli::add_bench_command(app, &exit_code);
  swiotlb::cli::add_iova_command(app, &exit_code);
  swiotlb::cli::add_replay_command(app, &exit_code);
  swiotlb::cli::add_size_command(app, &exit_code);
  swiotlb::cli::add_workload_command(app, &exit_code);
  swiotlb::cli::add_io_command(app, &exit_code);
  swiotlb::cli::add_report_command(app, &exit_code);
  add_examples(app, "");
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
