// WindowTable: a device's reach that changes while the device runs. Each
// window maps [cpu_start, cpu_start + size) to [dma_start, dma_start +
// size), like a dma range, but windows are added and removed at any time:
// a pool that grows later becomes reachable when its window is added and
// stops being so when it is removed. A Device configured with a table
// (DeviceConfig::windows) reaches exactly its windows and nothing else.
//
// Who uses it: a backend that publishes pools (shared_window_backend.h,
// io/ring_backend.h) adds a pool's window in announce(), before any mapping
// in the pool is handed out, and removes it in release(), after the last
// mapping in it is gone. So a translation of a live mapping never races
// with a change to its own window.
//
// Memory ordering: readers take no lock. The table is a sequence lock: a
// writer (one at a time, under a mutex) makes the sequence odd, rewrites
// the entries, and makes it even again; a reader retries when the sequence
// was odd or changed across its scan, so it never acts on a half-written
// entry. Entry fields are atomics stored with release and loaded with
// acquire (plain moves on x86 and Arm64), which orders them against the
// sequence without fences.
//
// Thread safety: every method may be called from any thread.
// Errors: add() and remove() return values (never throw); translations
// return kInvalidAddress for an address in no window.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"

namespace swiotlb {

struct WindowMapping {
  std::uint64_t cpu_start = 0;
  std::uint64_t dma_start = 0;
  std::uint64_t size = 0;
  // The owner's name for the window (a buffer table entry, a window
  // number); unique in the table.
  std::uint32_t id = 0;
};

class SWIOTLB_API WindowTable {
 public:
  // Room for `capacity` windows at once (at least 1).
  explicit WindowTable(std::uint32_t capacity);
  WindowTable(const WindowTable&) = delete;
  WindowTable& operator=(const WindowTable&) = delete;

  // Adds a window. Errors: invalid_argument (empty or wrapping, an id
  // already in the table, overlapping another window on either side),
  // out_of_range (the table holds `capacity` windows already).
  Status add(const WindowMapping& window);
  // Removes the window `id`. Errors: invalid_argument (no such window).
  Status remove(std::uint32_t id);

  // The device address of [addr, addr + size), or kInvalidAddress when the
  // range does not lie inside one window.
  DmaAddr to_dma(PhysAddr addr, std::uint64_t size = 1) const;
  // The CPU address of [addr, addr + size) at device addresses, or
  // kInvalidAddress.
  PhysAddr to_phys(DmaAddr addr, std::uint64_t size = 1) const;
  // The window whose CPU side holds all of [addr, addr + size).
  std::optional<WindowMapping> find(PhysAddr addr, std::uint64_t size = 1) const;

  // The windows now, in no particular order.
  std::vector<WindowMapping> windows() const;
  std::uint32_t capacity() const { return capacity_; }

 private:
  struct Entry {
    std::atomic<std::uint64_t> cpu_start{0};
    std::atomic<std::uint64_t> dma_start{0};
    std::atomic<std::uint64_t> size{0};  // 0: the entry is free
    std::atomic<std::uint32_t> id{0};
  };
  enum class Side : std::uint8_t { cpu, dma };

  std::optional<WindowMapping> lookup(Side side, std::uint64_t addr, std::uint64_t size) const;
  std::optional<WindowMapping> scan(Side side, std::uint64_t addr, std::uint64_t size) const;
  void write_locked(std::uint32_t index, const WindowMapping& window);

  const std::uint32_t capacity_;
  std::unique_ptr<Entry[]> entries_;
  std::atomic<std::uint32_t> used_{0};      // entries [0, used_) may be in use
  std::atomic<std::uint64_t> sequence_{0};  // odd while a writer rewrites entries
  mutable std::mutex writer_;               // one writer at a time
};

}  // namespace swiotlb
