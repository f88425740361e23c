// How a device sees CPU memory: the kernel's dma_range_map. Each range maps
// [cpu_start, cpu_start + size) to [dma_start, dma_start + size). A map with
// no ranges is the identity (a device that sees memory at its own address);
// otherwise an address in no range is one the device cannot reach.
//
// Thread safety: immutable after creation.
#pragma once

#include <cstdint>
#include <vector>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"

namespace swiotlb {

struct DmaRange {
  std::uint64_t cpu_start = 0;
  std::uint64_t dma_start = 0;
  std::uint64_t size = 0;
};

class DmaRangeMap {
 public:
  DmaRangeMap() = default;  // the identity

  // Fails for an empty range, a range that wraps, or ranges that overlap on
  // either side (a translation must be one-to-one).
  static Result<DmaRangeMap> create(std::vector<DmaRange> ranges);

  bool is_identity() const { return ranges_.empty(); }
  const std::vector<DmaRange>& ranges() const { return ranges_; }

  // The device address of [addr, addr + size), or kInvalidAddress when the
  // range does not lie inside one mapping range.
  DmaAddr to_dma(PhysAddr addr, std::uint64_t size = 1) const;
  // The CPU address of a device address, or kInvalidAddress.
  PhysAddr to_phys(DmaAddr addr, std::uint64_t size = 1) const;

 private:
  explicit DmaRangeMap(std::vector<DmaRange> ranges) : ranges_(std::move(ranges)) {}
  std::vector<DmaRange> ranges_;  // sorted by cpu_start
};

}  // namespace swiotlb
