// The workload generator: device models (docs/trace-format.md, "Synthetic workloads") driven by a
// seeded random source into a Trace.
//
// Each device has one queue per CPU (a Stream) holding up to its queue depth
// of requests in flight. A step picks a stream (devices by weight, CPUs
// evenly); if its queue is full it first completes one request (the oldest
// for ring-ordered devices, any one for devices that complete out of order),
// then submits a new one. Queues therefore stay full, as under a benchmark's
// steady load, and a map meets its unmap about a queue depth of that
// stream's requests later. At the end every queue is drained.
#include "swiotlb/sim/workload.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <deque>
#include <span>
#include <vector>

#include "swiotlb/core/check.h"
#include "swiotlb/core/constants.h"

namespace swiotlb::sim {
namespace {

// splitmix64: small, fast, and the same numbers everywhere (the standard
// library's distributions differ between implementations).
class Random {
 public:
  explicit Random(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n). REQUIRES: n > 0. The modulo bias is below 2^-40 for
  // the small n used here.
  std::uint64_t below(std::uint64_t n) { return next() % n; }
  bool percent(std::uint32_t p) { return below(100) < p; }

 private:
  std::uint64_t state_;
};

struct SizeWeight {
  std::uint64_t size;
  std::uint32_t weight;
};

enum class RequestKind : std::uint8_t { block_nvme, block_virtio, net_rx, net_tx };

struct DeviceModel {
  RequestKind kind;
  std::string_view id;
  std::string_view name;
  std::uint64_t min_align_mask;
  std::uint32_t queue_depth;  // per CPU, when the device runs alone
  std::uint32_t mixed_depth;  // per CPU, in the `mixed` profile
  bool in_order;              // completes in submission order (a ring)
  std::span<const SizeWeight> sizes;
  std::uint32_t read_percent;  // requests that move data to memory
  std::uint32_t weight;        // share of the requests in `mixed`
  std::uint64_t gap_ns;        // mean time between two of its events
};

// NVMe: block sizes of a mixed file-system and database load. 256 KiB
// requests arrive as 252 KiB + 4 KiB, since with min_align_mask 0xfff a
// mapping holds at most 256 KiB less a page.
constexpr std::array<SizeWeight, 7> kBlockSizes = {
    {{4096, 45}, {8192, 10}, {16384, 10}, {32768, 5}, {65536, 10}, {131072, 10}, {262144, 10}}};
// Receive buffers: one MTU-sized buffer each (1500 + headers, rounded).
constexpr std::array<SizeWeight, 1> kRxBuffer = {{{1536, 1}}};
// Transmit: ACKs, full frames, the odd mid-size packet, and TSO bursts.
constexpr std::array<SizeWeight, 4> kTxSizes = {{{66, 40}, {1514, 50}, {576, 5}, {65226, 5}}};

constexpr DeviceModel kNvme{RequestKind::block_nvme,
                            "0000:00:04.0",
                            "nvme",
                            0xfff,
                            32,
                            8,
                            false,
                            kBlockSizes,
                            70,
                            40,
                            2000};
constexpr DeviceModel kVirtioBlk{RequestKind::block_virtio,
                                 "0000:00:05.0",
                                 "virtio-blk",
                                 0,
                                 64,
                                 8,
                                 false,
                                 kBlockSizes,
                                 70,
                                 20,
                                 3000};
constexpr DeviceModel kNetRx{
    RequestKind::net_rx, "0000:00:03.0", "virtio-net", 0, 256, 256, true, kRxBuffer, 100, 25, 500};
constexpr DeviceModel kNetTx{
    RequestKind::net_tx, "0000:00:03.0", "virtio-net", 0, 256, 64, true, kTxSizes, 0, 15, 500};

// The largest single mapping of a device: a segment, less the part of a
// page min_align_mask may keep.
constexpr std::uint64_t max_mapping(const DeviceModel& model) {
  return kSegmentBytes -
         (model.min_align_mask != 0 ? kernel_align(model.min_align_mask, kSlotSize) : 0);
}

// Original buffers come from a region of 2^20 slots of 1 MiB, handed out in
// turn: far more than can be live at once, so a live orig is never reused.
constexpr std::uint64_t kBufferBase = std::uint64_t{1} << 32;
constexpr std::uint64_t kBufferStride = std::uint64_t{1} << 20;
constexpr std::uint64_t kBufferCount = std::uint64_t{1} << 20;

constexpr std::size_t kMaxMapsPerRequest = 4;

// Where the synthetic pool sits: below 4 GiB, as a default pool does.
constexpr std::uint64_t kPoolStart = 0x7c000000;

struct Mapping {
  std::uint64_t orig = 0;
  std::uint64_t size = 0;
  Direction dir = Direction::bidirectional;
};

struct Request {
  std::array<Mapping, kMaxMapsPerRequest> maps{};
  std::uint8_t count = 0;
  std::uint64_t received = 0;  // net_rx: bytes the device wrote, synced before unmap

  // Events its completion will write: an unmap per map, plus the sync.
  std::uint64_t completion_events() const { return count + (received != 0 ? 1u : 0u); }
};

struct Stream {
  const DeviceModel* model;
  std::uint16_t device;
  std::uint32_t cpu;
  std::uint32_t depth;
  std::deque<Request> in_flight;  // oldest first
};

class Generator {
 public:
  Generator(const WorkloadOptions& options, std::span<const DeviceModel* const> models);
  Trace run();

 private:
  void step();
  void submit(Stream& stream);
  void complete(Stream& stream, std::size_t which);
  void add_block_maps(const Stream& stream, Request& request);
  void add(Request& request, std::uint64_t size, Direction dir, std::uint64_t offset);
  std::uint64_t pick_size(std::span<const SizeWeight> sizes);
  Stream& pick_stream();
  void emit(TraceOp op, const Stream& stream, const Mapping& m, std::uint64_t size);

  const WorkloadOptions& options_;
  Random random_;
  Trace trace_;
  std::vector<Stream> streams_;
  std::uint32_t total_weight_ = 0;
  std::uint64_t pending_events_ = 0;  // completion events still to write
  std::uint64_t serial_ = 0;
  std::uint64_t now_ns_ = 0;
};

Generator::Generator(const WorkloadOptions& options, std::span<const DeviceModel* const> models)
    : options_(options), random_(options.seed) {
  for (const DeviceModel* model : models) {
    std::optional<std::uint16_t> device = trace_.find_device(model->id);
    if (!device) {
      device = static_cast<std::uint16_t>(trace_.devices.size());
      TraceDevice d;
      d.id = std::string(model->id);
      d.min_align_mask = model->min_align_mask;
      d.seg_boundary_mask = 0xffffffff;  // a PCI device's default
      d.dma_mask = ~std::uint64_t{0};
      d.name = std::string(model->name);
      trace_.devices.push_back(std::move(d));
    }
    const bool mixed = options.profile == WorkloadProfile::mixed;
    for (std::uint32_t cpu = 0; cpu < options.cpus; ++cpu) {
      streams_.push_back(
          {model, *device, cpu, mixed ? model->mixed_depth : model->queue_depth, {}});
    }
    total_weight_ += model->weight;
  }
}

Trace Generator::run() {
  trace_.events.reserve(options_.events + 64);
  while (trace_.events.size() + pending_events_ < options_.events) {
    step();
  }
  for (Stream& stream : streams_) {
    while (!stream.in_flight.empty()) {
      complete(stream, 0);
    }
  }
  return std::move(trace_);
}

Stream& Generator::pick_stream() {
  std::uint64_t ticket = random_.below(total_weight_);
  std::size_t first = 0;
  while (ticket >= streams_[first].model->weight) {
    ticket -= streams_[first].model->weight;
    first += options_.cpus;
  }
  return streams_[first + random_.below(options_.cpus)];
}

void Generator::step() {
  Stream& stream = pick_stream();
  if (stream.in_flight.size() >= stream.depth) {
    const std::size_t n = stream.in_flight.size();
    complete(stream, stream.model->in_order ? 0 : static_cast<std::size_t>(random_.below(n)));
  }
  submit(stream);
}

std::uint64_t Generator::pick_size(std::span<const SizeWeight> sizes) {
  std::uint32_t total = 0;
  for (const SizeWeight& s : sizes) {
    total += s.weight;
  }
  SWIOTLB_CHECK(total > 0, "every size table has a positive weight");
  std::uint64_t ticket = random_.below(total);
  for (const SizeWeight& s : sizes) {
    if (ticket < s.weight) {
      return s.size;
    }
    ticket -= s.weight;
  }
  return sizes.back().size;
}

void Generator::add(Request& request, std::uint64_t size, Direction dir, std::uint64_t offset) {
  const std::uint64_t orig = kBufferBase + (serial_++ % kBufferCount) * kBufferStride + offset;
  request.maps[request.count++] = {orig, size, dir};
}

// A block request's data, split at the device's largest mapping. Most
// buffers are page-aligned (page cache, O_DIRECT); a few start at a sector
// inside a page (file-system metadata, unaligned user buffers).
void Generator::add_block_maps(const Stream& stream, Request& request) {
  const Direction dir =
      random_.percent(stream.model->read_percent) ? Direction::from_device : Direction::to_device;
  const std::uint64_t offset = random_.percent(5) ? 512 * (1 + random_.below(7)) : 0;
  const std::uint64_t limit = max_mapping(*stream.model);
  std::uint64_t left = pick_size(stream.model->sizes);
  while (left != 0 && request.count + 1u < kMaxMapsPerRequest) {
    const std::uint64_t chunk = std::min(left, limit - (request.count == 0 ? offset : 0));
    add(request, chunk, dir, request.count == 0 ? offset : 0);
    left -= chunk;
  }
}

void Generator::submit(Stream& stream) {
  Request request;
  switch (stream.model->kind) {
    case RequestKind::block_nvme:
      add_block_maps(stream, request);
      break;
    case RequestKind::block_virtio:
      // Header out, data, status byte back: three buffers per request.
      add(request, 16, Direction::to_device, 16 * random_.below(128));
      add_block_maps(stream, request);
      add(request, 1, Direction::from_device, 8 * random_.below(256));
      break;
    case RequestKind::net_rx:
      add(request, pick_size(stream.model->sizes), Direction::from_device, 64);
      request.received = 60 + random_.below(1455);
      break;
    case RequestKind::net_tx:
      add(request, pick_size(stream.model->sizes), Direction::to_device,
          2 + 64 * random_.below(32));
      break;
  }
  for (std::uint8_t i = 0; i < request.count; ++i) {
    emit(TraceOp::map, stream, request.maps[i], request.maps[i].size);
  }
  pending_events_ += request.completion_events();
  stream.in_flight.push_back(request);
}

void Generator::complete(Stream& stream, std::size_t which) {
  const Request request = stream.in_flight[which];
  if (which == 0) {
    stream.in_flight.pop_front();
  } else {
    stream.in_flight[which] = stream.in_flight.back();
    stream.in_flight.pop_back();
  }
  if (request.received != 0) {
    emit(TraceOp::sync_cpu, stream, request.maps[0], request.received);
  }
  for (std::uint8_t i = 0; i < request.count; ++i) {
    emit(TraceOp::unmap, stream, request.maps[i], request.maps[i].size);
  }
  pending_events_ -= request.completion_events();
}

void Generator::emit(TraceOp op, const Stream& stream, const Mapping& m, std::uint64_t size) {
  now_ns_ += 1 + random_.below(2 * stream.model->gap_ns);
  TraceEvent e;
  e.op = op;
  e.t_ns = now_ns_;
  e.cpu = stream.cpu;
  e.device = stream.device;
  e.dir = m.dir;
  e.size = size;
  e.recorded = recorded::kTime | recorded::kCpu;
  if (op == TraceOp::map) {
    e.orig = m.orig;
    e.alloc_size = size;
    e.recorded |= recorded::kAllocSize;
  } else {
    // No kernel address was recorded: the map's orig names it (trace-format.md).
    e.tlb = m.orig;
    e.recorded |= op == TraceOp::unmap ? recorded::kSize : 0;
  }
  trace_.events.push_back(e);
}

std::vector<const DeviceModel*> models_of(WorkloadProfile profile) {
  switch (profile) {
    case WorkloadProfile::nvme:
      return {&kNvme};
    case WorkloadProfile::virtio_blk:
      return {&kVirtioBlk};
    case WorkloadProfile::network:
      return {&kNetRx, &kNetTx};
    case WorkloadProfile::mixed:
      break;
  }
  return {&kNvme, &kVirtioBlk, &kNetRx, &kNetTx};
}

}  // namespace

std::string_view to_string(WorkloadProfile profile) {
  switch (profile) {
    case WorkloadProfile::nvme:
      return "nvme";
    case WorkloadProfile::virtio_blk:
      return "virtio-blk";
    case WorkloadProfile::network:
      return "network";
    case WorkloadProfile::mixed:
      return "mixed";
  }
  return "?";
}

std::optional<WorkloadProfile> workload_profile_from_string(std::string_view name) {
  for (WorkloadProfile p : {WorkloadProfile::nvme, WorkloadProfile::virtio_blk,
                            WorkloadProfile::network, WorkloadProfile::mixed}) {
    if (to_string(p) == name) {
      return p;
    }
  }
  return std::nullopt;
}

std::string_view workload_profile_names() {
  return "nvme, virtio-blk, network, mixed";
}

Result<Trace> generate_workload(const WorkloadOptions& options) {
  if (options.events == 0) {
    return make_error(Errc::invalid_argument, "a workload needs at least one event");
  }
  if (!is_power_of_two(options.cpus) || options.cpus > 1024) {
    return make_error(Errc::invalid_argument, "cpus {} is not a power of two from 1 to 1024",
                      options.cpus);
  }
  const std::vector<const DeviceModel*> models = models_of(options.profile);
  Trace trace = Generator(options, models).run();
  // The kernel's default pool, with its rounding for many areas.
  const std::uint64_t nslabs = round_up_power_of_two(
      std::max<std::uint64_t>(kDefaultSlotCount, std::uint64_t{kSegmentSlots} * options.cpus));
  trace.pool = TracePool{"default", kPoolStart, nslabs, options.cpus, 0};
  trace.comments.push_back(
      {0, fmt::format("synthetic: swiotlb workload --profile {} --events {} --seed {} --cpus {}",
                      to_string(options.profile), options.events, options.seed, options.cpus)});
  return trace;
}

}  // namespace swiotlb::sim
