// A Region is memory a pool can live in: a CPU-side address range backed by
// a real mapping, and the device-side (DMA) address its first byte has.
//
// Kinds (see region_spec.h): anonymous memory, a sealed memfd that can be
// handed to another process, a file or hugetlbfs file at an offset; any of
// them can be placed at a fixed address. A shared kind (memfd, file,
// hugetlbfs) can be mapped again by Region::attach(), in this process after
// the first mapping is gone or in another one, at the same address.
//
// Every way of making a Region either returns a working mapping or an Error
// that says what was asked, what stood in the way and the system's reason
// (strerror text); nothing is left mapped or open after a failure (a file
// that RegionSpec::create made stays, as the caller asked for it).
//
// Thread safety: a Region is immutable after creation and every method is
// const, so any number of threads may use one. Its memory is shared by
// whoever holds a pointer into it; synchronizing access to the bytes is the
// user's business (the pool layer's locks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"
#include "swiotlb/platform/region_spec.h"

namespace swiotlb {

class Region {
 public:
  // Maps `bytes` (rounded up to whole pages) of zeroed anonymous memory.
  // Fails on zero bytes or when the system has no room.
  static Result<std::unique_ptr<Region>> anonymous(std::size_t bytes, RegionPlacement placement);

  // Makes the region `spec` describes. Fails, without side effects except a
  // file that `spec.create` made, when:
  //  - the spec is inconsistent (no bytes; a path or offset for a kind that
  //    takes none; no path for a file kind; a hugetlbfs kind whose path is
  //    not on hugetlbfs);
  //  - the offset or the fixed address is not aligned to the page size of
  //    the backing (the huge page size on hugetlbfs);
  //  - the file cannot be opened or created, or is shorter than offset +
  //    size and `spec.create` is not set;
  //  - the fixed address lies outside the RAM of `spec.machine`, or the
  //    bank it starts in is too small for the size;
  //  - the system refuses the mapping: memory, huge pages, or (for a fixed
  //    address without fallback) an address already in use, or a kernel that
  //    does not honour MAP_FIXED_NOREPLACE (Linux before 4.17).
  static Result<std::unique_ptr<Region>> create(const RegionSpec& spec);

  // Maps an existing memfd or file region again (see AttachSpec). Fails when
  // the descriptor or path cannot be used, the file is shorter than offset +
  // size, the offset or address is misaligned, or the fixed address is in
  // use (the error names what holds it). The kind reported is memfd for a
  // memfd descriptor, hugetlbfs for a file on hugetlbfs, file otherwise.
  static Result<std::unique_ptr<Region>> attach(const AttachSpec& spec);

  // Unmaps the memory and closes the descriptor the region owns.
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

  // What the device calls start(): RegionSpec::dma_base, or start() itself.
  DmaAddr dma_base() const { return dma_base_; }

  RegionKind kind() const { return kind_; }

  // The region's descriptor (memfd, file, hugetlbfs), or -1 for anonymous
  // memory. Owned by the region and closed with it; close-on-exec, so to
  // hand it to another program pass it over a Unix socket (SCM_RIGHTS) or
  // dup() it without FD_CLOEXEC first.
  int fd() const { return fd_; }

  // Where the region starts inside its file (0 for anonymous and memfd).
  std::uint64_t offset() const { return offset_; }

  // The page size of the backing: the huge page size on hugetlbfs.
  std::size_t page_size() const { return page_size_; }

 private:
  struct Parts {
    std::byte* base = nullptr;
    std::size_t size = 0;
    DmaAddr dma_base;
    RegionKind kind = RegionKind::anonymous;
    int fd = -1;
    std::uint64_t offset = 0;
    std::size_t page_size = 0;
  };
  explicit Region(const Parts& parts);
  // region.cc's assembler: the only code that makes a Region from Parts.
  friend class RegionBuilder;

  std::byte* base_;
  std::size_t size_;
  DmaAddr dma_base_;
  RegionKind kind_;
  int fd_;
  std::uint64_t offset_;
  std::size_t page_size_;
};

}  // namespace swiotlb
