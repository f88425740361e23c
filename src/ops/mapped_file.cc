// MappedFile: mmap for regular files, a read loop for everything else.
#include "swiotlb/ops/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace swiotlb::ops {
namespace {

Error system_error(std::string_view what, const std::string& path) {
  return make_error(Errc::system, "cannot {} {}: {}", what, path, errno_text(errno));
}

// Closes the descriptor on every path out.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Status read_all(int fd, const std::string& path, std::string& out) {
  char buffer[1 << 16];
  for (;;) {
    if (out.size() > MappedFile::kMaxStreamBytes) {
      return make_error(Errc::invalid_argument,
                        "{} gave more than {} bytes: a stream is read up to that limit (give a "
                        "regular file for a larger trace)",
                        path, MappedFile::kMaxStreamBytes);
    }
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got == 0) {
      return {};
    }
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      return system_error("read", path);
    }
    out.append(buffer, static_cast<std::size_t>(got));
  }
}

}  // namespace

Result<std::unique_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return system_error("open", path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return system_error("stat", path);
  }
  if (S_ISDIR(st.st_mode)) {
    return make_error(Errc::invalid_argument, "{} is a directory, not a trace file", path);
  }
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    return make_error(Errc::invalid_argument,
                      "{} is a device, not a trace file (give a regular file or a pipe)", path);
  }
  std::unique_ptr<MappedFile> file(new MappedFile);
  if (S_ISREG(st.st_mode) && st.st_size > 0) {
    const auto size = static_cast<std::size_t>(st.st_size);
    void* data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (data == MAP_FAILED) {
      return system_error("map", path);
    }
    // One sequential pass: let the kernel read ahead generously.
    ::madvise(data, size, MADV_SEQUENTIAL);
    file->data_ = static_cast<const char*>(data);
    file->size_ = size;
    file->mapped_ = true;
    return file;
  }
  if (Status read = read_all(fd.get(), path, file->copy_); !read) {
    return read.error();
  }
  file->data_ = file->copy_.data();
  file->size_ = file->copy_.size();
  return file;
}

MappedFile::~MappedFile() {
  if (mapped_) {
    ::munmap(const_cast<char*>(data_), size_);
  }
}

}  // namespace swiotlb::ops
