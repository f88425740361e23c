// `swiotlb`: inspect a configuration, run the demo workload, benchmark,
// replay and size from kernel traces, and work with IOVA domains.
//
// Exit codes, the same for every subcommand (README.md): 0 success, 1 the
// job ran and found a problem, 2 bad input or usage, 3 a system error. No
// exception leaves main: one that escapes a command becomes a message and 3.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>

#include "cli_limits.h"
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

namespace {

// A hidden subcommand that throws, so that a test can show what main does
// with an exception no command caught. Not listed in --help.
void add_internal_throw_command(CLI::App& app) {
  auto kind = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("internal-test-throw", "");
  cmd->group("");
  cmd->add_option("kind", *kind)->required();
  cmd->callback([kind] {
    if (*kind == "bad_alloc") {
      throw std::bad_alloc();
    }
    if (*kind == "runtime") {
      throw std::runtime_error("thrown on purpose by internal-test-throw");
    }
    throw 42;  // NOLINT(hicpp-exception-baseclass): something that is not a std::exception
  });
}

int run(int argc, char** argv) {
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
  add_internal_throw_command(app);
  // A first word that is no subcommand is named (CLI11 would only say that
  // a subcommand is required).
  if (argc > 1 && argv[1][0] != '-') {
    bool found = false;
    std::string known;
    for (const CLI::App* sub : app.get_subcommands({})) {
      found = found || sub->get_name() == argv[1];
      if (!sub->get_group().empty()) {
        known += (known.empty() ? "" : ", ") + sub->get_name();
      }
    }
    if (!found) {
      fmt::print(stderr, "swiotlb: error: unknown command '{}' (known: {})\n", argv[1], known);
      return swiotlb::cli::kExitBadInput;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help: printed, and a success
  } catch (const CLI::ParseError& e) {
    // Every other parse error is a usage error, whatever CLI11's own code.
    fmt::print(stderr, "swiotlb: error: {}\nRun with --help for more information.\n", e.what());
    return swiotlb::cli::kExitBadInput;
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::bad_alloc&) {
    // Nothing is left to tell if stderr fails too: the exit status says it.
    (void)std::fputs("swiotlb: error: out of memory\n", stderr);
  } catch (const std::exception& e) {
    fmt::print(stderr, "swiotlb: error: unexpected failure: {}\n", e.what());
  } catch (...) {
    (void)std::fputs("swiotlb: error: unexpected failure (an unknown exception)\n", stderr);
  }
  return swiotlb::cli::kExitSystemError;
}
