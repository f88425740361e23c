// The cases `swiotlb bench` times, and the fixture the Google Benchmark
// binary (bench/dma_bench.cc) shares with it.
//
// A case is a named pair of loops: `run`, the operation measured, and
// `baseline`, the cheapest way to do the same work without this library
// (a plain memcpy of the same bytes for a bounce). Both are timed in the
// same process, interleaved round by round, so that whatever else the
// machine is doing slows both alike and their ratio stays meaningful.
// New cases (slot search alone, IOVA allocation, replay speed) are added
// to the table in bench_cases.cc with a `prepare` function that builds their
// fixture and hands back the two loops.
//
// The fixture below is defined in this header so that the benchmark binary,
// which links only the library, uses the very same setup.
//
// Thread safety: a fixture and the loops of one case belong to one thread.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "swiotlb/core/config.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/core/direction.h"
#include "swiotlb/core/error.h"
#include "swiotlb/dma/device.h"
#include "swiotlb/dma/dma_api.h"
#include "swiotlb/dma/dma_debug.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/platform/bounce_copy.h"
#include "swiotlb/platform/cpu.h"

namespace swiotlb::bench {

// The transfer sizes of the copy cases: a small packet, a page, the default
// max_segment_size and the largest mapping a pool allows (one segment).
inline constexpr std::array<std::uint64_t, 4> kCopySizes{512, 4096, 64 * 1024, 256 * 1024};
// The sizes of the cold-cache copy cases.
inline constexpr std::array<std::uint64_t, 3> kColdCopySizes{512, 4096, 64 * 1024};
// How far the cold-cache cases rotate their sources and destinations:
// more than the last-level caches of the machines this runs on.
inline constexpr std::uint64_t kColdSpan = std::uint64_t{64} << 20;

// The pools the copy cases run on: the library's default and the policies
// that reproduce a kernel.
inline constexpr std::array<std::string_view, 3> kCopyPolicies{"fast", "linux", "linux-6.1"};

// Tells the compiler that memory may have been read, so that it neither
// drops nor merges copies whose destination nobody reads afterwards.
inline void clobber_memory() {
  asm volatile("" : : : "memory");
}

// A page-aligned heap buffer whose pages are touched at creation, so that
// no page fault lands inside a timed loop.
class TouchedBuffer {
 public:
  explicit TouchedBuffer(std::uint64_t bytes) : data_(allocate(bytes)), size_(bytes) {
    // A pattern rather than zeros, so that no page stays the shared zero page.
    for (std::uint64_t i = 0; data_ != nullptr && i < bytes; ++i) {
      data_.get()[i] = static_cast<std::byte>(i * 131 + 7);
    }
  }
  bool valid() const { return data_ != nullptr; }
  std::byte* data() const { return data_.get(); }
  std::uint64_t size() const { return size_; }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  static std::byte* allocate(std::uint64_t bytes) {
    return static_cast<std::byte*>(std::aligned_alloc(kPageSize, kernel_align(bytes, kPageSize)));
  }
  std::unique_ptr<std::byte, Free> data_;
  std::uint64_t size_;
};

// How a MapUnmapFixture is set up.
struct MapUnmapSetup {
  // The DMA debug checks of the device: off is what production runs.
  DmaDebugMode debug = DmaDebugMode::off;
  // Force bouncing (true), or map directly (false: nothing is copied).
  bool bounce = true;
  // 0: every operation uses the same source (and the baseline the same
  // destination), which stay in cache. Otherwise sources and destinations
  // rotate, a page apart, over this many bytes each, so that what an
  // operation touches has left the caches since it was last touched.
  std::uint64_t span = 0;
  // to_device: a write, copied into the bounce buffer at map. from_device:
  // a read, copied in at map as well (the kernel fills the bounce buffer
  // whatever the direction, so that a device that writes only part of it
  // leaves the buffer's own bytes, not a stale slot's, to be copied back)
  // and copied back at unmap; its baseline copies there and back.
  Direction dir = Direction::to_device;
};

// What a driver has for one streaming transfer on a forced-bounce
// system: the kernel's default pool (64 MiB, one area per CPU), a device
// with a 64-bit mask, and its own page-aligned source buffer; plus a
// destination of the same size for the memcpy baseline.
class MapUnmapFixture {
 public:
  // Fails when the pool cannot be created (unknown policy, no memory) or a
  // buffer cannot be allocated.
  static Result<std::unique_ptr<MapUnmapFixture>> create(std::string_view policy,
                                                         std::uint64_t bytes,
                                                         const MapUnmapSetup& setup = {}) {
    Result<IoTlbOptions> options = IoTlbOptions::from_config(default_swiotlb_config(cpu_count()));
    if (!options) {
      return std::move(options).error();
    }
    options->force_bounce = setup.bounce;
    options->policy = std::string(policy);
    Result<std::unique_ptr<IoTlb>> io_tlb = IoTlb::create(*options);
    if (!io_tlb) {
      return std::move(io_tlb).error();
    }
    DeviceConfig config;
    config.name = "bench";
    config.dma_mask = ~std::uint64_t{0};
    config.debug = setup.debug;
    Result<std::unique_ptr<Device>> device = Device::create(std::move(config), io_tlb->get());
    if (!device) {
      return std::move(device).error();
    }
    const std::uint64_t stride = kernel_align(bytes, kPageSize);
    const std::uint64_t span = std::max(setup.span, stride);
    auto fixture = std::unique_ptr<MapUnmapFixture>(new MapUnmapFixture(
        std::move(*io_tlb), std::move(*device), bytes, span, stride, setup.dir));
    if (!fixture->source_.valid() || !fixture->destination_.valid()) {
      return make_error(Errc::system, "cannot allocate two buffers of {} bytes", span);
    }
    return fixture;
  }

  MapUnmapFixture(const MapUnmapFixture&) = delete;
  MapUnmapFixture& operator=(const MapUnmapFixture&) = delete;

  // One map (which fills the bounce buffer) and its unmap (which, for a
  // read, copies it back).
  Status map_unmap() {
    std::byte* source = source_.data() + next_offset();
    Result<DmaAddr> dma = map_single(*device_, source, bytes_, dir_);
    if (!dma) {
      return std::move(dma).error();
    }
    return unmap_single(*device_, *dma, bytes_, dir_);
  }

  // The copies alone, from the same source (or the next one, rotating):
  // one for a write, there and back for a read.
  void copy() {
    const std::uint64_t offset = next_offset();
    std::memcpy(destination_.data() + offset, source_.data() + offset, bytes_);
    if (dir_ == Direction::from_device) {
      clobber_memory();
      std::memcpy(source_.data() + offset, destination_.data() + offset, bytes_);
    }
    clobber_memory();
  }

  // The same copy by the bounce layer's own routine (bounce_copy), which
  // is what map_unmap copies with.
  void bounce_copy_only() {
    const std::uint64_t offset = next_offset();
    bounce_copy(destination_.data() + offset, source_.data() + offset, bytes_);
    clobber_memory();
  }

  std::uint64_t bytes() const { return bytes_; }
  const IoTlb& io_tlb() const { return *io_tlb_; }

 private:
  MapUnmapFixture(std::unique_ptr<IoTlb> io_tlb, std::unique_ptr<Device> device,
                  std::uint64_t bytes, std::uint64_t span, std::uint64_t stride, Direction dir)
      : io_tlb_(std::move(io_tlb)),
        device_(std::move(device)),
        source_(span),
        destination_(span),
        bytes_(bytes),
        positions_(span / stride),
        stride_(stride),
        dir_(dir) {}

  // Where the next operation's source (and destination) starts.
  std::uint64_t next_offset() {
    const std::uint64_t offset = position_ * stride_;
    position_ = position_ + 1 == positions_ ? 0 : position_ + 1;
    return offset;
  }

  std::unique_ptr<IoTlb> io_tlb_;
  std::unique_ptr<Device> device_;  // after io_tlb_: a device checks its pool as it goes
  TouchedBuffer source_;
  TouchedBuffer destination_;
  std::uint64_t bytes_;
  std::uint64_t positions_;  // offsets the rotation goes through (1: none)
  std::uint64_t stride_;
  std::uint64_t position_ = 0;
  Direction dir_;
};

// A loop of `iterations` operations; fails at the first operation that does.
using Loop = std::function<Status(std::uint64_t iterations)>;

// A case made ready to time. The loops own (share) the case's fixture.
struct CaseBody {
  Loop run;
  Loop baseline;
};

struct BenchCase {
  std::string name;                 // what --filter matches, e.g. "map_unmap/linux/4096"
  std::uint64_t bytes = 0;          // bytes one operation moves or maps
  std::uint32_t threads = 1;        // threads that run the operation at once
  std::string policy;               // the pool's slot policy
  bool copy = false;                // whether an operation copies its bytes
  std::string baseline = "memcpy";  // what the baseline loop does
  // Builds the fixture; called only for the cases that are run.
  std::function<Result<CaseBody>()> prepare;
};

// Every case, in the order they run and print.
std::vector<BenchCase> bench_cases();

struct TimingOptions {
  double min_seconds = 0.05;  // the least time one round of one loop takes
  std::uint32_t rounds = 5;   // rounds of run and baseline, interleaved
};

struct CaseResult {
  std::string name;
  std::uint64_t bytes = 0;
  std::uint32_t threads = 1;
  std::string policy;
  bool copy = false;
  std::string baseline;
  double ns_per_op = 0;               // wall time, median over the rounds
  double cpu_ns_per_op = 0;           // CPU time (bench_clock.h), median over the rounds
  double baseline_ns_per_op = 0;      // wall time, median over the rounds
  double baseline_cpu_ns_per_op = 0;  // CPU time, median over the rounds
  double ratio() const { return baseline_ns_per_op > 0 ? ns_per_op / baseline_ns_per_op : 0; }
  // The same from CPU times: steadier than `ratio` on a machine where the
  // loops wait for a CPU.
  double cpu_ratio() const {
    return baseline_cpu_ns_per_op > 0 ? cpu_ns_per_op / baseline_cpu_ns_per_op : 0;
  }
};

// Prepares and times one case. Fails when its fixture cannot be built or an
// operation fails (a full pool, for example), with the case's name.
Result<CaseResult> run_case(const BenchCase& bench_case, const TimingOptions& options);

}  // namespace swiotlb::bench
