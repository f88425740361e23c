// `swiotlb demo`: a short mixed workload through the DMA API on a default
// pool, checking every byte that crosses it, then the pool's statistics.
//
// Two devices share the pool: a legacy NIC with a 32-bit mask (it bounces
// because it cannot reach the buffers) and an NVMe disk with
// min_align_mask 0xfff (it bounces because the pool forces it, and its
// bounce addresses must keep the low 12 bits of the buffers). Each transfer
// plays the device's part through the device address alone: it checks what
// the CPU sent and writes what it returns, then the CPU checks what came
// back. The exit status is 0 only if every byte arrived.
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "swiotlb/core/config.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/dma/dma_api.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/platform/cpu.h"

namespace swiotlb::cli {

namespace {

struct DemoOptions {
  std::string cmdline = "swiotlb=force";
  std::uint64_t transfers = 4000;
  std::uint64_t seed = 1;
  std::uint32_t queue_depth = 32;
  bool json = false;
};

struct Transfer {
  Device* dev = nullptr;
  std::vector<std::byte> storage;
  std::size_t offset = 0;
  std::uint64_t size = 0;
  Direction dir = Direction::to_device;
  DmaAddr dma;
  std::byte* data() { return storage.data() + offset; }
};

struct Tally {
  std::uint64_t transfers = 0;
  std::uint64_t bytes_checked = 0;
  std::uint64_t bad_bytes = 0;
  std::uint64_t map_failures = 0;
  std::uint64_t api_errors = 0;
};

std::byte* device_view(DmaAddr addr) {
  return static_cast<std::byte*>(PhysAddr(addr.value()).to_pointer());
}

std::byte fill_byte(std::uint64_t seed, std::uint64_t i) {
  return static_cast<std::byte>((seed * 0x9e37 + i * 13 + (i >> 9)) & 0xff);
}

std::uint64_t count_mismatches(const std::byte* a, const std::byte* b, std::uint64_t n) {
  std::uint64_t bad = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    bad += a[i] != b[i] ? 1 : 0;
  }
  return bad;
}

// The device's side: read what was sent, write what it returns.
void play_device(Transfer& t, std::uint64_t tag, Tally& tally) {
  std::byte* seen = device_view(t.dma);
  if (copies_to_device(t.dir)) {
    tally.bad_bytes += count_mismatches(seen, t.data(), t.size);
    tally.bytes_checked += t.size;
  }
  if (copies_from_device(t.dir)) {
    for (std::uint64_t i = 0; i < t.size; ++i) {
      seen[i] = fill_byte(tag, i);
    }
  }
}

void check_returned(Transfer& t, std::uint64_t tag, Tally& tally) {
  if (!copies_from_device(t.dir)) {
    return;
  }
  std::vector<std::byte> expected(t.size);
  for (std::uint64_t i = 0; i < t.size; ++i) {
    expected[i] = fill_byte(tag, i);
  }
  tally.bad_bytes += count_mismatches(t.data(), expected.data(), t.size);
  tally.bytes_checked += t.size;
}

Transfer make_transfer(std::mt19937_64& rng, Device* dev, std::uint64_t max_size) {
  static const std::uint64_t kSizes[] = {512, 1024, 1500, 4096, 8192, 16384, 65536, 131072,
                                         262144};
  static const Direction kDirs[] = {Direction::to_device, Direction::from_device,
                                    Direction::bidirectional};
  Transfer t;
  t.dev = dev;
  t.size = std::min(kSizes[rng() % std::size(kSizes)], max_size);
  t.dir = kDirs[rng() % std::size(kDirs)];
  t.offset = rng() % 4096;
  t.storage.resize(t.offset + t.size);
  for (std::uint64_t i = 0; i < t.size; ++i) {
    t.data()[i] = fill_byte(rng(), i);
  }
  return t;
}

void finish(Transfer& t, std::uint64_t tag, Tally& tally) {
  play_device(t, tag, tally);
  if (!unmap_single(*t.dev, t.dma, t.size, t.dir)) {
    ++tally.api_errors;
    return;
  }
  check_returned(t, tag, tally);
  ++tally.transfers;
}

void run_workload(const DemoOptions& options, Device& nic, Device& nvme, Tally& tally) {
  std::mt19937_64 rng(options.seed);
  std::deque<std::pair<Transfer, std::uint64_t>> in_flight;
  for (std::uint64_t n = 0; n < options.transfers; ++n) {
    Device* dev = (rng() & 1) != 0 ? &nic : &nvme;
    Transfer t = make_transfer(rng, dev, max_mapping_size(*dev));
    Result<DmaAddr> dma = map_single(*dev, t.data(), t.size, t.dir);
    if (!dma) {
      ++tally.map_failures;
    } else {
      t.dma = *dma;
      in_flight.emplace_back(std::move(t), n);
    }
    if (in_flight.size() >= options.queue_depth || n + 1 == options.transfers) {
      while (!in_flight.empty()) {
        finish(in_flight.front().first, in_flight.front().second, tally);
        in_flight.pop_front();
      }
    }
  }
}

// One coherent ring and one scatter-gather list, to show the other calls.
void run_extras(Device& nvme, Tally& tally) {
  Result<CoherentBuffer> ring = alloc_coherent(nvme, 16384);
  if (!ring || !free_coherent(nvme, *ring)) {
    ++tally.api_errors;
  }
  std::vector<std::vector<std::byte>> pieces(4, std::vector<std::byte>(4096, std::byte{0x5a}));
  std::vector<ScatterEntry> sg;
  for (auto& p : pieces) {
    sg.push_back({PhysAddr::from_pointer(p.data()), 4096, {}, 0});
  }
  Result<std::size_t> mapped = map_sg(nvme, sg, Direction::to_device);
  if (!mapped) {
    ++tally.api_errors;
    return;
  }
  for (const ScatterEntry& e : sg) {
    tally.bad_bytes += count_mismatches(device_view(e.dma_address), pieces[0].data(), 4096);
    tally.bytes_checked += 4096;
  }
  if (!unmap_sg(nvme, sg, Direction::to_device)) {
    ++tally.api_errors;
  }
}

nlohmann::json device_json(const Device& dev) {
  const DeviceStats s = dev.stats();
  return {{"name", dev.name()},
          {"dma_mask", dev.config().dma_mask},
          {"min_align_mask", dev.config().min_align_mask},
          {"map_failures", s.map_failures},
          {"debug_errors", s.debug_errors}};
}

int run_demo(const DemoOptions& options) {
  Result<SwiotlbConfig> config = parse_swiotlb_config(options.cmdline, cpu_count());
  if (!config) {
    fmt::print(stderr, "swiotlb: error: {}\n", config.error().message());
    return 2;
  }
  Result<IoTlbOptions> tlb_options = IoTlbOptions::from_config(*config);
  Result<std::unique_ptr<IoTlb>> io_tlb =
      tlb_options ? IoTlb::create(*tlb_options) : Result<std::unique_ptr<IoTlb>>(tlb_options.error());
  if (!io_tlb) {
    fmt::print(stderr, "swiotlb: error: {}\n", io_tlb.error().message());
    return 2;
  }
  auto nic = Device::create({.name = "legacy-nic", .dma_mask = 0xffffffff}, io_tlb->get());
  auto nvme = Device::create({.name = "nvme", .min_align_mask = 0xfff}, io_tlb->get());
  if (!nic || !nvme) {
    fmt::print(stderr, "swiotlb: error: cannot create the demo devices\n");
    return 2;
  }
  Tally tally;
  run_workload(options, **nic, **nvme, tally);
  run_extras(**nvme, tally);
  const bool ok = tally.bad_bytes == 0 && tally.api_errors == 0 && (*nic)->close() &&
                  (*nvme)->close();
  if (options.json) {
    nlohmann::json out = {{"ok", ok},
                          {"transfers", tally.transfers},
                          {"bytes_checked", tally.bytes_checked},
                          {"bad_bytes", tally.bad_bytes},
                          {"map_failures", tally.map_failures},
                          {"api_errors", tally.api_errors},
                          {"pool", (*io_tlb)->to_json()},
                          {"devices", {device_json(**nic), device_json(**nvme)}}};
    fmt::print("{}\n", out.dump(2));
  } else {
    fmt::print("{}\n", (*io_tlb)->boot_line());
    fmt::print("{} transfers, {} bytes checked, {} wrong, {} maps refused (pool full)\n",
               tally.transfers, tally.bytes_checked, tally.bad_bytes, tally.map_failures);
    fmt::print("{}", (*io_tlb)->debugfs_text());
    fmt::print("{}\n", ok ? "every byte round-tripped" : "DATA MISMATCH");
  }
  return ok ? 0 : 1;
}

}  // namespace

void add_demo_command(CLI::App& app, int* exit_code) {
  auto options = std::make_shared<DemoOptions>();
  CLI::App* cmd = app.add_subcommand("demo", "Run a mixed workload through a default pool, "
                                             "checking every byte");
  cmd->add_option("--cmdline", options->cmdline, "the pool's swiotlb= parameter")
      ->capture_default_str();
  cmd->add_option("--transfers", options->transfers, "how many transfers")->capture_default_str();
  cmd->add_option("--seed", options->seed, "seed of the workload")->capture_default_str();
  cmd->add_option("--queue-depth", options->queue_depth, "transfers in flight at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_flag("--json", options->json, "print the result as JSON");
  cmd->callback([options, exit_code] { *exit_code = run_demo(*options); });
}

}  // namespace swiotlb::cli
