// The dma-ranges translation: a few ranges, searched in order.
#include "swiotlb/dma/dma_range_map.h"

#include <algorithm>

namespace swiotlb {

namespace {

bool overlaps(std::uint64_t a, std::uint64_t b, std::uint64_t size_a, std::uint64_t size_b) {
  return a < b + size_b && b < a + size_a;
}

bool inside(std::uint64_t start, std::uint64_t range_start, std::uint64_t range_size,
            std::uint64_t size) {
  return start >= range_start && size <= range_size && start - range_start <= range_size - size;
}

}  // namespace

Result<DmaRangeMap> DmaRangeMap::create(std::vector<DmaRange> ranges) {
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    const DmaRange& r = ranges[i];
    if (r.size == 0 || r.cpu_start + (r.size - 1) < r.cpu_start ||
        r.dma_start + (r.size - 1) < r.dma_start) {
      return make_error(Errc::invalid_argument,
                        "dma range {} (cpu {:#x}, dma {:#x}, size {:#x}) is empty or wraps", i,
                        r.cpu_start, r.dma_start, r.size);
    }
    for (std::size_t j = 0; j < i; ++j) {
      const DmaRange& o = ranges[j];
      if (overlaps(r.cpu_start, o.cpu_start, r.size, o.size) ||
          overlaps(r.dma_start, o.dma_start, r.size, o.size)) {
        return make_error(Errc::invalid_argument, "dma ranges {} and {} overlap", j, i);
      }
    }
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const DmaRange& a, const DmaRange& b) { return a.cpu_start < b.cpu_start; });
  return DmaRangeMap(std::move(ranges));
}

DmaAddr DmaRangeMap::to_dma(PhysAddr addr, std::uint64_t size) const {
  if (ranges_.empty()) {
    return DmaAddr(addr.value());
  }
  for (const DmaRange& r : ranges_) {
    if (inside(addr.value(), r.cpu_start, r.size, size)) {
      return DmaAddr(addr.value() - r.cpu_start + r.dma_start);
    }
  }
  return DmaAddr(kInvalidAddress);
}

PhysAddr DmaRangeMap::to_phys(DmaAddr addr, std::uint64_t size) const {
  if (ranges_.empty()) {
    return PhysAddr(addr.value());
  }
  for (const DmaRange& r : ranges_) {
    if (inside(addr.value(), r.dma_start, r.size, size)) {
      return PhysAddr(addr.value() - r.dma_start + r.cpu_start);
    }
  }
  return PhysAddr(kInvalidAddress);
}

}  // namespace swiotlb
