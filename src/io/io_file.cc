// Opening the run's file for direct I/O, or a temporary one.
#include "swiotlb/io/io_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <vector>

#include "swiotlb/core/constants.h"

namespace swiotlb::io {

namespace {

int open_with(const IoFileOptions& options, const char* path, int flags, unsigned mode) {
  if (options.open) {
    return options.open(path, flags, mode);
  }
  return ::open(path, flags, mode);
}

}  // namespace

Result<IoFile> IoFile::open(const IoFileOptions& options) {
  IoFile file;
  if (options.path.empty()) {
    std::string pattern = options.temp_dir + "/swiotlb-io-XXXXXX";
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    const int tmp = ::mkstemp(name.data());
    if (tmp < 0) {
      const int err = errno;
      return make_error(Errc::system, "creating a temporary file in {}: {}", options.temp_dir,
                        errno_text(err));
    }
    ::close(tmp);
    file.path_ = name.data();
    file.temporary_ = true;
  } else {
    file.path_ = options.path;
  }
  constexpr unsigned kMode = 0600;
  file.fd_ = open_with(options, file.path_.c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, kMode);
  if (file.fd_ >= 0) {
    file.direct_ = true;
  } else {
    const int err = errno;
    if (err != EINVAL) {
      return make_error(Errc::system, "opening {} for direct I/O: {}", file.path_, errno_text(err));
    }
    if (!options.allow_buffered) {
      return make_error(Errc::invalid_argument,
                        "{}: its file system refuses O_DIRECT ({}), so I/O would go through the "
                        "page cache and the disk would not be the device; use a file on another "
                        "file system, or pass --allow-buffered to measure buffered I/O anyway",
                        file.path_, errno_text(err));
    }
    file.fd_ = open_with(options, file.path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kMode);
    if (file.fd_ < 0) {
      const int err2 = errno;
      return make_error(Errc::system, "opening {}: {}", file.path_, errno_text(err2));
    }
  }
  file.buffered_fd_ = ::open(file.path_.c_str(), O_RDWR | O_CLOEXEC);
  if (file.buffered_fd_ < 0) {
    const int err = errno;
    return make_error(Errc::system, "opening {} for buffered I/O: {}", file.path_, errno_text(err));
  }
  struct stat st {};
  if (::fstat(file.fd_, &st) != 0) {
    const int err = errno;
    return make_error(Errc::system, "fstat of {}: {}", file.path_, errno_text(err));
  }
  if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) < options.size &&
      ::ftruncate(file.fd_, static_cast<off_t>(options.size)) != 0) {
    const int err = errno;
    return make_error(Errc::system, "extending {} to {} bytes: {}", file.path_, options.size,
                      errno_text(err));
  }
  return file;
}

IoFile::IoFile(IoFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      buffered_fd_(std::exchange(other.buffered_fd_, -1)),
      direct_(other.direct_),
      temporary_(std::exchange(other.temporary_, false)),
      path_(std::move(other.path_)) {}

IoFile& IoFile::operator=(IoFile&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = std::exchange(other.fd_, -1);
    buffered_fd_ = std::exchange(other.buffered_fd_, -1);
    direct_ = other.direct_;
    temporary_ = std::exchange(other.temporary_, false);
    path_ = std::move(other.path_);
  }
  return *this;
}

IoFile::~IoFile() {
  reset();
}

void IoFile::reset() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (buffered_fd_ >= 0) {
    ::close(buffered_fd_);
    buffered_fd_ = -1;
  }
  if (temporary_) {
    ::unlink(path_.c_str());
    temporary_ = false;
  }
}

Result<std::uint64_t> IoFile::cached_bytes(std::uint64_t size) const {
  if (size == 0) {
    return std::uint64_t{0};
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, buffered_fd_, 0);
  if (map == MAP_FAILED) {
    const int err = errno;
    return make_error(Errc::system, "mapping {} ({} bytes) to see what is cached: {}", path_, size,
                      errno_text(err));
  }
  const std::uint64_t pages = (size + kPageSize - 1) / kPageSize;
  std::vector<unsigned char> resident(pages);
  const int rc = ::mincore(map, size, resident.data());
  const int err = errno;
  ::munmap(map, size);
  if (rc != 0) {
    return make_error(Errc::system, "mincore over {}: {}", path_, errno_text(err));
  }
  std::uint64_t cached = 0;
  for (unsigned char r : resident) {
    cached += (r & 1U) != 0 ? kPageSize : 0;
  }
  return cached;
}

}  // namespace swiotlb::io
