// IoDevice: a real device behind the window. An io_uring whose registered
// (fixed) buffers are the IoTlb's pools, described to the DMA API as a
// Device that reaches those buffers and nothing else.
//
// The model (docs/io.md): the kernel's block layer and the disk under the
// file are the device; the memory they can take fixed-buffer I/O from is
// the memory registered with the ring. The ring's sparse buffer table holds
// one entry per window: each pool of the IoTlb and, when asked for, a
// direct arena (the last entry) where an application may place buffers of
// its own that need no bounce. Without a RingBackend the pools are the
// configured ones (entry = pool index); with one (IoDeviceOptions::pools,
// ring_backend.h) every pool the IoTlb has or makes later, grown and
// transient ones included, is registered before any mapping in it is
// handed out and unregistered when it is given back. The Device's reach is
// a WindowTable of exactly the registered windows (identity), so the DMA
// API's own rule decides: a buffer in a window goes direct, any other is
// bounced by map_single into a registered pool; either way the I/O is
// READ_FIXED/WRITE_FIXED on the address the map returned, and a read is
// copied back by unmap_single.
//
// O_DIRECT adds alignment: addresses, offsets and lengths must be whole
// logical blocks (dio_alignment.h). Lengths and offsets that are not are
// refused (rounding a buffer up would let the disk write past its end). A
// buffer inside a window must be block-aligned (it goes direct, as is); a
// bounced buffer may have any address, since its bounce slots are aligned
// (slots are 2 KiB, mappings of a page or more page-aligned).
//
// Faults: -EAGAIN is resubmitted (a bounded number of times); a short
// transfer is continued from where it stopped when it ended on a block;
// anything else (an error, a zero-length transfer, a short transfer off a
// block) ends the I/O with an error that says what, where and how much.
// A failed I/O is unmapped without a copy back, so a read that did not
// complete never overwrites the caller's buffer. A CompletionFilter sees
// every completion first and may change its result: the seam tests use to
// inject faults.
//
// Thread safety: an IoDevice is used by one thread at a time (one
// submitter, as an io_uring without SQPOLL wants), except that its
// RingBackend registers and unregisters pools from any thread (the table
// of windows has a lock of its own, the Device's reach is lock-free to
// read). The IoTlb it bounces through may be shared with other devices and
// threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/dma/device.h"
#include "swiotlb/dma/window_table.h"
#include "swiotlb/io/dio_alignment.h"
#include "swiotlb/io/ring_backend.h"

namespace swiotlb {
class IoTlb;
}

namespace swiotlb::io {

enum class IoKind : std::uint8_t { read, write };

// One I/O: `length` bytes between `buffer` and the file at `offset`.
struct IoOp {
  IoKind kind = IoKind::read;
  std::byte* buffer = nullptr;
  std::uint64_t length = 0;
  std::uint64_t offset = 0;
  std::uint64_t tag = 0;  // the caller's, returned with the completion
};

// A finished I/O: ok, or an error; a read's bytes are in its buffer only
// when ok.
struct IoCompletion {
  std::uint64_t tag = 0;
  IoKind kind = IoKind::read;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  bool bounced = false;
  Status status;
};

// What a completion filter sees: the I/O and the kernel's result for its
// latest submission (bytes moved, or -errno). `done` counts bytes an
// earlier short completion of the same I/O already moved.
struct CompletionView {
  IoKind kind = IoKind::read;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::uint64_t done = 0;
  int result = 0;
};
// Returns the result the device acts on (the kernel's, or another).
using CompletionFilter = std::function<int(const CompletionView&)>;

struct IoDeviceOptions {
  std::string name = "io_uring";
  // The most I/Os in flight at once.
  std::uint32_t max_in_flight = 32;
  // Submission queue entries; 0: max_in_flight. Fewer than max_in_flight
  // makes the device submit early when the queue is full.
  std::uint32_t ring_entries = 0;
  // Bytes of registered memory for the application's own buffers (direct
  // I/O with no bounce); 0: none.
  std::uint64_t direct_bytes = 0;
  // Entries in the sparse buffer table: room for pools added later.
  std::uint32_t table_entries = 64;
  // -EAGAIN completions resubmitted per I/O before it fails.
  std::uint32_t eagain_retries = 16;
  CompletionFilter filter;  // empty: none
  // The backend the IoTlb was made with, when it is a RingBackend: every
  // pool it announces, now and later, is registered (ring_backend.h).
  // Null: the IoTlb's configured pools only, registered at creation.
  std::shared_ptr<RingBackend> pools;
};

struct IoDeviceStats {
  std::uint64_t completed = 0;       // I/Os finished, ok or not
  std::uint64_t failed = 0;          // of which ended with an error
  std::uint64_t bounced = 0;         // I/Os that went through a bounce buffer
  std::uint64_t direct = 0;          // I/Os on the caller's registered memory
  std::uint64_t eagain_retries = 0;  // resubmissions after -EAGAIN
  std::uint64_t short_resumes = 0;   // resubmissions of the rest of a short transfer
  std::uint64_t ring_full = 0;       // times the submission queue was full
  std::uint64_t in_flight = 0;       // I/Os in flight now
};

class IoDevice final : private PoolRegistrar {
 public:
  // Sets up a ring on `fd`, registers every configured pool of `io_tlb` and
  // the direct arena, and creates the Device. `io_tlb` must outlive the
  // IoDevice and must not force bouncing (a buffer in registered memory
  // needs none). Errors: invalid_argument (bad options, a forcing IoTlb,
  // a block size above a page), system (io_uring refused: the message says
  // whether the kernel lacks it), those of Device::create.
  static Result<std::unique_ptr<IoDevice>> create(int fd, IoTlb* io_tlb, IoDeviceOptions options);

  // Waits for the I/Os still in flight and unmaps them (no copy back).
  ~IoDevice();
  IoDevice(const IoDevice&) = delete;
  IoDevice& operator=(const IoDevice&) = delete;

  // Puts [addr, addr + length) in the ring's buffer table at `index` and
  // in the Device's reach, or takes entry `index` out of both. A pool must
  // be registered before any mapping in it is handed out, and unregistered
  // only when none is live (a RingBackend does both). Errors: out_of_range
  // (index beyond the table, length above 1 GiB), invalid_argument (an
  // entry already in use / not in use, a window overlapping another),
  // system. May be called from any thread.
  Status register_window(std::uint32_t index, const void* addr, std::uint64_t length);
  Status unregister_window(std::uint32_t index);

  // Maps the op's buffer (direct or bounced) and queues its SQE; submit()
  // hands queued SQEs to the kernel. Errors: invalid_argument (length or
  // offset not whole blocks, a buffer in a window but not aligned), busy
  // (max_in_flight reached: reap first), pool_full (no bounce slots now:
  // reap first), unreachable, system.
  Status start(const IoOp& op);
  Status submit();

  // Collects finished I/Os into `out`, waiting until at least `min_wait`
  // (capped at those in flight) have finished. Returns how many it wrote.
  // Errors: system (the ring failed); in-flight I/Os stay in flight then.
  Result<std::size_t> reap(std::span<IoCompletion> out, std::size_t min_wait);

  std::uint32_t block_size() const { return alignment_.block_size(); }
  const DioAlignment& alignment() const { return alignment_; }
  // The direct arena (empty when direct_bytes was 0); page-aligned.
  std::span<std::byte> direct_memory() const { return direct_; }
  Device& device() { return *device_; }
  // The registered windows now (pools and the direct arena); the id of
  // each is its buffer table entry.
  std::vector<WindowMapping> windows() const { return table_->windows(); }
  IoDeviceStats stats() const;
  std::uint32_t in_flight() const { return in_flight_; }
  std::uint32_t max_in_flight() const { return options_.max_in_flight; }

 private:
  struct InFlight {
    IoOp op;
    std::uint64_t dma = 0;   // where the I/O reads or writes
    std::uint64_t done = 0;  // bytes already moved (short transfers)
    std::uint32_t eagain = 0;
    std::uint16_t window = 0;
    bool bounced = false;
    bool live = false;
  };
  class Ring;

  IoDevice(int fd, IoTlb* io_tlb, IoDeviceOptions options, DioAlignment alignment);
  Status register_pools();
  // PoolRegistrar: a pool of the IoTlb in the first free entry (the last
  // is the direct arena's), and out again.
  Status add_pool(PhysAddr start, std::uint64_t bytes) override;
  void remove_pool(PhysAddr start) noexcept override;
  Status register_locked(std::uint32_t index, const void* addr, std::uint64_t length);
  Status unregister_locked(std::uint32_t index);
  int window_of(std::uint64_t start, std::uint64_t length) const;
  Status queue(std::uint32_t slot);
  // Ends slot's I/O: unmap (copy back on success) and fill `out`;
  // `count`: an I/O that reached the ring (counted in the stats).
  void finish(std::uint32_t slot, Status status, IoCompletion* out, bool count = true);
  Status handle(std::uint32_t slot, int result, bool* finished);

  const int fd_;
  IoTlb* const io_tlb_;
  const IoDeviceOptions options_;
  const DioAlignment alignment_;
  std::unique_ptr<Ring> ring_;
  std::unique_ptr<Device> device_;
  std::span<std::byte> direct_;
  // The registered windows: the Device's reach (read without a lock) and
  // which table entries are taken.
  const std::shared_ptr<WindowTable> table_;
  std::mutex entries_lock_;
  std::vector<bool> entry_used_;  // guarded by entries_lock_
  bool attached_ = false;         // to options_.pools
  std::vector<InFlight> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::uint32_t in_flight_ = 0;
  std::uint32_t unsubmitted_ = 0;  // SQEs queued since the last submit
  IoDeviceStats stats_;
};

}  // namespace swiotlb::io
