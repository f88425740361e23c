// Anonymous regions: plain private mappings, optionally placed low.
#include "swiotlb/platform/region.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "swiotlb/core/constants.h"

namespace swiotlb {

Result<std::unique_ptr<Region>> Region::anonymous(std::size_t bytes,
                                                  RegionPlacement placement) {
  if (bytes == 0) {
    return make_error(Errc::invalid_argument, "a region needs at least one byte");
  }
  const std::size_t size = kernel_align(bytes, kPageSize);
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
#ifdef MAP_32BIT
  if (placement == RegionPlacement::low) {
    flags |= MAP_32BIT;
  }
#endif
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED && placement == RegionPlacement::low) {
    // Low memory is a preference: a device that needs it will be refused
    // later with a reachability error that names the address.
    p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
             -1, 0);
  }
  if (p == MAP_FAILED) {
    const int err = errno;
    return make_error(Errc::system, "mmap of {} bytes of anonymous memory failed: {}", size,
                      std::strerror(err));
  }
  return std::unique_ptr<Region>(new Region(static_cast<std::byte*>(p), size));
}

Region::~Region() { munmap(base_, size_); }

}  // namespace swiotlb
