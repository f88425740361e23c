// `swiotlb info`: shows the pool a `swiotlb=` configuration gives, in the
// words the kernel prints at boot, or as JSON for scripts. Nothing is
// allocated; the pool's address is the addr= asked for, or 0 when the
// placement is left to run time.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_limits.h"
#include "commands.h"
#include "swiotlb/core/config.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/platform/cpu.h"

namespace swiotlb::cli {
namespace {

struct InfoOptions {
  std::string cmdline;
  unsigned cpus = 0;
  bool json = false;
};

// The pool's start and end as the kernel keeps them (io_tlb_mem start and
// end: end is one past the last byte, and that is what its boot line prints).
struct Extent {
  std::uint64_t start = 0;
  std::uint64_t end = 0;
};

Extent extent_of(const SwiotlbConfig& config) {
  const std::uint64_t start = config.addr.value_or(0);
  return {start, start + config.bytes()};
}

nlohmann::json to_json(const SwiotlbConfig& config) {
  const Extent extent = extent_of(config);
  nlohmann::json out;
  out["nslabs"] = config.nslabs;
  out["nareas"] = config.nareas;
  out["bytes"] = config.bytes();
  out["force"] = config.force == ForceMode::force;
  out["force_mode"] = std::string(to_string(config.force));
  out["start"] = extent.start;
  out["end"] = extent.end;
  out["addr"] = config.addr ? nlohmann::json(*config.addr) : nlohmann::json(nullptr);
  out["high_nslabs"] = config.high_nslabs.value_or(0);
  out["high_nareas"] = config.high_nslabs ? config.high_nareas : 0;
  out["warnings"] = config.warnings;
  return out;
}

void print_boot_lines(const SwiotlbConfig& config) {
  fmt::print("software IO TLB: area num {}.\n", config.nareas);
  const std::uint64_t asked =
      kernel_align(config.requested_nslabs.value_or(config.nslabs), kSegmentSlots);
  if (config.nslabs != asked) {
    fmt::print("software IO TLB: SWIOTLB bounce buffer size roundup to {}MB\n",
               config.bytes() >> 20);
  }
  if (config.force == ForceMode::noforce) {
    fmt::print("software IO TLB: disabled by noforce: no pool is allocated\n");
  } else {
    const Extent extent = extent_of(config);
    fmt::print("software IO TLB: mapped [mem {:#018x}-{:#018x}] ({}MB){}\n", extent.start,
               extent.end, config.bytes() >> 20, config.addr ? "" : " (placed at run time)");
  }
  fmt::print("swiotlb: nslabs {}, nareas {} ({} slots each), force mode {}\n", config.nslabs,
             config.nareas, config.nslabs / config.nareas, to_string(config.force));
  if (config.high_nslabs) {
    fmt::print("swiotlb: high pool: nslabs {}, nareas {} ({}MB, placed at run time)\n",
               *config.high_nslabs, config.high_nareas, (*config.high_nslabs << kSlotShift) >> 20);
  }
}

// With addr=, the pool is really placed there (and then let go), so that
// an address that is taken, misaligned or too small is found now.
Status place_fixed_pool(const SwiotlbConfig& config) {
  Result<IoTlbOptions> options = IoTlbOptions::from_config(config);
  if (!options) {
    return options.error();
  }
  Result<std::unique_ptr<IoTlb>> pool = IoTlb::create(*options);
  if (!pool) {
    return pool.error();
  }
  if ((*pool)->enabled() && (*pool)->start().value() != *config.addr) {
    return make_error(Errc::system, "the pool landed at {:#x}, not at {:#x}",
                      (*pool)->start().value(), *config.addr);
  }
  return {};
}

int run_info(const InfoOptions& options) {
  Result<SwiotlbConfig> config = parse_swiotlb_config(options.cmdline, options.cpus);
  if (!config) {
    fmt::print(stderr, "swiotlb: error: {}\n", config.error().message());
    return 2;
  }
  if (config->addr && config->force != ForceMode::noforce) {
    if (Status placed = place_fixed_pool(*config); !placed) {
      fmt::print(stderr, "swiotlb: error: cannot place the pool at {:#x}: {}\n", *config->addr,
                 placed.error().message());
      return kExitBadInput;  // the addr= asked for cannot be had here
    }
  }
  for (const std::string& warning : config->warnings) {
    fmt::print(stderr, "swiotlb: warning: {}\n", warning);
  }
  if (options.json) {
    fmt::print("{}\n", to_json(*config).dump(2));
  } else {
    print_boot_lines(*config);
  }
  return 0;
}

}  // namespace

void add_info_command(CLI::App& app, int* exit_code) {
  // Owned by the callback, which CLI11 keeps alive as long as the app.
  auto options = std::make_shared<InfoOptions>();
  options->cpus = cpu_count();
  CLI::App* info = app.add_subcommand("info", "Show the pool a swiotlb= configuration gives");
  info->add_option("--cmdline", options->cmdline,
                   "A swiotlb= value, word, or whole kernel command line");
  info->add_option("--cpus", options->cpus, "CPUs, which set nareas when the command line does not")
      ->capture_default_str()
      ->check(whole_number(1, kMaxCpus));
  info->add_flag("--json", options->json, "Print JSON instead of the kernel's boot lines");
  info->callback([options, exit_code] { *exit_code = run_info(*options); });
}

}  // namespace swiotlb::cli
