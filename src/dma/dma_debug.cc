// The direct-mapping table, the misuse counter and the process default.
#include "swiotlb/dma/dma_debug.h"

#include "swiotlb/core/check.h"

namespace swiotlb {

namespace {

std::atomic<bool> process_default{SWIOTLB_CHECKS_ENABLED != 0};

}  // namespace

bool dma_debug_default() {
  return process_default.load(std::memory_order_relaxed);
}

void set_dma_debug_default(bool on) {
  process_default.store(on, std::memory_order_relaxed);
}

bool dma_debug_enabled(DmaDebugMode mode) {
  switch (mode) {
    case DmaDebugMode::on:
      return true;
    case DmaDebugMode::off:
      return false;
    case DmaDebugMode::process_default:
      break;
  }
  return dma_debug_default();
}

void DmaDebug::add_direct(DirectMapping mapping) {
  if (!enabled_) {
    return;
  }
  std::lock_guard guard(lock_);
  direct_.insert_or_assign(mapping.start.value(), mapping);
}

Status DmaDebug::remove_direct(DmaAddr start, std::uint64_t size, Direction dir) {
  if (!enabled_) {
    return {};
  }
  std::lock_guard guard(lock_);
  auto it = direct_.find(start.value());
  if (it == direct_.end()) {
    return make_error(Errc::not_mapped, "unmap of {:#x}, which is not mapped", start.value());
  }
  const DirectMapping& m = it->second;
  if (m.size != size || m.dir != dir) {
    return make_error(Errc::mapping_mismatch,
                      "unmap of {:#x} with {} bytes {}, but it was mapped with {} bytes {}",
                      start.value(), size, to_string(dir), m.size, to_string(m.dir));
  }
  direct_.erase(it);
  return {};
}

Result<DirectMapping> DmaDebug::find_direct(DmaAddr addr, std::uint64_t size, Direction dir) const {
  if (!enabled_) {
    return DirectMapping{addr, size, dir};
  }
  std::lock_guard guard(lock_);
  auto it = direct_.upper_bound(addr.value());
  if (it == direct_.begin()) {
    return make_error(Errc::not_mapped, "sync of {:#x}, which is not mapped", addr.value());
  }
  const DirectMapping& m = std::prev(it)->second;
  const std::uint64_t from = addr - m.start;
  if (from >= m.size) {
    return make_error(Errc::not_mapped, "sync of {:#x}, which is not mapped", addr.value());
  }
  if (size > m.size - from) {
    return make_error(Errc::out_of_range,
                      "sync of [{:#x}, +{}) reaches outside the mapping "
                      "[{:#x}, +{})",
                      addr.value(), size, m.start.value(), m.size);
  }
  if (m.dir != dir) {
    return make_error(Errc::mapping_mismatch, "sync of {:#x} {}, but it was mapped {}",
                      addr.value(), to_string(dir), to_string(m.dir));
  }
  return m;
}

std::uint64_t DmaDebug::live_direct() const {
  if (!enabled_) {
    return 0;
  }
  std::lock_guard guard(lock_);
  return direct_.size();
}

void DmaDebug::add_coherent(DirectMapping mapping) {
  std::lock_guard guard(lock_);
  coherent_.insert_or_assign(mapping.start.value(), mapping);
}

Status DmaDebug::remove_coherent(DmaAddr start, std::uint64_t size) {
  std::lock_guard guard(lock_);
  auto it = coherent_.find(start.value());
  if (it == coherent_.end()) {
    return make_error(Errc::not_mapped, "free of coherent buffer {:#x}, which was not given",
                      start.value());
  }
  if (it->second.size != size) {
    return make_error(Errc::mapping_mismatch,
                      "free of coherent buffer {:#x} with {} bytes, but it was given with {}",
                      start.value(), size, it->second.size);
  }
  coherent_.erase(it);
  return {};
}

std::uint64_t DmaDebug::live_coherent() const {
  std::lock_guard guard(lock_);
  return coherent_.size();
}

Error DmaDebug::record(Error error) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  return error;
}

}  // namespace swiotlb
