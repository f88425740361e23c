// The file an I/O run works on: opened for direct I/O when the file system
// allows it, created as a temporary file when no path is given.
//
// Ownership: an IoFile owns its descriptors (closed by the destructor) and,
// when it created a temporary file, the file itself (removed by the
// destructor). Thread safety: none needed; an IoFile is not shared.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "swiotlb/core/error.h"

namespace swiotlb::io {

// How a path is opened: ::open by default. A seam for tests that need a
// file system that refuses O_DIRECT.
using OpenFn = std::function<int(const char* path, int flags, unsigned mode)>;

struct IoFileOptions {
  // The file to use; empty: a temporary file in `temp_dir`, removed at the end.
  std::string path;
  std::string temp_dir = "/var/tmp";
  // The file is made at least this long (extended, never shortened).
  std::uint64_t size = 0;
  // When the file system refuses O_DIRECT, go on with buffered I/O (the page
  // cache then sits between the ring and the disk) instead of failing.
  bool allow_buffered = false;
  OpenFn open;  // empty: ::open
};

class IoFile {
 public:
  // Opens (or creates) the file read-write with O_DIRECT, and a second,
  // buffered descriptor on it for the buffered baseline. Errors:
  // invalid_argument (O_DIRECT refused and !allow_buffered: the message
  // says so and names --allow-buffered), system (open, ftruncate).
  static Result<IoFile> open(const IoFileOptions& options);

  IoFile(IoFile&& other) noexcept;
  IoFile& operator=(IoFile&& other) noexcept;
  IoFile(const IoFile&) = delete;
  IoFile& operator=(const IoFile&) = delete;
  ~IoFile();

  int fd() const { return fd_; }                    // O_DIRECT unless !direct()
  int buffered_fd() const { return buffered_fd_; }  // through the page cache
  bool direct() const { return direct_; }
  const std::string& path() const { return path_; }
  bool temporary() const { return temporary_; }

  // Bytes of the first `size` of the file that sit in the page cache now
  // (mincore over a mapping of the file): how much a run left cached.
  Result<std::uint64_t> cached_bytes(std::uint64_t size) const;

 private:
  IoFile() = default;
  void reset();

  int fd_ = -1;
  int buffered_fd_ = -1;
  bool direct_ = false;
  bool temporary_ = false;
  std::string path_;
};

}  // namespace swiotlb::io
