// The direct I/O alignment of a file, as the kernel reports it.
#include "swiotlb/io/dio_alignment.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/stat.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cerrno>

namespace swiotlb::io {

namespace {

bool is_power_of_two(std::uint32_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

}  // namespace

Result<DioAlignment> query_dio_alignment(int fd) {
  DioAlignment alignment;
#ifdef STATX_DIOALIGN
  struct statx stx {};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
      (stx.stx_mask & STATX_DIOALIGN) != 0 && is_power_of_two(stx.stx_dio_mem_align) &&
      is_power_of_two(stx.stx_dio_offset_align)) {
    alignment.mem_align = stx.stx_dio_mem_align;
    alignment.offset_align = stx.stx_dio_offset_align;
    alignment.source = "statx";
    return alignment;
  }
#endif
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    return make_error(Errc::system, "fstat of fd {} for its direct I/O alignment: {}", fd,
                      errno_text(err));
  }
  if (S_ISBLK(st.st_mode)) {
    int logical = 0;
    if (::ioctl(fd, BLKSSZGET, &logical) != 0) {
      const int err = errno;
      return make_error(Errc::system, "BLKSSZGET on block device fd {}: {}", fd, errno_text(err));
    }
    if (logical > 0 && is_power_of_two(static_cast<std::uint32_t>(logical))) {
      alignment.mem_align = static_cast<std::uint32_t>(logical);
      alignment.offset_align = static_cast<std::uint32_t>(logical);
      alignment.source = "BLKSSZGET";
    }
  }
  return alignment;
}

}  // namespace swiotlb::io
