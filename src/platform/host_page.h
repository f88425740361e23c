// Internal to the platform layer: the host's base page size, which mmap,
// madvise and fixed addresses must follow (not always the 4 KiB the
// kernel's swiotlb rules are written against).
//
// Thread safety: a pure function of the running system.
#pragma once

#include <unistd.h>

#include <cstddef>

namespace swiotlb {

inline std::size_t host_page_size() {
  const long size = sysconf(_SC_PAGESIZE);
  return size > 0 ? static_cast<std::size_t>(size) : 4096;
}

}  // namespace swiotlb
