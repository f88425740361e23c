// `swiotlb iova`: the reserved IOVA regions of a device behind an IOMMU, in
// the kernel's sysfs reserved_regions format, and the valid IOVA ranges left
// for a VFIO-style user, from its DMA mask and its host bridge's windows.
// `swiotlb iova replay TRACE`: replays an IOVA trace through kernel-exact
// domains and reports how often they chose the kernel's pfn.
//
// Errors go to stderr as "swiotlb: error: <msg>" with exit status 2 (bad
// input) or 3 (the trace cannot be read), as README.md lists.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "cli_limits.h"
#include "commands.h"
#include "swiotlb/iova/aperture.h"
#include "swiotlb/iova/device_domain.h"
#include "swiotlb/iova/dma_window.h"
#include "swiotlb/iova/iova_replay.h"
#include "swiotlb/iova/iova_trace.h"
#include "swiotlb/iova/reserved_regions.h"
#include "swiotlb/iova/reserved_regions_json.h"

namespace swiotlb::cli {
namespace {

using namespace swiotlb::iova;

struct RegionsArgs {
  std::string dma_ranges;
  std::string mmio;
  std::string mask_bits = "64";
  std::string bus_limit = "0";
  std::string msi = "0xfee00000-0xfeefffff";
  bool no_msi = false;
  bool json = false;
};

struct ReplayArgs {
  std::string trace;
  std::string cpus;
  bool json = false;
};

int fail(const std::string& message) {
  fmt::print(stderr, "swiotlb: error: {}\n", message);
  return 2;
}

// Builds the device description the options give.
Result<DeviceIovaSpec> spec_from(const RegionsArgs& args) {
  DeviceIovaSpec spec;
  Result<std::uint64_t> bits = parse_dma_number(args.mask_bits, "--mask-bits");
  if (!bits) {
    return std::move(bits).error();
  }
  if (*bits == 0 || *bits > 64) {
    return make_error(Errc::invalid_argument, "--mask-bits {} is outside [1, 64]", *bits);
  }
  spec.mask_bits = static_cast<unsigned>(*bits);
  Result<std::uint64_t> bus_limit = parse_dma_number(args.bus_limit, "--bus-limit");
  if (!bus_limit) {
    return std::move(bus_limit).error();
  }
  spec.bus_dma_limit = *bus_limit;
  Result<std::vector<DmaWindow>> inbound = parse_dma_windows(args.dma_ranges);
  Result<std::vector<DmaWindow>> outbound = parse_dma_windows(args.mmio);
  Result<std::vector<DmaWindow>> msi = parse_dma_windows(args.no_msi ? "" : args.msi);
  if (!inbound || !outbound || !msi) {
    const Error& e = !inbound ? inbound.error() : !outbound ? outbound.error() : msi.error();
    return make_error(e.code(), "{} ({})", e.message(),
                      !inbound    ? "--dma-ranges"
                      : !outbound ? "--mmio"
                                  : "--msi");
  }
  spec.inbound = std::move(*inbound);
  spec.outbound = std::move(*outbound);
  for (const DmaWindow& window : *msi) {
    spec.regions.push_back({window.start, window.end, ReservedType::msi});
  }
  return spec;
}

int run_regions(const RegionsArgs& args) {
  Result<DeviceIovaSpec> spec = spec_from(args);
  if (!spec) {
    return fail(spec.error().message());
  }
  Result<std::vector<ReservedRegion>> regions = device_reserved_regions(*spec);
  if (!regions) {
    return fail(regions.error().message());
  }
  const std::uint64_t top = *device_dma_limit(spec->mask_bits, spec->bus_dma_limit);
  const std::vector<DmaWindow> valid = valid_iova_ranges({0, top}, *regions);
  if (args.json) {
    const nlohmann::json out = {
        {"aperture", dma_windows_json({{0, top}})[0]},
        {"reserved_regions", reserved_regions_json(*regions)},
        {"valid_ranges", dma_windows_json(valid)},
    };
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  fmt::print("reserved_regions:\n{}", format_reserved_regions(*regions));
  fmt::print("valid_ranges:\n");
  for (const DmaWindow& range : valid) {
    fmt::print("{:#018x} {:#018x}\n", range.start, range.end);
  }
  return 0;
}

int run_replay(const ReplayArgs& args) {
  IovaReplayOptions options;
  if (!args.cpus.empty()) {
    Result<std::uint64_t> cpus = parse_dma_number(args.cpus, "--cpus");
    if (!cpus || *cpus == 0 || *cpus > kMaxCpus) {
      return fail(cpus ? fmt::format("--cpus {} is outside [1, {}]", *cpus, kMaxCpus)
                       : cpus.error().message());
    }
    options.cpus = static_cast<unsigned>(*cpus);
  }
  Result<IovaTrace> trace = read_iova_trace(args.trace);
  if (!trace) {
    return report_error(trace.error());
  }
  Result<IovaReplayReport> report = replay_iova_trace(*trace, options);
  if (!report) {
    return fail(fmt::format("{}: {}", args.trace, report.error().message()));
  }
  if (args.json) {
    fmt::print("{}\n", to_json(*report).dump(2));
  } else {
    fmt::print("{}", format_replay_report(*report));
  }
  return 0;
}

}  // namespace

void add_iova_command(CLI::App& app, int* exit_code) {
  auto regions = std::make_shared<RegionsArgs>();
  auto replay_args = std::make_shared<ReplayArgs>();
  CLI::App* iova =
      app.add_subcommand("iova", "List a device's reserved IOVA regions and valid IOVA ranges");
  iova->add_option("--dma-ranges", regions->dma_ranges,
                   "Host bridge inbound windows: START-END[,START-END...], inclusive");
  iova->add_option("--mask-bits", regions->mask_bits, "The device's DMA mask width (default 64)");
  iova->add_option("--bus-limit", regions->bus_limit, "The bus's DMA limit, 0 for none");
  iova->add_option("--mmio", regions->mmio, "Host bridge outbound MMIO windows: START-END,...");
  iova->add_option("--msi", regions->msi, "MSI windows (default the x86 0xfee00000-0xfeefffff)");
  iova->add_flag("--no-msi", regions->no_msi, "No MSI window");
  iova->add_flag("--json", regions->json, "Print JSON");

  CLI::App* replay = iova->add_subcommand("replay", "Replay an IOVA trace on kernel-exact domains");
  replay->add_option("trace", replay_args->trace, "IOVA trace file (format v1)")->required();
  replay->add_option("--cpus", replay_args->cpus,
                     "CPUs per domain (default: highest in trace + 1)");
  replay->add_flag("--json", replay_args->json, "Print JSON");
  replay->callback([replay_args, exit_code] { *exit_code = run_replay(*replay_args); });

  iova->callback([replay, regions, exit_code] {
    if (replay->parsed()) {
      return;  // `iova replay` ran instead
    }
    *exit_code = run_regions(*regions);
  });
}

}  // namespace swiotlb::cli
