// A Region is memory a pool can live in: a CPU-side address range backed by a
// real mapping. This header covers anonymous process memory; other kinds
// (memfd, files, fixed addresses) build on the same type.
//
// Thread safety: a Region is immutable after creation; its memory is shared
// by whoever holds a pointer into it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"

namespace swiotlb {

enum class RegionPlacement {
  anywhere,  // wherever the system puts it
  low,       // below 2 GiB where the system allows (MAP_32BIT on x86-64), so
             // that a device with a 32-bit mask reaches it at its own address,
             // as the kernel places its default pool in low memory
};

class Region {
 public:
  // Maps `bytes` (rounded up to whole pages) of zeroed anonymous memory.
  static Result<std::unique_ptr<Region>> anonymous(std::size_t bytes,
                                                   RegionPlacement placement);

  ~Region();
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  PhysAddr start() const { return PhysAddr::from_pointer(base_); }
  PhysAddr end() const { return start() + size_; }
  std::size_t size() const { return size_; }
  std::byte* data() const { return base_; }

  bool contains(PhysAddr addr, std::size_t bytes = 1) const {
    return addr >= start() && bytes <= size_ && addr - start() <= size_ - bytes;
  }

 private:
  Region(std::byte* base, std::size_t size) : base_(base), size_(size) {}

  std::byte* base_;
  std::size_t size_;
};

}  // namespace swiotlb
