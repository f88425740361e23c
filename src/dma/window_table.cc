// WindowTable: a small table under a sequence lock, scanned by readers.
#include "swiotlb/dma/window_table.h"

#include <algorithm>

namespace swiotlb {

namespace {

bool overlaps(std::uint64_t a, std::uint64_t size_a, std::uint64_t b, std::uint64_t size_b) {
  return a < b + size_b && b < a + size_a;
}

bool inside(std::uint64_t start, std::uint64_t size, std::uint64_t range_start,
            std::uint64_t range_size) {
  return start >= range_start && size <= range_size && start - range_start <= range_size - size;
}

}  // namespace

WindowTable::WindowTable(std::uint32_t capacity)
    : capacity_(std::max<std::uint32_t>(capacity, 1)),
      entries_(std::make_unique<Entry[]>(capacity_)) {}

Status WindowTable::add(const WindowMapping& window) {
  if (window.size == 0 || window.cpu_start + (window.size - 1) < window.cpu_start ||
      window.dma_start + (window.size - 1) < window.dma_start) {
    return make_error(Errc::invalid_argument,
                      "window {} (cpu {:#x}, dma {:#x}, {} bytes) is empty or wraps", window.id,
                      window.cpu_start, window.dma_start, window.size);
  }
  std::lock_guard guard(writer_);
  std::uint32_t free = capacity_;
  const std::uint32_t used = used_.load(std::memory_order_relaxed);
  for (std::uint32_t i = 0; i < used; ++i) {
    const Entry& e = entries_[i];
    const std::uint64_t size = e.size.load(std::memory_order_relaxed);
    if (size == 0) {
      free = std::min(free, i);
      continue;
    }
    const std::uint64_t cpu = e.cpu_start.load(std::memory_order_relaxed);
    const std::uint64_t dma = e.dma_start.load(std::memory_order_relaxed);
    const std::uint32_t id = e.id.load(std::memory_order_relaxed);
    if (id == window.id || overlaps(cpu, size, window.cpu_start, window.size) ||
        overlaps(dma, size, window.dma_start, window.size)) {
      return make_error(Errc::invalid_argument,
                        "window {} (cpu {:#x}, dma {:#x}, {} bytes) {} window {} (cpu {:#x}, dma "
                        "{:#x}, {} bytes)",
                        window.id, window.cpu_start, window.dma_start, window.size,
                        id == window.id ? "has the id of" : "overlaps", id, cpu, dma, size);
    }
  }
  if (free == capacity_) {
    if (used == capacity_) {
      return make_error(Errc::out_of_range,
                        "window {} ({} bytes): the table holds {} windows, its capacity", window.id,
                        window.size, capacity_);
    }
    free = used;
  }
  write_locked(free, window);
  return {};
}

Status WindowTable::remove(std::uint32_t id) {
  std::lock_guard guard(writer_);
  const std::uint32_t used = used_.load(std::memory_order_relaxed);
  for (std::uint32_t i = 0; i < used; ++i) {
    const Entry& e = entries_[i];
    if (e.size.load(std::memory_order_relaxed) != 0 && e.id.load(std::memory_order_relaxed) == id) {
      write_locked(i, WindowMapping{});
      return {};
    }
  }
  return make_error(Errc::invalid_argument, "no window {} to remove", id);
}

void WindowTable::write_locked(std::uint32_t index, const WindowMapping& window) {
  const std::uint64_t s = sequence_.load(std::memory_order_relaxed);
  sequence_.store(s + 1, std::memory_order_relaxed);
  // Release stores: a reader whose acquire load sees any of them also sees
  // the odd sequence stored before it, and so retries.
  Entry& e = entries_[index];
  e.cpu_start.store(window.cpu_start, std::memory_order_release);
  e.dma_start.store(window.dma_start, std::memory_order_release);
  e.id.store(window.id, std::memory_order_release);
  e.size.store(window.size, std::memory_order_release);
  if (window.size != 0 && index >= used_.load(std::memory_order_relaxed)) {
    used_.store(index + 1, std::memory_order_release);
  }
  // Publishes the entry with the even sequence.
  sequence_.store(s + 2, std::memory_order_release);
}

std::optional<WindowMapping> WindowTable::scan(Side side, std::uint64_t addr,
                                               std::uint64_t size) const {
  // Acquire loads: none can be seen before the first sequence load, nor the
  // second sequence load before them (x86 and Arm64 load them plainly).
  const std::uint32_t used = std::min(used_.load(std::memory_order_acquire), capacity_);
  for (std::uint32_t i = 0; i < used; ++i) {
    const Entry& e = entries_[i];
    const std::uint64_t bytes = e.size.load(std::memory_order_acquire);
    if (bytes == 0) {
      continue;
    }
    const std::uint64_t cpu = e.cpu_start.load(std::memory_order_acquire);
    const std::uint64_t dma = e.dma_start.load(std::memory_order_acquire);
    if (inside(addr, size, side == Side::cpu ? cpu : dma, bytes)) {
      return WindowMapping{cpu, dma, bytes, e.id.load(std::memory_order_acquire)};
    }
  }
  return std::nullopt;
}

std::optional<WindowMapping> WindowTable::lookup(Side side, std::uint64_t addr,
                                                 std::uint64_t size) const {
  for (;;) {
    // Pairs with the writer's release store: the entries it wrote are seen.
    const std::uint64_t before = sequence_.load(std::memory_order_acquire);
    if ((before & 1) != 0) {
      continue;  // a writer is in the middle; updates are rare and short
    }
    std::optional<WindowMapping> found = scan(side, addr, size);
    // After the scan's acquire loads: a scan that saw a writer's store sees
    // the sequence changed here.
    if (sequence_.load(std::memory_order_relaxed) == before) {
      return found;
    }
  }
}

DmaAddr WindowTable::to_dma(PhysAddr addr, std::uint64_t size) const {
  const std::optional<WindowMapping> w = lookup(Side::cpu, addr.value(), size);
  return w ? DmaAddr(addr.value() - w->cpu_start + w->dma_start) : DmaAddr(kInvalidAddress);
}

PhysAddr WindowTable::to_phys(DmaAddr addr, std::uint64_t size) const {
  const std::optional<WindowMapping> w = lookup(Side::dma, addr.value(), size);
  return w ? PhysAddr(addr.value() - w->dma_start + w->cpu_start) : PhysAddr(kInvalidAddress);
}

std::optional<WindowMapping> WindowTable::find(PhysAddr addr, std::uint64_t size) const {
  return lookup(Side::cpu, addr.value(), size);
}

std::vector<WindowMapping> WindowTable::windows() const {
  std::lock_guard guard(writer_);
  std::vector<WindowMapping> out;
  const std::uint32_t used = used_.load(std::memory_order_relaxed);
  for (std::uint32_t i = 0; i < used; ++i) {
    const Entry& e = entries_[i];
    if (const std::uint64_t bytes = e.size.load(std::memory_order_relaxed); bytes != 0) {
      out.push_back({e.cpu_start.load(std::memory_order_relaxed),
                     e.dma_start.load(std::memory_order_relaxed), bytes,
                     e.id.load(std::memory_order_relaxed)});
    }
  }
  return out;
}

}  // namespace swiotlb
