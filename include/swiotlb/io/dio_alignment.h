// What O_DIRECT asks of a file's buffers and offsets.
//
// Direct I/O moves bytes between the disk and the caller's memory by DMA,
// so the kernel insists that the memory address, the file offset and the
// length all be multiples of what the device under the file can transfer:
// its logical block size. The kernel says so for a file through statx's
// STATX_DIOALIGN (Linux 6.1 and later); an older kernel only tells the
// block size of a block device (the BLKSSZGET ioctl); 512 bytes, the
// smallest logical block any disk has, stands in when neither answers.
//
// Thread safety: free functions with no shared state.
#pragma once

#include <cstdint>
#include <string_view>

#include "swiotlb/core/error.h"

namespace swiotlb::io {

struct DioAlignment {
  std::uint32_t mem_align = 512;        // a buffer's address must be a multiple of this
  std::uint32_t offset_align = 512;     // file offsets and lengths must be multiples of this
  std::string_view source = "default";  // "statx", "BLKSSZGET" or "default"

  // The one block size this library uses for both: the larger of the two.
  std::uint32_t block_size() const { return mem_align > offset_align ? mem_align : offset_align; }
};

// Asks the kernel for `fd`'s direct I/O alignment. Errors: system (fstat
// failed, or BLKSSZGET failed on a block device).
Result<DioAlignment> query_dio_alignment(int fd);

// `bytes` rounded up to whole blocks of `block` (a power of two).
constexpr std::uint64_t round_up_to_blocks(std::uint64_t bytes, std::uint32_t block) {
  return (bytes + block - 1) & ~(std::uint64_t{block} - 1);
}

}  // namespace swiotlb::io
