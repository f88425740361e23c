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

#include "cli_limits.h"
#include "commands.h"

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
  app.require_subcommand(1);
  int exit_code = 0;
  swiotlb::cli::add_info_command(app, &exit_code);
  swiotlb::cli::add_demo_command(app, &exit_code);
  swiotlb::cli::add_bench_command(app, &exit_code);
  swiotlb::cli::add_iova_command(app, &exit_code);
  swiotlb::cli::add_replay_command(app, &exit_code);
  swiotlb::cli::add_size_command(app, &exit_code);
  swiotlb::cli::add_workload_command(app, &exit_code);
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
    std::fputs("swiotlb: error: out of memory\n", stderr);
  } catch (const std::exception& e) {
    fmt::print(stderr, "swiotlb: error: unexpected failure: {}\n", e.what());
  } catch (...) {
    std::fputs("swiotlb: error: unexpected failure (an unknown exception)\n", stderr);
  }
  return swiotlb::cli::kExitSystemError;
}
