// Backings for regions: memfds (created, sized, sealed), files and hugetlbfs
// files (opened, checked, grown on request), descriptors handed over by a
// caller. Every failure names the object and carries the system's reason.
#include "region_backing.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <limits>

namespace swiotlb {

namespace {

constexpr const char* kMemfdName = "swiotlb-region";
constexpr std::string_view kMemfdLinkPrefix = "/memfd:";

std::string last_error() {
  return errno_text(errno);
}

// Where the file system keeps the file, as a page size and whether it is
// hugetlbfs (whose f_bsize is the huge page size every mapping must follow).
struct FileSystemInfo {
  bool hugetlbfs = false;
  std::size_t page_size = 0;
};

Result<FileSystemInfo> file_system_of(int fd, const std::string& name) {
  struct statfs fs {};
  if (fstatfs(fd, &fs) != 0) {
    return make_error(Errc::system, "fstatfs of {} failed: {}", name, last_error());
  }
  const bool huge = static_cast<std::uint64_t>(fs.f_type) == HUGETLBFS_MAGIC;
  if (huge && fs.f_bsize <= 0) {
    return make_error(Errc::system, "hugetlbfs of {} reports a page size of {}", name, fs.f_bsize);
  }
  return FileSystemInfo{huge, huge ? static_cast<std::size_t>(fs.f_bsize) : host_page_size()};
}

Status check_regular(int fd, const std::string& name) {
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    return make_error(Errc::system, "fstat of {} failed: {}", name, last_error());
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(Errc::invalid_argument, "{} is not a regular file (mode {:o})", name,
                      st.st_mode);
  }
  return Status::ok();
}

// Fills in kind and page size of a backing whose descriptor is open.
Status classify(Backing& backing, RegionKind wanted) {
  if (Status regular = check_regular(backing.fd.get(), backing.name); !regular) {
    return regular;
  }
  Result<FileSystemInfo> fs = file_system_of(backing.fd.get(), backing.name);
  if (!fs) {
    return fs.error();
  }
  if (wanted == RegionKind::hugetlbfs && !fs->hugetlbfs) {
    return make_error(Errc::invalid_argument,
                      "{} is not on hugetlbfs: a hugetlbfs region needs a path on a hugetlbfs "
                      "mount (see /proc/mounts)",
                      backing.name);
  }
  backing.page_size = fs->page_size;
  if (fs->hugetlbfs) {
    backing.kind = RegionKind::hugetlbfs;
    backing.name = "hugetlbfs " + backing.name;
  } else if (wanted == RegionKind::memfd) {
    backing.kind = RegionKind::memfd;
  } else {
    backing.kind = RegionKind::file;
  }
  return Status::ok();
}

bool is_memfd(int fd) {
  const std::string link = fmt::format("/proc/self/fd/{}", fd);
  std::array<char, 64> target{};
  const ssize_t n = readlink(link.c_str(), target.data(), target.size() - 1);
  return n > 0 &&
         std::string_view(target.data(), static_cast<std::size_t>(n)).starts_with(kMemfdLinkPrefix);
}

}  // namespace

Backing anonymous_backing() {
  Backing backing;
  backing.kind = RegionKind::anonymous;
  backing.page_size = host_page_size();
  backing.name = "anonymous memory";
  return backing;
}

Result<Backing> open_memfd() {
  Backing backing;
  backing.fd.reset(memfd_create(kMemfdName, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!backing.fd.valid()) {
    return make_error(Errc::system, "memfd_create(\"{}\", MFD_ALLOW_SEALING) failed: {}",
                      kMemfdName, last_error());
  }
  backing.kind = RegionKind::memfd;
  backing.page_size = host_page_size();
  backing.name = fmt::format("memfd {}", backing.fd.get());
  return backing;
}

Status seal_memfd(const Backing& backing, std::uint64_t size) {
  if (size > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max())) {
    return make_error(Errc::invalid_argument, "a memfd of {} bytes is beyond the largest file",
                      size);
  }
  if (ftruncate(backing.fd.get(), static_cast<off_t>(size)) != 0) {
    return make_error(Errc::system, "sizing {} to {} bytes failed: {}", backing.name, size,
                      last_error());
  }
  constexpr int kSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
  if (fcntl(backing.fd.get(), F_ADD_SEALS, kSeals) != 0) {
    return make_error(Errc::system, "sealing {} against resizing failed: {}", backing.name,
                      last_error());
  }
  return Status::ok();
}

Result<Backing> open_file(const std::string& path, RegionKind wanted, bool create) {
  const int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  Backing backing;
  backing.name = fmt::format("file {}", path);
  backing.fd.reset(open(path.c_str(), flags, 0600));
  if (!backing.fd.valid()) {
    return make_error(Errc::system, "cannot open {}{}: {}", backing.name,
                      create ? " (creating it if missing)" : "", last_error());
  }
  if (Status ok = classify(backing, wanted); !ok) {
    return ok.error();
  }
  return backing;
}

Result<Backing> open_device(const std::string& path) {
  Backing backing;
  backing.name = fmt::format("device {}", path);
  backing.fd.reset(open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!backing.fd.valid()) {
    return make_error(Errc::system, "cannot open {}: {}", backing.name, last_error());
  }
  struct stat st {};
  if (fstat(backing.fd.get(), &st) != 0) {
    return make_error(Errc::system, "fstat of {} failed: {}", backing.name, last_error());
  }
  if (!S_ISCHR(st.st_mode) && !S_ISREG(st.st_mode)) {
    return make_error(Errc::invalid_argument,
                      "{} is neither a character device nor a file (mode {:o})", backing.name,
                      st.st_mode);
  }
  backing.kind = RegionKind::device;
  backing.page_size = host_page_size();
  // A character device's size is its driver's business: mmap refuses a
  // range beyond what it exposes.
  backing.sized = S_ISREG(st.st_mode);
  return backing;
}

Result<Backing> adopt_fd(int fd) {
  Backing backing;
  backing.name = fmt::format("fd {}", fd);
  backing.fd.reset(fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!backing.fd.valid()) {
    return make_error(Errc::system, "cannot duplicate {}: {}", backing.name, last_error());
  }
  const RegionKind wanted = is_memfd(backing.fd.get()) ? RegionKind::memfd : RegionKind::file;
  if (Status ok = classify(backing, wanted); !ok) {
    return ok.error();
  }
  return backing;
}

Status fit_file(const Backing& backing, std::uint64_t offset, std::uint64_t size, bool grow) {
  constexpr auto kMaxOffset = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());
  if (offset > kMaxOffset || size > kMaxOffset - offset) {
    return make_error(Errc::invalid_argument,
                      "offset {} + size {} in {} is beyond the largest file", offset, size,
                      backing.name);
  }
  const std::uint64_t end = offset + size;
  struct stat st {};
  if (fstat(backing.fd.get(), &st) != 0) {
    return make_error(Errc::system, "fstat of {} failed: {}", backing.name, last_error());
  }
  const auto have = static_cast<std::uint64_t>(st.st_size);
  if (have >= end) {
    return Status::ok();
  }
  if (!grow) {
    return make_error(Errc::invalid_argument,
                      "{} holds {} bytes, too small for the region: it needs offset {} + size {} "
                      "= {} bytes",
                      backing.name, have, offset, size, end);
  }
  if (ftruncate(backing.fd.get(), static_cast<off_t>(end)) != 0) {
    return make_error(Errc::system, "growing {} from {} to {} bytes failed: {}", backing.name, have,
                      end, last_error());
  }
  return Status::ok();
}

Status check_page_aligned(const Backing& backing, std::string_view what, std::uint64_t value) {
  if (value % backing.page_size == 0) {
    return Status::ok();
  }
  const bool huge = backing.kind == RegionKind::hugetlbfs;
  return make_error(Errc::invalid_argument,
                    "{} {:#x} is not a multiple of the {}page size ({} bytes) of {}", what, value,
                    huge ? "huge " : "", backing.page_size, backing.name);
}

}  // namespace swiotlb
