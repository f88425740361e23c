// An I/O run: a small fio for the bounce path. run_ring_job drives an
// IoDevice at a queue depth; run_sync_job does the same I/O one call at a
// time with pread/pwrite (the baselines of what a program does without the
// ring). Both pick the same kinds of I/O from a JobSpec, measure them the
// same way and, with a BlockPattern, check every block they read.
//
// A run stops issuing at its I/O count, its runtime, a cancel request or
// its first failed I/O, and then waits for what is in flight: every bounce
// slot it took is released when it returns. Two I/Os that overlap in the
// file are never in flight together, so each read has one right answer.
//
// Thread safety: a run uses its device and pattern alone; `cancel` may be
// set from any thread or a signal handler.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/io/block_pattern.h"
#include "swiotlb/io/io_device.h"
#include "swiotlb/io/latency_histogram.h"

namespace swiotlb::io {

enum class RwMode : std::uint8_t { read, write, randread, randwrite, randrw };
Result<RwMode> parse_rw_mode(std::string_view text);
std::string_view to_string(RwMode mode);

// Where the application's buffers come from.
enum class BufferSource : std::uint8_t {
  unaligned,   // the heap, off any block boundary: bounced
  aligned,     // posix_memalign'ed to a page, but not registered: bounced
  mixed,       // every other I/O from registered memory (direct), the rest unaligned
  registered,  // the device's direct arena: never bounced (the direct baseline)
};
Result<BufferSource> parse_buffer_source(std::string_view text);
std::string_view to_string(BufferSource source);

// A byte count with an optional k, m, g suffix (powers of 1024): "4k", "256M".
Result<std::uint64_t> parse_size(std::string_view text);

struct BlockSizeShare {
  std::uint64_t bytes = 0;
  std::uint32_t percent = 100;
};
// One size ("4k") or a mix in fio's bssplit form ("4k/70:128k/30"), whose
// shares must add up to 100.
Result<std::vector<BlockSizeShare>> parse_block_sizes(std::string_view text);

struct JobSpec {
  std::uint64_t file_size = 0;
  std::vector<BlockSizeShare> block_sizes{{4096, 100}};
  std::uint32_t queue_depth = 32;  // run_sync_job: always 1
  RwMode rw = RwMode::randrw;
  std::uint32_t read_percent = 50;  // randrw
  // Stop after this many I/Os and/or this long; both 0: one pass's worth
  // (file_size over the mean block size).
  std::uint64_t ios = 0;
  std::chrono::nanoseconds runtime{0};
  BufferSource buffers = BufferSource::unaligned;  // run_ring_job only
  BlockPattern* verify = nullptr;                  // null: no verification
  std::uint64_t seed = 1;
  const std::atomic<bool>* cancel = nullptr;
  // Called about ten times a second with the I/Os done so far.
  std::function<void(std::uint64_t ios, double seconds)> progress;
};

struct JobMeasures {
  std::uint64_t ios = 0;
  std::uint64_t reads = 0;
  std::uint64_t writes = 0;
  std::uint64_t bytes = 0;
  std::uint64_t bounced = 0;
  double seconds = 0;
  std::uint64_t cpu_ns = 0;  // user + system time of the process over the run
  LatencyHistogram latency;  // submission to completion, nanoseconds

  double iops() const;
  double mib_per_s() const;
  double bounced_share() const;
  double cpu_ns_per_io() const;
};

struct JobResult {
  JobMeasures measures;
  std::uint64_t verified_blocks = 0;  // blocks read back and found right
  std::uint64_t verify_errors = 0;    // blocks read back and found wrong
  std::uint64_t unknown_blocks = 0;   // blocks read whose last write had failed
  std::string first_verify_error;
  std::uint64_t pool_waits = 0;  // times the ring waited for bounce slots
  bool cancelled = false;
  // The first failed I/O; the run stopped issuing there.
  std::optional<Error> error;
};

// Adds `part` (a later slice of the same run) to `total`: counts, times and
// latencies add up; the first error and first verify message are kept.
void merge_into(JobResult& total, const JobResult& part);

// Errors (nothing was run): invalid_argument for a spec that cannot run on
// this device (sizes not whole blocks, a file smaller than the largest
// I/O, a direct arena too small for the buffers asked for).
Result<JobResult> run_ring_job(IoDevice& device, const JobSpec& spec);
// `fd` is used as it was opened (O_DIRECT or not); `block` is the size I/O
// sizes and offsets must be multiples of.
Result<JobResult> run_sync_job(int fd, std::uint32_t block, const JobSpec& spec);

// Writes the initial pattern over the whole file (so that every block can
// be read and checked) and syncs it.
Status prepare_file(int fd, const BlockPattern& pattern);
// Reads the whole file back and checks every block.
Result<BlockPattern::Check> verify_file(int fd, const BlockPattern& pattern,
                                        std::string* first_error);

}  // namespace swiotlb::io
