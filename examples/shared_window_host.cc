// The host of the shared-window example (docs/shared-window.md): a pool in
// a memfd that grows, a device that sees that pool and its grown pools (and
// nothing else) as windows from DMA address 0x10000000 on, and a separate
// device process, example_shared_window_device, that is handed each
// window's memfd over a Unix socket and does the device's part. The
// SharedWindowBackend hands every pool over before any mapping in it is
// handed out.
//
// The host maps buffers of 512 B to 256 KiB in every direction, a batch at
// a time; each mapping bounces into the window, and the device process is
// told only the DMA address, the size and the seeds of the patterns: it
// checks what the host sent and writes what the host expects back. The host
// then syncs, unmaps and checks. The exit status is 0 only when every byte
// arrived and the device process ended cleanly.
//
//   example_shared_window_host [--device PATH] [--transfers N] [--seed N]
//
// The device program is looked for next to this one unless --device names
// it. It is exec'd rather than forked so that it starts with an address
// space of its own: a forked child would hold a copy of every host mapping.
#include <fmt/format.h>
#include <swiotlb/dma/dma_api.h>
#include <swiotlb/dma/shared_window_backend.h>
#include <swiotlb/iotlb/io_tlb.h>
#include <swiotlb/platform/fd_passing.h>
#include <swiotlb/platform/shared_window.h>
#include <swiotlb/platform/window_protocol.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using swiotlb::Direction;
using swiotlb::DmaAddr;
using swiotlb::Result;
using swiotlb::Status;

using namespace swiotlb::window;  // the protocol and its ends (shared_window.h)

// Small enough that a queue of large transfers makes it grow.
constexpr std::uint64_t kPoolSlots = 1024;  // 2 MiB
constexpr std::size_t kQueueDepth = 16;
constexpr int kDeviceSocket = 3;
constexpr auto kTimeout = std::chrono::seconds(30);
constexpr std::uint64_t kMinSize = 512;
constexpr std::uint64_t kMaxSize = std::uint64_t{256} * 1024;

struct Options {
  std::string device;
  std::uint64_t transfers = 2000;
  std::uint64_t seed = 1;
};

struct Tally {
  std::uint64_t transfers = 0;
  std::uint64_t device_checked = 0;  // bytes the device process compared
  std::uint64_t host_checked = 0;    // bytes the host compared after the device wrote
  std::uint64_t wrong = 0;
  std::uint64_t map_refused = 0;  // pool full
  std::uint64_t errors = 0;       // API errors, refused or failed commands
};

struct Transfer {
  std::vector<std::byte> storage;
  std::size_t offset = 0;  // so that buffers start anywhere in a page
  Direction dir = Direction::to_device;
  DmaAddr dma;
  std::uint64_t check_seed = 0;
  std::uint64_t fill_seed = 0;

  std::span<std::byte> bytes() { return std::span(storage).subspan(offset); }
};

// The device process and the channel to it.
struct Peer {
  std::shared_ptr<WindowChannel> channel;
  swiotlb::ChildProcess process;
};

// Starts the device program with one end of a socket pair. Our copy of its
// end is closed, so that its death reaches us as end of file.
Result<Peer> start_peer(const std::string& program) {
  auto pair = swiotlb::make_socket_pair();
  if (!pair) {
    return std::move(pair).error();
  }
  auto process = swiotlb::ChildProcess::spawn(program, {std::to_string(kDeviceSocket)},
                                              pair->second.get(), kDeviceSocket);
  if (!process) {
    return std::move(process).error();
  }
  pair->second.reset();
  return Peer{std::make_shared<WindowChannel>(std::move(pair->first), kTimeout),
              std::move(*process)};
}

// A memfd pool that grows, every pool handed to the device process (the
// first with the hello, as the IoTlb is made).
Result<std::unique_ptr<swiotlb::IoTlb>> make_pool(
    const Peer& peer, std::shared_ptr<swiotlb::SharedWindowBackend>* backend) {
  const swiotlb::RegionSpec memfd{.kind = swiotlb::RegionKind::memfd};
  auto shared = swiotlb::SharedWindowBackend::create(
      {.inner = swiotlb::make_region_backend({.region = memfd}), .channel = peer.channel});
  if (!shared) {
    return std::move(shared).error();
  }
  *backend = *shared;
  swiotlb::IoTlbOptions options{.nslabs = kPoolSlots, .force_bounce = true, .region = memfd};
  options.backend = *shared;
  options.growth.enabled = true;
  options.transient = true;
  return swiotlb::IoTlb::create(options);
}

// A device whose only memory is the windows.
Result<std::unique_ptr<swiotlb::Device>> make_device(swiotlb::IoTlb& tlb,
                                                     const swiotlb::SharedWindowBackend& backend) {
  return swiotlb::Device::create({.name = "peer", .windows = backend.windows()}, &tlb);
}

Transfer make_transfer(std::mt19937_64& rng) {
  static constexpr Direction kDirections[] = {Direction::to_device, Direction::from_device,
                                              Direction::bidirectional};
  Transfer t;
  t.dir = kDirections[rng() % std::size(kDirections)];
  t.offset = rng() % 4096;
  t.storage.resize(t.offset + kMinSize + rng() % (kMaxSize - kMinSize + 1));
  t.check_seed = rng();
  t.fill_seed = rng();
  // What the device must find, or (from_device) what it must overwrite.
  fill_pattern(t.bytes(), t.dir == Direction::from_device ? ~t.fill_seed : t.check_seed);
  return t;
}

// Tells the device process to do its part of `t`.
Status run_on_device(Peer& peer, const Transfer& t, Tally& tally) {
  const std::uint64_t size = t.storage.size() - t.offset;
  const Message command = {
      kTransfer, static_cast<std::uint64_t>(t.dir), t.dma.value(), size, t.check_seed, t.fill_seed};
  auto answer = peer.channel->exchange(command);
  if (!answer) {
    return answer.error();
  }
  if ((*answer)[1] != kOk) {
    ++tally.errors;
    return Status::ok();
  }
  tally.device_checked += (*answer)[2];
  tally.wrong += (*answer)[3];
  return Status::ok();
}

// Takes the buffer back from the device and checks what it wrote.
void finish(swiotlb::Device& dev, Transfer& t, bool device_ran, Tally& tally) {
  const std::uint64_t size = t.bytes().size();
  if (t.dir == Direction::bidirectional && !swiotlb::sync_single_for_cpu(dev, t.dma, size, t.dir)) {
    ++tally.errors;
  }
  if (!swiotlb::unmap_single(dev, t.dma, size, t.dir)) {
    ++tally.errors;
    return;
  }
  if (device_ran && swiotlb::copies_from_device(t.dir)) {
    tally.wrong += pattern_mismatches(t.bytes(), t.fill_seed);
    tally.host_checked += size;
  }
  tally.transfers += device_ran ? 1 : 0;
}

// Maps a batch, has the device process do each transfer, unmaps them all:
// also when the device process fails, so that nothing stays mapped.
Status run_batch(swiotlb::Device& dev, Peer& peer, std::vector<Transfer>& batch, Tally& tally) {
  std::vector<Transfer> mapped;
  for (Transfer& t : batch) {
    auto dma = swiotlb::map_single(dev, t.bytes().data(), t.bytes().size(), t.dir);
    if (!dma) {
      ++tally.map_refused;
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
    finish(dev, mapped[i], i < completed, tally);
  }
  return status;
}

Status run_transfers(const Options& options, swiotlb::Device& dev, Peer& peer, Tally& tally) {
  std::mt19937_64 rng(options.seed);
  for (std::uint64_t done = 0; done < options.transfers;) {
    std::vector<Transfer> batch;
    for (; batch.size() < kQueueDepth && done < options.transfers; ++done) {
      batch.push_back(make_transfer(rng));
    }
    if (Status ok = run_batch(dev, peer, batch, tally); !ok) {
      return ok;
    }
  }
  return Status::ok();
}

// Says goodbye and waits for the device process to exit.
Status stop_peer(Peer& peer) {
  if (Status bye = peer.channel->close(); !bye) {
    return bye;
  }
  auto exit = peer.process.wait(kTimeout);
  if (!exit) {
    return exit.error();
  }
  if (!exit->ok()) {
    return swiotlb::make_error(swiotlb::Errc::system, "the device process {}", exit->describe());
  }
  return Status::ok();
}

int fail(const swiotlb::Error& error) {
  fmt::print(stderr, "shared_window_host: {}\n", error.message());
  return 1;
}

int run(const Options& options) {
  auto peer = start_peer(options.device);
  if (!peer) {
    return fail(peer.error());
  }
  std::shared_ptr<swiotlb::SharedWindowBackend> backend;
  auto tlb = make_pool(*peer, &backend);
  if (!tlb) {
    return fail(tlb.error());
  }
  auto dev = make_device(**tlb, *backend);
  if (!dev) {
    return fail(dev.error());
  }
  fmt::print("{}, in memfd {}\n", (*tlb)->boot_line(), (*tlb)->region()->fd());
  fmt::print("device process {} sees it at DMA [{:#x}, {:#x})\n", peer->process.pid(), kDmaBase,
             kDmaBase + ((*tlb)->end() - (*tlb)->start()));
  Tally tally;
  Status ran = run_transfers(options, **dev, *peer, tally);
  Status closed = (*dev)->close();
  const swiotlb::SharedWindowStats windows = backend->stats();
  Status stopped = ran ? stop_peer(*peer) : Status::ok();
  fmt::print(
      "{} transfers; {} bytes checked by the device, {} by the host; {} wrong, "
      "{} maps refused (pool full), {} errors\n",
      tally.transfers, tally.device_checked, tally.host_checked, tally.wrong, tally.map_refused,
      tally.errors);
  fmt::print("windows handed to the device process: {} ({} taken back, {} refused)\n",
             windows.announced, windows.released, windows.refused);
  for (const Status* s : {&ran, &stopped, &closed}) {
    if (!*s) {
      return fail(s->error());
    }
  }
  const bool ok = tally.wrong == 0 && tally.errors == 0;
  fmt::print("{}\n", ok                 ? "every byte round-tripped"
                     : tally.wrong != 0 ? "DATA MISMATCH"
                                        : "FAILED");
  return ok ? 0 : 1;
}

std::string program_next_to_us(std::string_view name) {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::string(name) : (self.parent_path() / name).string();
}

// A whole decimal number, or nothing.
std::optional<std::uint64_t> number(const char* text) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0' || errno != 0 || text[0] == '-') {
    return std::nullopt;
  }
  return n;
}

bool parse(int argc, char** argv, Options& options) {
  options.device = program_next_to_us("example_shared_window_device");
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const char* value = argv[i + 1];
    std::optional<std::uint64_t> n = number(value);
    if (flag == "--device") {
      options.device = value;
    } else if (flag == "--transfers" && n) {
      options.transfers = *n;
    } else if (flag == "--seed" && n) {
      options.seed = *n;
    } else {
      return false;
    }
  }
  return argc % 2 == 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse(argc, argv, options)) {
    std::fprintf(stderr, "usage: %s [--device PATH] [--transfers N] [--seed N]\n", argv[0]);
    return 2;
  }
  return run(options);
}
