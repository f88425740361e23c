// IommuDomain: IOVA allocation plus a page-table model.
#include "swiotlb/dma/iommu_domain.h"

#include "swiotlb/core/constants.h"

namespace swiotlb {

Result<std::shared_ptr<IommuDomain>> IommuDomain::create(const iova::DeviceIovaSpec& spec,
                                                         IommuMode mode) {
  auto iova = iova::DeviceIovaDomain::create(spec);
  if (!iova) {
    return std::move(iova).error();
  }
  return std::shared_ptr<IommuDomain>(new IommuDomain(std::move(*iova), mode, spec.cpu_count));
}

IommuDomain::IommuDomain(std::unique_ptr<iova::DeviceIovaDomain> iova, IommuMode mode,
                         unsigned cpu_count)
    : iova_(std::move(iova)),
      granule_(iova_->domain().granule()),
      mode_(mode),
      cpu_count_(cpu_count == 0 ? 1 : cpu_count) {}

Result<DmaAddr> IommuDomain::map(PhysAddr phys, std::uint64_t size, unsigned cpu) {
  if (size == 0) {
    return make_error(Errc::invalid_argument, "an IOMMU mapping of 0 bytes");
  }
  const std::uint64_t offset = phys.value() & (granule_ - 1);
  const std::uint64_t bytes = kernel_align(size + offset, granule_);
  Result<DmaAddr> iova = iova_->alloc(cpu_slot(cpu), bytes);
  if (!iova) {
    return iova;
  }
  const std::uint64_t first_page = phys.value() - offset;
  std::lock_guard guard(lock_);
  for (std::uint64_t at = 0; at < bytes; at += granule_) {
    page_table_[iova->value() + at] = first_page + at;
  }
  return *iova + offset;
}

Status IommuDomain::unmap(DmaAddr iova, std::uint64_t size, unsigned cpu) {
  const std::uint64_t offset = iova.value() & (granule_ - 1);
  const std::uint64_t base = iova.value() - offset;
  const std::uint64_t bytes = kernel_align(size + offset, granule_);
  std::vector<QueuedFree> frees;
  {
    std::lock_guard guard(lock_);
    for (std::uint64_t at = 0; at < bytes; at += granule_) {
      if (!page_table_.contains(base + at)) {
        return make_error(Errc::not_mapped, "IOVA {:#x} (+{}) is not mapped", base + at, size);
      }
    }
    for (std::uint64_t at = 0; at < bytes; at += granule_) {
      page_table_.erase(base + at);
    }
    const QueuedFree entry{DmaAddr(base), bytes, cpu_slot(cpu)};
    if (mode_ == IommuMode::strict) {
      frees.push_back(entry);
    } else {
      flush_queue_.push_back(entry);
      if (flush_queue_.size() >= kFlushQueueSize) {
        flush_locked(frees);
      }
    }
  }
  release(frees);
  return {};
}

void IommuDomain::flush_locked(std::vector<QueuedFree>& out) {
  out.insert(out.end(), flush_queue_.begin(), flush_queue_.end());
  flush_queue_.clear();
}

void IommuDomain::release(const std::vector<QueuedFree>& frees) {
  for (const QueuedFree& f : frees) {
    // The IOVA was allocated by map() and its page-table entries were just
    // taken away under the lock, so the allocator knows it as live.
    Status freed = iova_->free(f.cpu, f.iova, f.bytes);
    (void)freed;
  }
}

void IommuDomain::flush() {
  std::vector<QueuedFree> frees;
  {
    std::lock_guard guard(lock_);
    flush_locked(frees);
  }
  release(frees);
}

PhysAddr IommuDomain::translate(DmaAddr iova) const {
  const std::uint64_t offset = iova.value() & (granule_ - 1);
  std::lock_guard guard(lock_);
  const auto it = page_table_.find(iova.value() - offset);
  return it == page_table_.end() ? PhysAddr(kInvalidAddress) : PhysAddr(it->second + offset);
}

std::size_t IommuDomain::queued() const {
  std::lock_guard guard(lock_);
  return flush_queue_.size();
}

std::size_t IommuDomain::mapped_pages() const {
  std::lock_guard guard(lock_);
  return page_table_.size();
}

}  // namespace swiotlb
