// The runners: the ring at a queue depth, and pread/pwrite one at a time.
#include "swiotlb/io/io_job.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "op_picker.h"

namespace swiotlb::io {

namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t cpu_time_ns() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto ns = [](const timeval& tv) {
    return static_cast<std::uint64_t>(tv.tv_sec) * 1'000'000'000U +
           static_cast<std::uint64_t>(tv.tv_usec) * 1000U;
  };
  return ns(usage.ru_utime) + ns(usage.ru_stime);
}

std::uint64_t elapsed_ns(Clock::time_point since, Clock::time_point now) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(now - since).count());
}

struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }  // NOLINT: posix_memalign's memory
};
using AlignedBytes = std::unique_ptr<std::byte, FreeDeleter>;

Result<AlignedBytes> aligned_bytes(std::uint64_t bytes) {
  void* mem = nullptr;
  const int rc = ::posix_memalign(&mem, 4096, bytes);
  if (rc != 0) {
    return make_error(Errc::system, "posix_memalign of {} bytes: {}", bytes, errno_text(rc));
  }
  std::memset(mem, 0x5a, bytes);
  return AlignedBytes(static_cast<std::byte*>(mem));
}

Status check_spec(const JobSpec& spec, std::uint32_t block) {
  if (spec.block_sizes.empty() || spec.queue_depth == 0 || spec.read_percent > 100) {
    return make_error(Errc::invalid_argument,
                      "a run needs a block size, a queue depth of at least 1 and a read share "
                      "of at most 100%");
  }
  for (const BlockSizeShare& s : spec.block_sizes) {
    if (s.bytes == 0 || s.bytes % block != 0) {
      return make_error(Errc::invalid_argument,
                        "block size {} is not a whole number of the file's {}-byte blocks "
                        "(direct I/O moves whole blocks)",
                        s.bytes, block);
    }
    if (s.bytes > spec.file_size) {
      return make_error(Errc::invalid_argument, "block size {} is larger than the file ({})",
                        s.bytes, spec.file_size);
    }
  }
  if (spec.file_size % block != 0) {
    return make_error(Errc::invalid_argument, "file size {} is not whole {}-byte blocks",
                      spec.file_size, block);
  }
  if (spec.verify != nullptr && spec.verify->file_size() < spec.file_size) {
    return make_error(Errc::invalid_argument, "the verify pattern covers {} bytes of {}",
                      spec.verify->file_size(), spec.file_size);
  }
  return {};
}

std::uint64_t max_block(const JobSpec& spec) {
  std::uint64_t m = 0;
  for (const BlockSizeShare& s : spec.block_sizes) {
    m = std::max(m, s.bytes);
  }
  return m;
}

std::uint64_t target_ios(const JobSpec& spec) {
  if (spec.ios != 0 || spec.runtime.count() != 0) {
    return spec.ios;
  }
  std::uint64_t mean = 0;
  for (const BlockSizeShare& s : spec.block_sizes) {
    mean += s.bytes * s.percent;
  }
  mean = std::max<std::uint64_t>(mean / 100, 1);
  return std::max<std::uint64_t>(spec.file_size / mean, 1);
}

// When a run should stop issuing, and its progress reports.
class Pacer {
 public:
  explicit Pacer(const JobSpec& spec)
      : spec_(spec), target_(target_ios(spec)), started_(Clock::now()), last_report_(started_) {}
  Clock::time_point started() const { return started_; }
  bool cancelled() const {
    return spec_.cancel != nullptr && spec_.cancel->load(std::memory_order_relaxed);
  }
  bool more(std::uint64_t issued, Clock::time_point now) const {
    if (target_ != 0 && issued >= target_) {
      return false;
    }
    return spec_.runtime.count() == 0 || now - started_ < spec_.runtime;
  }
  void report(std::uint64_t done, Clock::time_point now) {
    if (spec_.progress && now - last_report_ >= std::chrono::milliseconds(100)) {
      last_report_ = now;
      spec_.progress(done, static_cast<double>(elapsed_ns(started_, now)) / 1e9);
    }
  }

 private:
  const JobSpec& spec_;
  const std::uint64_t target_;
  const Clock::time_point started_;
  Clock::time_point last_report_;
};

void count_success(JobResult& result, const JobSpec& spec, IoKind kind, std::uint64_t offset,
                   std::span<const std::byte> data, bool bounced) {
  JobMeasures& m = result.measures;
  ++m.ios;
  m.bytes += data.size();
  m.bounced += bounced ? 1 : 0;
  if (kind == IoKind::read) {
    ++m.reads;
    if (spec.verify != nullptr) {
      const BlockPattern::Check c = spec.verify->check(data, offset, &result.first_verify_error);
      result.verified_blocks += c.good;
      result.verify_errors += c.bad;
      result.unknown_blocks += c.unknown;
    }
  } else {
    ++m.writes;
  }
}

bool overlaps(std::uint64_t a, std::uint64_t alen, std::uint64_t b, std::uint64_t blen) {
  return a < b + blen && b < a + alen;
}

}  // namespace

Result<JobResult> run_ring_job(IoDevice& device, const JobSpec& spec) {
  if (Status ok = check_spec(spec, device.block_size()); !ok) {
    return ok.error();
  }
  // The device's in-flight slots bound the queue depth.
  const std::uint32_t qd = std::min(spec.queue_depth, device.max_in_flight());
  const std::uint64_t slot_bytes = round_up_to_blocks(max_block(spec), 4096);

  // The application's buffers, one per queue slot.
  std::vector<std::byte*> buffers(qd);
  AlignedBytes heap;
  const bool uses_direct =
      spec.buffers == BufferSource::registered || spec.buffers == BufferSource::mixed;
  if (uses_direct && device.direct_memory().size() < qd * slot_bytes) {
    return make_error(Errc::invalid_argument,
                      "{} buffers need {} bytes of registered memory ({} slots of {}); the "
                      "device's direct arena has {}",
                      to_string(spec.buffers), qd * slot_bytes, qd, slot_bytes,
                      device.direct_memory().size());
  }
  if (spec.buffers != BufferSource::registered) {
    Result<AlignedBytes> mem = aligned_bytes(qd * slot_bytes + 4096);
    if (!mem) {
      return std::move(mem).error();
    }
    heap = std::move(*mem);
  }
  for (std::uint32_t s = 0; s < qd; ++s) {
    std::byte* direct = uses_direct ? device.direct_memory().data() + s * slot_bytes : nullptr;
    // Unaligned: 8 bytes past a page, as a malloc'ed buffer often is.
    std::byte* unaligned = heap ? heap.get() + s * slot_bytes + 8 : nullptr;
    switch (spec.buffers) {
      case BufferSource::unaligned:
        buffers[s] = unaligned;
        break;
      case BufferSource::aligned:
        buffers[s] = heap.get() + s * slot_bytes;
        break;
      case BufferSource::mixed:
        buffers[s] = s % 2 == 0 ? direct : unaligned;
        break;
      case BufferSource::registered:
        buffers[s] = direct;
        break;
    }
  }

  JobResult result;
  OpPicker picker(spec);
  Pacer pacer(spec);
  struct Slot {
    Pick pick;
    Clock::time_point started;
    bool busy = false;
  };
  std::vector<Slot> slots(qd);
  std::vector<std::uint32_t> free_slots;
  for (std::uint32_t s = qd; s > 0; --s) {
    free_slots.push_back(s - 1);
  }
  std::vector<IoCompletion> done(qd);
  std::optional<Pick> pending;
  bool pending_filled = false;
  constexpr std::uint32_t kNoSlot = ~std::uint32_t{0};
  std::uint32_t pending_slot = kNoSlot;
  std::uint64_t issued = 0;
  bool stop = false;
  const std::uint64_t cpu_start = cpu_time_ns();

  const auto collides = [&](const Pick& p) {
    return std::any_of(slots.begin(), slots.end(), [&](const Slot& s) {
      return s.busy && overlaps(p.offset, p.length, s.pick.offset, s.pick.length);
    });
  };

  for (;;) {
    Clock::time_point now = Clock::now();
    if (!stop && pacer.cancelled()) {
      stop = true;
      result.cancelled = true;
    }
    while (!stop && (pending_slot != kNoSlot || !free_slots.empty()) &&
           (pending || pacer.more(issued, now))) {
      if (!pending) {
        pending = picker.next();
        pending_filled = false;
        for (int tries = 0; picker.random() && collides(*pending) && tries < 8; ++tries) {
          pending = picker.next();
        }
      }
      if (collides(*pending)) {
        break;  // wait for the overlapping I/O to finish
      }
      // The pick keeps its buffer from its first attempt on: a write's
      // pattern is filled once, and retried from there when the pool was full.
      if (pending_slot == kNoSlot) {
        pending_slot = free_slots.back();
        free_slots.pop_back();
      }
      const std::uint32_t s = pending_slot;
      std::byte* buffer = buffers[s];
      if (pending->kind == IoKind::write && spec.verify != nullptr && !pending_filled) {
        spec.verify->fill_for_write({buffer, pending->length}, pending->offset);
        pending_filled = true;
      }
      const IoOp op{pending->kind, buffer, pending->length, pending->offset, s};
      Status started = device.start(op);
      if (!started) {
        if (started.error().code() == Errc::pool_full && device.in_flight() > 0) {
          ++result.pool_waits;  // room comes back as I/Os complete
          break;
        }
        if (pending->kind == IoKind::write && spec.verify != nullptr && pending_filled) {
          spec.verify->write_failed(pending->offset, pending->length);
        }
        result.error = started.error();
        stop = true;
        break;
      }
      slots[s] = {*pending, Clock::now(), true};
      pending.reset();
      pending_slot = kNoSlot;
      ++issued;
    }
    if (Status submitted = device.submit(); !submitted && !result.error) {
      result.error = submitted.error();
      stop = true;
    }
    if (device.in_flight() == 0 && (stop || (!pending && !pacer.more(issued, Clock::now())))) {
      break;
    }
    if (device.in_flight() == 0) {
      continue;  // a pending pick collided with nothing now in flight
    }
    Result<std::size_t> reaped = device.reap(done, 1);
    if (!reaped) {
      // The ring failed: what is in flight is left to the device's teardown.
      if (!result.error) {
        result.error = std::move(reaped).error();
      }
      break;
    }
    now = Clock::now();
    for (std::size_t i = 0; i < *reaped; ++i) {
      const IoCompletion& c = done[i];
      const auto s = static_cast<std::uint32_t>(c.tag);
      Slot& slot = slots[s];
      result.measures.latency.record(elapsed_ns(slot.started, now));
      slot.busy = false;
      free_slots.push_back(s);
      if (!c.status) {
        if (c.kind == IoKind::write && spec.verify != nullptr) {
          spec.verify->write_failed(c.offset, c.length);
        }
        if (!result.error) {
          result.error = c.status.error();
        }
        stop = true;
        continue;
      }
      count_success(result, spec, c.kind, c.offset, {buffers[s], c.length}, c.bounced);
    }
    pacer.report(result.measures.ios, now);
  }
  if (pending && pending_filled && pending->kind == IoKind::write) {
    spec.verify->write_failed(pending->offset, pending->length);  // filled, never written
  }
  result.measures.seconds = static_cast<double>(elapsed_ns(pacer.started(), Clock::now())) / 1e9;
  result.measures.cpu_ns = cpu_time_ns() - cpu_start;
  return result;
}

namespace {

// One pread or pwrite of all `length` bytes: resumes short transfers and
// retries EINTR and EAGAIN.
Status transfer(int fd, IoKind kind, std::byte* buf, std::uint64_t length, std::uint64_t offset) {
  std::uint64_t done = 0;
  unsigned again = 0;
  while (done < length) {
    const ssize_t n =
        kind == IoKind::read
            ? ::pread(fd, buf + done, length - done, static_cast<off_t>(offset + done))
            : ::pwrite(fd, buf + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      const int err = errno;
      if (err == EINTR || (err == EAGAIN && ++again < 16)) {
        continue;
      }
      return make_error(Errc::system, "{} of {} bytes at offset {}: {}{}",
                        kind == IoKind::read ? "pread" : "pwrite", length, offset, errno_text(err),
                        err == ENOSPC ? " (the disk is full)" : "");
    }
    if (n == 0) {
      return make_error(Errc::system, "short {}: {} of {} bytes at offset {}",
                        kind == IoKind::read ? "pread (end of file)" : "pwrite", done, length,
                        offset);
    }
    done += static_cast<std::uint64_t>(n);
  }
  return {};
}

}  // namespace

Result<JobResult> run_sync_job(int fd, std::uint32_t block, const JobSpec& spec) {
  if (Status ok = check_spec(spec, block); !ok) {
    return ok.error();
  }
  Result<AlignedBytes> mem = aligned_bytes(round_up_to_blocks(max_block(spec), 4096));
  if (!mem) {
    return std::move(mem).error();
  }
  std::byte* buffer = mem->get();
  JobResult result;
  OpPicker picker(spec);
  Pacer pacer(spec);
  std::uint64_t issued = 0;
  const std::uint64_t cpu_start = cpu_time_ns();
  Clock::time_point now = Clock::now();
  while (pacer.more(issued, now)) {
    if (pacer.cancelled()) {
      result.cancelled = true;
      break;
    }
    const Pick p = picker.next();
    if (p.kind == IoKind::write && spec.verify != nullptr) {
      spec.verify->fill_for_write({buffer, p.length}, p.offset);
    }
    const Clock::time_point started = Clock::now();
    Status st = transfer(fd, p.kind, buffer, p.length, p.offset);
    now = Clock::now();
    ++issued;
    result.measures.latency.record(elapsed_ns(started, now));
    if (!st) {
      if (p.kind == IoKind::write && spec.verify != nullptr) {
        spec.verify->write_failed(p.offset, p.length);
      }
      result.error = st.error();
      break;
    }
    count_success(result, spec, p.kind, p.offset, {buffer, p.length}, false);
    pacer.report(result.measures.ios, now);
  }
  result.measures.seconds = static_cast<double>(elapsed_ns(pacer.started(), Clock::now())) / 1e9;
  result.measures.cpu_ns = cpu_time_ns() - cpu_start;
  return result;
}

Status prepare_file(int fd, const BlockPattern& pattern) {
  constexpr std::uint64_t kChunk = std::uint64_t{1} << 20;
  Result<AlignedBytes> mem = aligned_bytes(kChunk);
  if (!mem) {
    return std::move(mem).error();
  }
  for (std::uint64_t at = 0; at < pattern.file_size(); at += kChunk) {
    const std::uint64_t n = std::min(kChunk, pattern.file_size() - at);
    pattern.fill_initial({mem->get(), n}, at);
    if (Status ok = transfer(fd, IoKind::write, mem->get(), n, at); !ok) {
      return make_error(Errc::system, "writing the initial pattern: {}", ok.error().message());
    }
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    return make_error(Errc::system, "fsync after writing the initial pattern: {}", errno_text(err));
  }
  return {};
}

Result<BlockPattern::Check> verify_file(int fd, const BlockPattern& pattern,
                                        std::string* first_error) {
  constexpr std::uint64_t kChunk = std::uint64_t{1} << 20;
  Result<AlignedBytes> mem = aligned_bytes(kChunk);
  if (!mem) {
    return std::move(mem).error();
  }
  BlockPattern::Check total;
  for (std::uint64_t at = 0; at < pattern.file_size(); at += kChunk) {
    const std::uint64_t n = std::min(kChunk, pattern.file_size() - at);
    if (Status ok = transfer(fd, IoKind::read, mem->get(), n, at); !ok) {
      return make_error(Errc::system, "reading the file back: {}", ok.error().message());
    }
    const BlockPattern::Check c = pattern.check({mem->get(), n}, at, first_error);
    total.good += c.good;
    total.bad += c.bad;
    total.unknown += c.unknown;
  }
  return total;
}

}  // namespace swiotlb::io
