// The direct-mapping table and the misuse counter.
#include "swiotlb/dma/dma_debug.h"

namespace swiotlb {

void DmaDebug::add_direct(DirectMapping mapping) {
  std::lock_guard guard(lock_);
  direct_.insert_or_assign(mapping.start.value(), mapping);
}

Status DmaDebug::remove_direct(DmaAddr start, std::uint64_t size, Direction dir) {
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
  std::lock_guard guard(lock_);
  return direct_.size();
}

Error DmaDebug::record(Error error) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  return error;
}

}  // namespace swiotlb
