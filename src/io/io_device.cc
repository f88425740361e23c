// IoDevice: the ring, its buffer table of windows, and the I/O life cycle
// (map, submit, complete, unmap).
#include "swiotlb/io/io_device.h"

#include <fmt/format.h>
#include <liburing.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include <cerrno>
#include <string>
#include <utility>

#include "swiotlb/core/constants.h"
#include "swiotlb/core/log.h"
#include "swiotlb/dma/dma_api.h"
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb::io {

namespace {

// The kernel's limit on one registered buffer.
constexpr std::uint64_t kMaxWindowBytes = std::uint64_t{1} << 30;

Direction direction_of(IoKind kind) {
  return kind == IoKind::read ? Direction::from_device : Direction::to_device;
}

std::string_view name_of(IoKind kind) {
  return kind == IoKind::read ? "read" : "write";
}

}  // namespace

// The io_uring itself; destroyed after every I/O has completed.
class IoDevice::Ring {
 public:
  ~Ring() {
    if (ready_) {
      io_uring_queue_exit(&ring_);
    }
  }
  Status init(std::uint32_t entries, std::uint32_t table_entries) {
    const int rc = io_uring_queue_init(entries, &ring_, 0);
    if (rc < 0) {
      return make_error(Errc::system, "io_uring_queue_init({} entries): {}{}", entries,
                        errno_text(-rc),
                        rc == -ENOSYS || rc == -EPERM
                            ? " (io_uring is missing or disabled: kernel.io_uring_disabled)"
                            : "");
    }
    ready_ = true;
    const int reg = io_uring_register_buffers_sparse(&ring_, table_entries);
    if (reg < 0) {
      return make_error(Errc::system, "registering a sparse table of {} buffers: {}", table_entries,
                        errno_text(-reg));
    }
    return {};
  }
  io_uring* get() { return &ring_; }

 private:
  io_uring ring_{};
  bool ready_ = false;
};

IoDevice::IoDevice(int fd, IoTlb* io_tlb, IoDeviceOptions options, DioAlignment alignment)
    : fd_(fd),
      io_tlb_(io_tlb),
      options_(std::move(options)),
      alignment_(alignment),
      ring_(std::make_unique<Ring>()),
      table_(std::make_shared<WindowTable>(options_.table_entries)),
      entry_used_(options_.table_entries, false),
      slots_(options_.max_in_flight) {
  free_slots_.reserve(options_.max_in_flight);
  for (std::uint32_t i = options_.max_in_flight; i > 0; --i) {
    free_slots_.push_back(i - 1);
  }
}

Result<std::unique_ptr<IoDevice>> IoDevice::create(int fd, IoTlb* io_tlb, IoDeviceOptions options) {
  if (io_tlb == nullptr) {
    return make_error(Errc::invalid_argument, "io device {}: needs an IoTlb to bounce through",
                      options.name);
  }
  if (io_tlb->force_bounce()) {
    return make_error(Errc::invalid_argument,
                      "io device {}: its IoTlb forces bouncing, so registered buffers could not "
                      "go direct; create the IoTlb without force",
                      options.name);
  }
  if (options.max_in_flight == 0 || options.max_in_flight > 4096) {
    return make_error(Errc::invalid_argument, "io device {}: max_in_flight {} is outside [1, 4096]",
                      options.name, options.max_in_flight);
  }
  if (options.pools != nullptr && &io_tlb->backend() != options.pools.get()) {
    return make_error(Errc::invalid_argument,
                      "io device {}: its ring backend is not the backend its IoTlb was made "
                      "with, so it would never hear of the IoTlb's pools",
                      options.name);
  }
  const std::uint32_t entries =
      options.ring_entries == 0 ? options.max_in_flight : options.ring_entries;
  const std::uint32_t windows_needed = io_tlb->pool_count() + 1;
  if (options.table_entries < windows_needed || options.table_entries > 16384) {
    return make_error(Errc::invalid_argument,
                      "io device {}: a buffer table of {} entries; it needs at least {} (one per "
                      "pool and the direct arena) and at most 16384",
                      options.name, options.table_entries, windows_needed);
  }
  Result<DioAlignment> alignment = query_dio_alignment(fd);
  if (!alignment) {
    return std::move(alignment).error();
  }
  if (alignment->block_size() > kPageSize) {
    return make_error(Errc::invalid_argument,
                      "io device {}: the file's direct I/O alignment is {} bytes, above a page "
                      "({}), which bounce slots do not promise",
                      options.name, alignment->block_size(), kPageSize);
  }
  std::unique_ptr<IoDevice> dev(new IoDevice(fd, io_tlb, std::move(options), *alignment));
  if (Status ok = dev->ring_->init(entries, dev->options_.table_entries); !ok) {
    return ok.error();
  }

  if (Status ok = dev->register_pools(); !ok) {
    return ok.error();
  }
  if (dev->options_.direct_bytes != 0) {
    const std::uint64_t bytes = round_up_to_blocks(dev->options_.direct_bytes, kPageSize);
    void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED) {
      const int err = errno;
      return make_error(Errc::system, "io device {}: {} bytes for the direct arena: {}",
                        dev->options_.name, bytes, errno_text(err));
    }
    dev->direct_ = {static_cast<std::byte*>(mem), bytes};
    if (Status ok = dev->register_window(dev->options_.table_entries - 1, mem, bytes); !ok) {
      return ok.error();
    }
  }
  DeviceConfig config;
  config.name = dev->options_.name;
  config.windows = dev->table_;
  // The block layer splits as it needs; one fixed-buffer I/O may be large.
  config.max_segment_size = static_cast<std::uint32_t>(kMaxWindowBytes);
  Result<std::unique_ptr<Device>> device = Device::create(std::move(config), io_tlb);
  if (!device) {
    return std::move(device).error();
  }
  dev->device_ = std::move(*device);
  if (dev->device_->streaming_pools().empty()) {
    return make_error(Errc::unreachable, "io device {}: reaches none of the IoTlb's pools",
                      dev->options_.name);
  }
  return dev;
}

// Without a ring backend the configured pools, at their indexes; with one,
// every pool it knows, in free entries, and every later one as it comes.
Status IoDevice::register_pools() {
  if (options_.pools != nullptr) {
    if (Status ok = options_.pools->attach(this); !ok) {
      return ok;
    }
    attached_ = true;
    return {};
  }
  for (std::uint32_t i = 0; i < io_tlb_->pool_count(); ++i) {
    const PoolInfo info = io_tlb_->pool_info(i);
    if (Status ok = register_window(i, info.start.to_pointer(), info.end - info.start); !ok) {
      return ok;
    }
  }
  return {};
}

Status IoDevice::add_pool(PhysAddr start, std::uint64_t bytes) {
  std::lock_guard guard(entries_lock_);
  // The last entry is the direct arena's.
  for (std::uint32_t i = 0; i + 1 < entry_used_.size(); ++i) {
    if (!entry_used_[i]) {
      return register_locked(i, start.to_pointer(), bytes);
    }
  }
  return make_error(Errc::out_of_range,
                    "io device {}: no free entry in its buffer table of {} for a pool of {} "
                    "bytes (IoDeviceOptions::table_entries)",
                    options_.name, entry_used_.size(), bytes);
}

void IoDevice::remove_pool(PhysAddr start) noexcept {
  std::lock_guard guard(entries_lock_);
  if (const std::optional<WindowMapping> w = table_->find(start);
      w && w->cpu_start == start.value()) {
    if (Status ok = unregister_locked(w->id); !ok) {
      log_warning(ok.error().message());
    }
  }
}

IoDevice::~IoDevice() {
  // No pool is registered from here on; the ring and its table go with us.
  if (attached_) {
    options_.pools->detach(this);
  }
  // Every I/O still in flight must complete before its memory can go; one
  // queued but not yet submitted is submitted first, or it never would.
  if (unsubmitted_ > 0) {
    Status ignored = submit();
    (void)ignored;  // a failure shows as a failed wait below
  }
  while (in_flight_ > 0) {
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe(ring_->get(), &cqe) < 0 || cqe == nullptr) {
      break;  // the ring is broken: nothing more will complete
    }
    const auto slot = static_cast<std::uint32_t>(io_uring_cqe_get_data64(cqe));
    io_uring_cqe_seen(ring_->get(), cqe);
    IoCompletion ignored;
    finish(slot, make_error(Errc::busy, "io device torn down"), &ignored);
  }
  if (device_) {
    Status closed = device_->close();
    (void)closed;  // a live mapping is logged by the Device itself
  }
  ring_.reset();
  if (!direct_.empty()) {
    ::munmap(direct_.data(), direct_.size());
  }
}

Status IoDevice::register_window(std::uint32_t index, const void* addr, std::uint64_t length) {
  std::lock_guard guard(entries_lock_);
  return register_locked(index, addr, length);
}

Status IoDevice::unregister_window(std::uint32_t index) {
  std::lock_guard guard(entries_lock_);
  return unregister_locked(index);
}

Status IoDevice::register_locked(std::uint32_t index, const void* addr, std::uint64_t length) {
  if (index >= entry_used_.size()) {
    return make_error(Errc::out_of_range, "io device {}: buffer table entry {} of {}",
                      options_.name, index, entry_used_.size());
  }
  if (length == 0 || length > kMaxWindowBytes) {
    return make_error(Errc::out_of_range,
                      "io device {}: a window of {} bytes; a registered buffer holds 1 to {}",
                      options_.name, length, kMaxWindowBytes);
  }
  if (entry_used_[index]) {
    return make_error(Errc::invalid_argument, "io device {}: buffer table entry {} is in use",
                      options_.name, index);
  }
  iovec iov{const_cast<void*>(addr), static_cast<std::size_t>(length)};  // NOLINT: the API's type
  const int rc = io_uring_register_buffers_update_tag(ring_->get(), index, &iov, nullptr, 1);
  if (rc < 0) {
    return make_error(Errc::system, "io device {}: registering {} bytes at {} as buffer {}: {}{}",
                      options_.name, length, addr, index, errno_text(-rc),
                      rc == -ENOMEM ? " (the locked-memory limit, ulimit -l, may be too low)" : "");
  }
  // Registered first, reachable second: no mapping is handed out in memory
  // the ring does not know.
  const std::uint64_t start = PhysAddr::from_pointer(addr).value();
  if (Status added = table_->add({start, start, length, index}); !added) {
    iovec empty{nullptr, 0};
    (void)io_uring_register_buffers_update_tag(ring_->get(), index, &empty, nullptr, 1);
    return make_error(added.error().code(), "io device {}: {}", options_.name,
                      added.error().message());
  }
  entry_used_[index] = true;
  return {};
}

Status IoDevice::unregister_locked(std::uint32_t index) {
  if (index >= entry_used_.size()) {
    return make_error(Errc::out_of_range, "io device {}: buffer table entry {} of {}",
                      options_.name, index, entry_used_.size());
  }
  if (!entry_used_[index]) {
    return make_error(Errc::invalid_argument, "io device {}: buffer table entry {} is empty",
                      options_.name, index);
  }
  // Unreachable first, then out of the ring.
  (void)table_->remove(index);
  entry_used_[index] = false;
  iovec iov{nullptr, 0};
  const int rc = io_uring_register_buffers_update_tag(ring_->get(), index, &iov, nullptr, 1);
  if (rc < 0) {
    return make_error(Errc::system, "io device {}: emptying buffer table entry {}: {}",
                      options_.name, index, errno_text(-rc));
  }
  return {};
}

int IoDevice::window_of(std::uint64_t start, std::uint64_t length) const {
  const std::optional<WindowMapping> w = table_->find(PhysAddr(start), length);
  return w ? static_cast<int>(w->id) : -1;
}

Status IoDevice::start(const IoOp& op) {
  const std::uint32_t block = block_size();
  if (op.length == 0 || op.length % block != 0 || op.offset % block != 0 ||
      op.length > kMaxWindowBytes) {
    return make_error(Errc::invalid_argument,
                      "io device {}: {} of {} bytes at offset {}: direct I/O needs whole {}-byte "
                      "blocks at block offsets (and at most {} bytes)",
                      options_.name, name_of(op.kind), op.length, op.offset, block,
                      kMaxWindowBytes);
  }
  const std::uint64_t buffer = PhysAddr::from_pointer(op.buffer).value();
  if (window_of(buffer, op.length) >= 0 && buffer % alignment_.mem_align != 0) {
    return make_error(Errc::invalid_argument,
                      "io device {}: buffer {} is in registered memory but not {}-byte aligned, "
                      "so it can be neither used as it is nor bounced",
                      options_.name, static_cast<const void*>(op.buffer), alignment_.mem_align);
  }
  if (free_slots_.empty()) {
    return make_error(Errc::busy, "io device {}: all {} in-flight slots are in use", options_.name,
                      options_.max_in_flight);
  }
  const Direction dir = direction_of(op.kind);
  Result<DmaAddr> dma = map_single(*device_, op.buffer, op.length, dir, Attr::no_warn);
  if (!dma) {
    return std::move(dma).error();
  }
  const int window = window_of(dma->value(), op.length);
  if (window < 0 || dma->value() % alignment_.mem_align != 0) {
    Status undone = unmap_single(*device_, *dma, op.length, dir, Attr::skip_cpu_sync);
    (void)undone;  // mapped a moment ago by this call
    return make_error(Errc::unreachable, "io device {}: {} bytes mapped at {:#x}, which is {}",
                      options_.name, op.length, dma->value(),
                      window < 0 ? "in no registered window" : "not block-aligned");
  }
  const std::uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  InFlight& f = slots_[slot];
  f.op = op;
  f.dma = dma->value();
  f.done = 0;
  f.eagain = 0;
  f.window = static_cast<std::uint16_t>(window);
  f.bounced = f.dma != buffer;
  f.live = true;
  ++in_flight_;
  if (Status queued = queue(slot); !queued) {
    IoCompletion dropped;
    finish(slot, queued.error(), &dropped, /*count=*/false);
    return queued;
  }
  return {};
}

Status IoDevice::queue(std::uint32_t slot) {
  io_uring* ring = ring_->get();
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  if (sqe == nullptr) {
    // The submission queue is full: hand what is queued to the kernel.
    ++stats_.ring_full;
    unsubmitted_ = 0;
    const int rc = io_uring_submit(ring);
    if (rc < 0) {
      return make_error(Errc::system, "io device {}: submitting a full ring: {}", options_.name,
                        errno_text(-rc));
    }
    sqe = io_uring_get_sqe(ring);
    if (sqe == nullptr) {
      return make_error(Errc::busy, "io device {}: the submission queue stays full", options_.name);
    }
  }
  const InFlight& f = slots_[slot];
  void* addr = PhysAddr(f.dma + f.done).to_pointer();
  const auto bytes = static_cast<unsigned>(f.op.length - f.done);
  const std::uint64_t offset = f.op.offset + f.done;
  if (f.op.kind == IoKind::read) {
    io_uring_prep_read_fixed(sqe, fd_, addr, bytes, offset, f.window);
  } else {
    io_uring_prep_write_fixed(sqe, fd_, addr, bytes, offset, f.window);
  }
  io_uring_sqe_set_data64(sqe, slot);
  ++unsubmitted_;
  return {};
}

Status IoDevice::submit() {
  if (unsubmitted_ == 0) {
    return {};
  }
  unsubmitted_ = 0;
  const int rc = io_uring_submit(ring_->get());
  if (rc < 0) {
    return make_error(Errc::system, "io device {}: io_uring_submit: {}", options_.name,
                      errno_text(-rc));
  }
  return {};
}

void IoDevice::finish(std::uint32_t slot, Status status, IoCompletion* out, bool count) {
  InFlight& f = slots_[slot];
  const bool ok = status.has_value();
  // A failed read leaves the caller's buffer as it was: no copy back.
  Status unmapped = unmap_single(*device_, DmaAddr(f.dma), f.op.length, direction_of(f.op.kind),
                                 ok ? Attrs{} : Attrs(Attr::skip_cpu_sync));
  if (ok && !unmapped) {
    status = unmapped;
  }
  out->tag = f.op.tag;
  out->kind = f.op.kind;
  out->offset = f.op.offset;
  out->length = f.op.length;
  out->bounced = f.bounced;
  out->status = std::move(status);
  if (count) {
    ++stats_.completed;
    stats_.failed += out->status.has_value() ? 0U : 1U;
    ++(f.bounced ? stats_.bounced : stats_.direct);
  }
  f.live = false;
  --in_flight_;
  free_slots_.push_back(slot);
}

// Acts on one completion: sets *finished, or resubmits what is left.
Status IoDevice::handle(std::uint32_t slot, int result, bool* finished) {
  InFlight& f = slots_[slot];
  *finished = true;
  const std::uint64_t remaining = f.op.length - f.done;
  if (result == -EAGAIN && f.eagain < options_.eagain_retries) {
    ++f.eagain;
    ++stats_.eagain_retries;
    *finished = false;
    return {};
  }
  if (result < 0) {
    const int err = -result;
    return make_error(Errc::system, "{} of {} bytes at offset {}: {}{}", name_of(f.op.kind),
                      f.op.length, f.op.offset, errno_text(err),
                      err == ENOSPC   ? " (the disk is full)"
                      : err == EAGAIN ? fmt::format(" (still, after {} retries)", f.eagain)
                                      : std::string());
  }
  const auto moved = static_cast<std::uint64_t>(result);
  if (moved >= remaining) {
    f.done = f.op.length;
    return {};
  }
  if (moved == 0 || (f.done + moved) % block_size() != 0) {
    return make_error(Errc::system, "short {}: {} of {} bytes at offset {}{}", name_of(f.op.kind),
                      f.done + moved, f.op.length, f.op.offset,
                      moved == 0
                          ? (f.op.kind == IoKind::read ? " (end of file)" : " (nothing written)")
                          : " (stopped inside a block)");
  }
  f.done += moved;
  ++stats_.short_resumes;
  *finished = false;
  return {};
}

Result<std::size_t> IoDevice::reap(std::span<IoCompletion> out, std::size_t min_wait) {
  io_uring* ring = ring_->get();
  std::size_t n = 0;
  while (n < out.size() && in_flight_ > 0) {
    io_uring_cqe* cqe = nullptr;
    int rc = 0;
    if (n < min_wait) {
      // Nothing queued may be left unsubmitted while this waits.
      if (Status ok = submit(); !ok) {
        return ok.error();
      }
      rc = io_uring_wait_cqe(ring, &cqe);
    } else {
      rc = io_uring_peek_cqe(ring, &cqe);
      if (rc == -EAGAIN) {
        break;
      }
    }
    if (rc == -EINTR) {
      continue;  // a signal (SIGINT) woke the wait; the caller decides
    }
    if (rc < 0) {
      return make_error(Errc::system, "io device {}: waiting for completions: {}", options_.name,
                        errno_text(-rc));
    }
    const auto slot = static_cast<std::uint32_t>(io_uring_cqe_get_data64(cqe));
    int result = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    SWIOTLB_CHECK(slot < slots_.size() && slots_[slot].live, "a completion for no live I/O");
    if (options_.filter) {
      const InFlight& f = slots_[slot];
      result = options_.filter({f.op.kind, f.op.offset, f.op.length, f.done, result});
    }
    bool finished = true;
    Status status = handle(slot, result, &finished);
    if (!finished) {
      if (Status queued = queue(slot); !queued) {
        status = queued;
      } else {
        continue;
      }
    }
    finish(slot, std::move(status), &out[n]);
    ++n;
  }
  if (Status ok = submit(); !ok) {
    return ok.error();
  }
  return n;
}

IoDeviceStats IoDevice::stats() const {
  IoDeviceStats s = stats_;
  s.in_flight = in_flight_;
  return s;
}

}  // namespace swiotlb::io
