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
//
// `swiotlb demo --shared` runs the shared-window exchange instead
// (docs/shared-window.md): the pool lives in a memfd, a device sees it, and
// only it, at DMA address 0x10000000, and the device's part is played by a
// second process, this program exec'd again with the hidden option
// `--device-socket N`. That process receives the memfd over a Unix socket,
// maps the window wherever its system puts it, and reaches the host's data
// through DMA addresses alone.
#include <fcntl.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "cli_limits.h"
#include "commands.h"
#include "swiotlb/core/config.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/dma/apply_op.h"
#include "swiotlb/dma/dma_api.h"
#include "swiotlb/dma/shared_window_backend.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/iotlb/io_tlb_json.h"
#include "swiotlb/platform/cpu.h"
#include "swiotlb/platform/fd_passing.h"
#include "swiotlb/platform/region.h"
#include "swiotlb/platform/shared_window.h"
#include "swiotlb/platform/window_protocol.h"

namespace swiotlb::cli {

namespace {

struct DemoOptions {
  std::string cmdline = "swiotlb=force";
  std::uint64_t transfers = 4000;
  std::uint64_t seed = 1;
  std::uint32_t queue_depth = 32;
  bool json = false;
  bool shared = false;  // the device is another process (docs/shared-window.md)
  bool grow = false;    // pools grow and full pools make transient ones (docs/growth.md)
  std::string
      device_memory;       // swiotlb_devmem=...: the pool in device memory (docs/device-memory.md)
  int device_socket = -1;  // set in that process: the socket to the host
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
  std::uint64_t lowest_dma = ~std::uint64_t{0};  // device addresses handed out
  std::uint64_t highest_dma = 0;
};

// What the device finds at a device address: the CPU memory its dma ranges
// translate the address to.
std::byte* device_view(const Device& dev, DmaAddr addr) {
  return static_cast<std::byte*>(dev.dma_to_phys(addr).to_pointer());
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
  std::byte* seen = device_view(*t.dev, t.dma);
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
  static constexpr std::uint64_t kSizes[] = {512,   1024,  1500,   4096,  8192,
                                             16384, 65536, 131072, 262144};
  static constexpr Direction kDirs[] = {Direction::to_device, Direction::from_device,
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
  const DeviceConfig& config = t.dev->config();
  if (!ops::apply(ops::Unmap{t.dma.value(), t.size, config.min_align_mask, t.dir, 0}, *t.dev)) {
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
    // Each transfer is a map op and, once the device is done, an unmap op
    // (ops/op.h), through the DMA API.
    ops::Map map;
    map.orig = PhysAddr::from_pointer(t.data()).value();
    map.size = t.size;
    map.min_align_mask = dev->config().min_align_mask;
    map.seg_boundary_mask = dev->config().seg_boundary_mask;
    map.dir = t.dir;
    ops::Applied dma = ops::apply(map, *dev);
    if (!dma) {
      ++tally.map_failures;
    } else {
      t.dma = DmaAddr(*dma);
      tally.lowest_dma = std::min(tally.lowest_dma, *dma);
      tally.highest_dma = std::max(tally.highest_dma, *dma + t.size - 1);
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
  sg.reserve(pieces.size());
  for (auto& p : pieces) {
    sg.push_back({PhysAddr::from_pointer(p.data()), 4096, {}, 0});
  }
  Result<std::size_t> mapped = map_sg(nvme, sg, Direction::to_device);
  if (!mapped) {
    ++tally.api_errors;
    return;
  }
  for (const ScatterEntry& e : sg) {
    tally.bad_bytes += count_mismatches(device_view(nvme, e.dma_address), pieces[0].data(), 4096);
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
  if (tlb_options && options.grow) {
    tlb_options->growth.enabled = true;
    tlb_options->transient = true;
  }
  if (tlb_options && !options.device_memory.empty()) {
    Result<RegionSpec> spec = parse_device_memory(options.device_memory);
    if (!spec) {
      fmt::print(stderr, "swiotlb: error: {}\n", spec.error().message());
      return 2;
    }
    // addr= keeps its meaning: where the CPU maps the pool.
    if (tlb_options->region) {
      spec->fixed_address = tlb_options->region->fixed_address;
    }
    tlb_options->region = std::move(*spec);
    tlb_options->force_bounce = true;
  }
  Result<std::unique_ptr<IoTlb>> io_tlb = tlb_options
                                              ? IoTlb::create(*tlb_options)
                                              : Result<std::unique_ptr<IoTlb>>(tlb_options.error());
  if (!io_tlb) {
    return report_error(io_tlb.error());
  }
  // With device memory, the devices see the pool at its bus address and
  // nothing else, so every byte bounces through the device's memory.
  DmaRangeMap view;
  if (!options.device_memory.empty()) {
    const Region& region = *(*io_tlb)->region();
    auto ranges =
        DmaRangeMap::create({{region.start().value(), region.dma_base().value(), region.size()}});
    if (!ranges) {
      fmt::print(stderr, "swiotlb: error: {}\n", ranges.error().message());
      return 2;
    }
    view = std::move(*ranges);
  }
  auto nic = Device::create({.name = "legacy-nic", .dma_mask = 0xffffffff, .dma_ranges = view},
                            io_tlb->get());
  auto nvme =
      Device::create({.name = "nvme", .min_align_mask = 0xfff, .dma_ranges = view}, io_tlb->get());
  if (!nic || !nvme) {
    fmt::print(stderr, "swiotlb: error: cannot create the demo devices\n");
    return 2;
  }
  Tally tally;
  run_workload(options, **nic, **nvme, tally);
  run_extras(**nvme, tally);
  const bool ok =
      tally.bad_bytes == 0 && tally.api_errors == 0 && (*nic)->close() && (*nvme)->close();
  if (options.json) {
    nlohmann::json out = {{"ok", ok},
                          {"transfers", tally.transfers},
                          {"bytes_checked", tally.bytes_checked},
                          {"bad_bytes", tally.bad_bytes},
                          {"map_failures", tally.map_failures},
                          {"api_errors", tally.api_errors},
                          {"lowest_dma", tally.lowest_dma},
                          {"highest_dma", tally.highest_dma},
                          {"bus_base", (*io_tlb)->region()->dma_base().value()},
                          {"pool", io_tlb_json(**io_tlb)},
                          {"devices", {device_json(**nic), device_json(**nvme)}}};
    fmt::print("{}\n", out.dump(2));
  } else {
    fmt::print("{}\n", (*io_tlb)->boot_line());
    if (!options.device_memory.empty()) {
      const Region& region = *(*io_tlb)->region();
      fmt::print(
          "device memory at offset {:#x}: CPU [{:#x}, {:#x}), bus [{:#x}, {:#x}); "
          "device addresses handed out: [{:#x}, {:#x}]\n",
          region.offset(), region.start().value(), region.end().value(), region.dma_base().value(),
          region.dma_base().value() + region.size(), tally.lowest_dma, tally.highest_dma);
    }
    fmt::print("{} transfers, {} bytes checked, {} wrong, {} maps refused (pool full)\n",
               tally.transfers, tally.bytes_checked, tally.bad_bytes, tally.map_failures);
    fmt::print("{}", (*io_tlb)->debugfs_text());
    if (options.grow) {
      const GrowthStats g = (*io_tlb)->stats().growth;
      fmt::print("{} pools grown ({} slots now), transient pools held {} slots in all\n",
                 g.grow_events, g.grown_nslabs, g.transient_nslabs_total);
    }
    fmt::print("{}\n", ok ? "every byte round-tripped" : "DATA MISMATCH");
  }
  return ok ? 0 : 1;
}

// The shared-window exchange (docs/shared-window.md): both roles, the
// host here and the device when the command re-executes itself.
namespace shared {

using namespace window;  // the protocol and its two ends (shared_window.h)

constexpr int kDeviceSocket = 3;
constexpr std::uint64_t kMinSize = 512;
constexpr std::uint64_t kMaxSize = std::uint64_t{256} * 1024;
constexpr auto kTimeout = std::chrono::seconds(30);
// The device waits this long for a host that is alive but silent; a host
// that is gone is seen at once (end of file).
constexpr auto kIdleTimeout = std::chrono::seconds(120);

Message reply(std::uint64_t status, std::uint64_t checked = 0, std::uint64_t wrong = 0,
              std::uint64_t written = 0) {
  return {kReply, status, checked, wrong, written, 0};
}

Status send(int socket, const Message& message, int fd = -1) {
  return send_message(socket, std::as_bytes(std::span(message)), fd, kTimeout);
}

// The device process. It trusts nothing the host sends: every message is
// checked, and a bad one is answered, never acted on. Its view of the host
// is the windows it was handed (shared_window.h), and nothing else.

Message serve_transfer(const DeviceWindows& windows, const Message& command) {
  const std::optional<Direction> dir = direction_from_number(command[1]);
  if (!dir || *dir == Direction::none) {
    return reply(kMalformed);
  }
  const std::optional<std::span<std::byte>> bytes = windows.reach(command[2], command[3]);
  if (!bytes) {
    return reply(command[3] == 0 ? kMalformed : kOutsideWindow);
  }
  Message answer = reply(kOk);
  if (copies_to_device(*dir)) {
    answer[2] = bytes->size();
    answer[3] = pattern_mismatches(*bytes, command[4]);
  }
  if (copies_from_device(*dir)) {
    fill_pattern(*bytes, command[5]);
    answer[4] = bytes->size();
  }
  return answer;
}

// The reply to one message, and whether it ends the session. Only window
// messages carry a descriptor; a command with one is malformed. A hello
// refused ends the session too: there is nothing to work on.
std::pair<Message, bool> answer(DeviceWindows& windows, const Message& command,
                                ReceivedMessage& received) {
  if (received.bytes != sizeof(command)) {
    return {reply(windows.has_hello() ? kMalformed : kNoWindow), !windows.has_hello()};
  }
  if (DeviceWindows::is_window_message(command)) {
    const bool hello = command[0] == kHello && !windows.has_hello();
    const Message done =
        windows.handle(command, std::move(received.fd)).value_or(reply(kMalformed));
    if (done[1] != kOk) {
      fmt::print(stderr, "swiotlb: device process: {}\n", windows.last_refusal());
    }
    return {done, hello && !windows.has_hello()};
  }
  if (!windows.has_hello() || received.fd.valid()) {
    return {reply(windows.has_hello() ? kMalformed : kNoWindow), !windows.has_hello()};
  }
  switch (command[0]) {
    case kTransfer:
      return {serve_transfer(windows, command), false};
    case kBye:
      return {reply(kOk), true};
    default:
      return {reply(kMalformed), false};
  }
}

int device_failed(const Error& error, int status = 1) {
  fmt::print(stderr, "swiotlb: device process: {}\n", error.message());
  return status;
}

int run_device(int socket) {
  DeviceWindows windows;
  for (;;) {
    Message command{};
    auto got = receive_message(socket, std::as_writable_bytes(std::span(command)),
                               windows.has_hello() ? kIdleTimeout : kTimeout);
    if (!got && (got.error().code() == Errc::system || !windows.has_hello())) {
      return device_failed(got.error(), windows.has_hello() ? 1 : 2);
    }
    if (got && got->bytes == 0) {
      return device_failed(Error(Errc::system, "the host went away without saying goodbye"));
    }
    const auto [message, last] =
        got ? answer(windows, command, *got) : std::pair{reply(kMalformed), false};
    if (Status sent = send(socket, message); !sent) {
      return device_failed(sent.error());
    }
    if (last) {
      return windows.has_hello() ? 0 : 2;
    }
  }
}

// The host.

struct SharedTally {
  std::uint64_t transfers = 0;
  std::uint64_t device_checked = 0;  // bytes the device process compared
  std::uint64_t host_checked = 0;    // bytes the host compared after the device wrote
  std::uint64_t bad_bytes = 0;
  std::uint64_t map_failures = 0;  // pool full
  std::uint64_t api_errors = 0;    // DMA API errors, commands refused
};

struct SharedTransfer {
  std::vector<std::byte> storage;
  std::size_t offset = 0;
  Direction dir = Direction::to_device;
  DmaAddr dma;
  std::uint64_t check_seed = 0;
  std::uint64_t fill_seed = 0;

  std::span<std::byte> bytes() { return std::span(storage).subspan(offset); }
};

// The device process and the channel to it.
struct Peer {
  std::shared_ptr<WindowChannel> channel;
  ChildProcess process;
};

// Runs this program again as the device process, connected by a socket.
// Our copy of its socket end is closed, so that its death is end of file.
Result<Peer> start_peer() {
  auto pair = make_socket_pair();
  if (!pair) {
    return std::move(pair).error();
  }
  auto process = ChildProcess::spawn("/proc/self/exe",
                                     {"demo", "--device-socket", std::to_string(kDeviceSocket)},
                                     pair->second.get(), kDeviceSocket);
  if (!process) {
    return std::move(process).error();
  }
  pair->second.reset();
  return Peer{std::make_shared<WindowChannel>(std::move(pair->first), kTimeout),
              std::move(*process)};
}

// The pool the --cmdline asks for, in a memfd, every mapping bounced, its
// pools handed to the device process as windows (the first, the hello, as
// the IoTlb is made). With --grow, grown and transient pools are further
// memfd windows.
Result<std::unique_ptr<IoTlb>> make_shared_pool(const DemoOptions& demo, const Peer& peer,
                                                std::shared_ptr<SharedWindowBackend>* backend) {
  Result<SwiotlbConfig> config = parse_swiotlb_config(demo.cmdline, cpu_count());
  if (!config) {
    return std::move(config).error();
  }
  Result<IoTlbOptions> options = IoTlbOptions::from_config(*config);
  if (!options) {
    return std::move(options).error();
  }
  RegionSpec spec = options->region.value_or(RegionSpec{});
  spec.kind = RegionKind::memfd;
  options->region = spec;
  options->force_bounce = true;
  if (demo.grow) {
    options->growth.enabled = true;
    options->transient = true;
  }
  auto shared = SharedWindowBackend::create(
      {.inner = make_region_backend({.region = spec, .placement = options->placement}),
       .channel = peer.channel});
  if (!shared) {
    return std::move(shared).error();
  }
  *backend = *shared;
  options->backend = std::move(*shared);
  return IoTlb::create(*options);
}

// A device whose only memory is the windows, seen where the device process
// sees them.
Result<std::unique_ptr<Device>> make_peer_device(IoTlb& tlb, const SharedWindowBackend& backend) {
  return Device::create({.name = "peer", .windows = backend.windows()}, &tlb);
}

SharedTransfer make_shared_transfer(std::mt19937_64& rng, std::uint64_t max_size) {
  static constexpr Direction kDirs[] = {Direction::to_device, Direction::from_device,
                                        Direction::bidirectional};
  SharedTransfer t;
  t.dir = kDirs[rng() % std::size(kDirs)];
  t.offset = rng() % 4096;
  const std::uint64_t top = std::max(std::min(kMaxSize, max_size), kMinSize);
  t.storage.resize(t.offset + kMinSize + rng() % (top - kMinSize + 1));
  t.check_seed = rng();
  t.fill_seed = rng();
  // What the device must find, or (from_device) what it must overwrite.
  fill_pattern(t.bytes(), t.dir == Direction::from_device ? ~t.fill_seed : t.check_seed);
  return t;
}

Status run_on_device(Peer& peer, SharedTransfer& t, SharedTally& tally) {
  const Message command = {kTransfer,     static_cast<std::uint64_t>(t.dir),
                           t.dma.value(), t.bytes().size(),
                           t.check_seed,  t.fill_seed};
  auto answer = peer.channel->exchange(command);
  if (!answer) {
    return answer.error();
  }
  if ((*answer)[1] != kOk) {
    ++tally.api_errors;
  }
  tally.device_checked += (*answer)[2];
  tally.bad_bytes += (*answer)[3];
  return Status::ok();
}

// Takes a buffer back from the device and checks what it wrote.
void take_back(Device& dev, SharedTransfer& t, bool device_ran, SharedTally& tally) {
  const std::uint64_t size = t.bytes().size();
  if (t.dir == Direction::bidirectional && !sync_single_for_cpu(dev, t.dma, size, t.dir)) {
    ++tally.api_errors;
  }
  if (!unmap_single(dev, t.dma, size, t.dir)) {
    ++tally.api_errors;
    return;
  }
  if (device_ran && copies_from_device(t.dir)) {
    tally.bad_bytes += pattern_mismatches(t.bytes(), t.fill_seed);
    tally.host_checked += size;
  }
  tally.transfers += device_ran ? 1 : 0;
}

// Maps a batch, has the device process do each transfer, unmaps them all,
// also when the device process fails, so that nothing stays mapped.
Status run_batch(Device& dev, Peer& peer, std::vector<SharedTransfer>& batch, SharedTally& tally) {
  std::vector<SharedTransfer> mapped;
  for (SharedTransfer& t : batch) {
    Result<DmaAddr> dma = map_single(dev, t.bytes().data(), t.bytes().size(), t.dir);
    if (!dma) {
      ++tally.map_failures;
      continue;
    }
    t.dma = *dma;
    mapped.push_back(std::move(t));
  }
  Status status;
  std::size_t completed = 0;
  for (; completed < mapped.size(); ++completed) {
    status = run_on_device(peer, mapped[completed], tally);
    if (!status) {
      break;
    }
  }
  for (std::size_t i = 0; i < mapped.size(); ++i) {
    take_back(dev, mapped[i], i < completed, tally);
  }
  return status;
}

Status run_shared_workload(const DemoOptions& options, Device& dev, Peer& peer,
                           SharedTally& tally) {
  std::mt19937_64 rng(options.seed);
  const std::uint64_t max_size = max_mapping_size(dev);
  for (std::uint64_t done = 0; done < options.transfers;) {
    std::vector<SharedTransfer> batch;
    for (; batch.size() < options.queue_depth && done < options.transfers; ++done) {
      batch.push_back(make_shared_transfer(rng, max_size));
    }
    if (Status ok = run_batch(dev, peer, batch, tally); !ok) {
      return ok;
    }
  }
  return Status::ok();
}

// Ends the device process and tells how it ended. After a clean run it is
// told goodbye and must exit 0 by itself; otherwise (or when the goodbye
// fails, which is then the run's error) it is given a moment, then killed.
Result<ChildExit> stop_peer(Peer& peer, Status& workload) {
  if (workload) {
    if (Status bye = peer.channel->close(); bye) {
      return peer.process.wait(kTimeout);
    } else {
      workload = bye;
    }
  }
  if (Result<ChildExit> exit = peer.process.wait(std::chrono::seconds(1)); exit) {
    return exit;
  }
  (void)peer.process.kill(SIGKILL);
  return peer.process.wait(kTimeout);
}

struct SharedRun {
  SharedTally tally;
  SharedWindowStats windows;  // as the device process was told goodbye
  Status workload;
  Result<ChildExit> exit = ChildExit{};
  Status closed;
  bool ok() const {
    return workload && exit && exit->ok() && closed && tally.bad_bytes == 0 &&
           tally.api_errors == 0;
  }
};

std::vector<std::string> run_errors(const SharedRun& run) {
  std::vector<std::string> errors;
  for (const Status* s : {&run.workload, &run.closed}) {
    if (!*s) {
      errors.push_back(s->error().message());
    }
  }
  return errors;
}

nlohmann::json shared_json(const IoTlb& tlb, const Device& dev, pid_t pid, const SharedRun& run,
                           const std::string& exit) {
  const SharedWindowStats& w = run.windows;
  return {
      {"ok", run.ok()},
      {"transfers", run.tally.transfers},
      {"device_bytes_checked", run.tally.device_checked},
      {"host_bytes_checked", run.tally.host_checked},
      {"bad_bytes", run.tally.bad_bytes},
      {"map_failures", run.tally.map_failures},
      {"api_errors", run.tally.api_errors},
      {"window", {{"kind", "memfd"}, {"bytes", tlb.end() - tlb.start()}, {"dma_base", kDmaBase}}},
      {"windows",
       {{"announced", w.announced},
        {"released", w.released},
        {"refused", w.refused},
        {"live_at_goodbye", w.live}}},
      {"device_process", {{"pid", pid}, {"exit", exit}}},
      {"errors", run_errors(run)},
      {"pool", io_tlb_json(tlb)},
      {"devices", {device_json(dev)}}};
}

void print_shared(const DemoOptions& options, const IoTlb& tlb, const Device& dev, pid_t pid,
                  const SharedRun& run) {
  const std::string exit = run.exit ? run.exit->describe() : run.exit.error().message();
  if (options.json) {
    fmt::print("{}\n", shared_json(tlb, dev, pid, run, exit).dump(2));
    return;
  }
  const std::uint64_t bytes = tlb.end() - tlb.start();
  fmt::print("{}\n", tlb.boot_line());
  fmt::print("shared window: memfd of {} bytes; device process {} sees it at DMA [{:#x}, {:#x})\n",
             bytes, pid, kDmaBase, kDmaBase + bytes);
  fmt::print(
      "{} transfers, {} bytes checked by the device process and {} by the host, {} wrong, "
      "{} maps refused (pool full)\n",
      run.tally.transfers, run.tally.device_checked, run.tally.host_checked, run.tally.bad_bytes,
      run.tally.map_failures);
  fmt::print("{}", tlb.debugfs_text());
  if (options.grow) {
    const GrowthStats g = tlb.stats().growth;
    fmt::print(
        "{} pools grown ({} slots now), transient pools held {} slots in all; windows handed to "
        "the device process: {} ({} taken back, {} refused, {} at goodbye)\n",
        g.grow_events, g.grown_nslabs, g.transient_nslabs_total, run.windows.announced,
        run.windows.released, run.windows.refused, run.windows.live);
  }
  fmt::print("device process {}\n", exit);
  for (const std::string& error : run_errors(run)) {
    fmt::print("error: {}\n", error);
  }
  fmt::print("{}\n", run.ok()                   ? "every byte round-tripped"
                     : run.tally.bad_bytes != 0 ? "DATA MISMATCH"
                                                : "FAILED");
}

int run_shared_demo(const DemoOptions& options) {
  Result<Peer> peer = start_peer();
  if (!peer) {
    return report_error(peer.error());
  }
  std::shared_ptr<SharedWindowBackend> backend;
  Result<std::unique_ptr<IoTlb>> tlb = make_shared_pool(options, *peer, &backend);
  Result<std::unique_ptr<Device>> dev =
      tlb ? make_peer_device(**tlb, *backend) : Result<std::unique_ptr<Device>>(tlb.error());
  if (!dev) {
    return report_error(dev.error());  // the device process is killed with `peer`
  }
  SharedRun run;
  run.workload = run_shared_workload(options, **dev, *peer, run.tally);
  run.closed = (*dev)->close();
  run.windows = backend->stats();
  run.exit = stop_peer(*peer, run.workload);
  print_shared(options, **tlb, **dev, peer->process.pid(), run);
  return run.ok() ? 0 : 1;
}

}  // namespace shared

}  // namespace

void add_demo_command(CLI::App& app, int* exit_code) {
  auto options = std::make_shared<DemoOptions>();
  CLI::App* cmd = app.add_subcommand("demo",
                                     "Run a mixed workload through a default pool, "
                                     "checking every byte");
  cmd->add_option("--cmdline", options->cmdline, "the pool's swiotlb= parameter")
      ->capture_default_str();
  cmd->add_option("--transfers", options->transfers, "how many transfers")
      ->capture_default_str()
      ->check(whole_number(0, kMaxDemoTransfers));
  cmd->add_option("--seed", options->seed, "seed of the workload")
      ->capture_default_str()
      ->check(whole_number(0, UINT64_MAX));
  cmd->add_option("--queue-depth", options->queue_depth, "transfers in flight at once")
      ->capture_default_str()
      ->check(whole_number(1, 4096));
  cmd->add_flag("--json", options->json, "print the result as JSON");
  cmd->add_flag("--grow", options->grow,
                "let the pool grow (a worker adds 4 MiB pools) and give mappings that find it "
                "full a transient pool of their own (docs/growth.md)");
  cmd->add_option("--device-memory", options->device_memory,
                  "put the pool in device memory, given as swiotlb_devmem=<path>[,offset=N]"
                  "[,dma_base=BUS]; the devices see only it, at its bus address, so every byte "
                  "bounces (docs/device-memory.md)");
  cmd->add_flag("--shared", options->shared,
                "put the pool in a memfd and play the device in another process that sees "
                "only that window (docs/shared-window.md)");
  // The device process of --shared: this program run again with its socket.
  cmd->add_option("--device-socket", options->device_socket)->group("");
  cmd->callback([options, exit_code] {
    if (options->device_socket >= 0) {
      *exit_code = shared::run_device(options->device_socket);
    } else {
      *exit_code = options->shared ? shared::run_shared_demo(*options) : run_demo(*options);
    }
  });
}

}  // namespace swiotlb::cli
