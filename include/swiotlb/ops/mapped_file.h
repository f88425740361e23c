// A whole file's bytes in memory, for parsers that want one buffer: mapped
// read-only when the file is a regular one, read in full up to
// kMaxStreamBytes otherwise (pipes, sockets). Directories and devices
// (/dev/zero, a terminal) are refused. For the library's own layers (the
// trace parser, the replays), not a consumer's API.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "swiotlb/core/error.h"

namespace swiotlb::ops {

class MappedFile {
 public:
  // The most bytes read from a file that cannot be mapped (1 GiB).
  static constexpr std::size_t kMaxStreamBytes = std::size_t{1} << 30;

  // Fails with Errc::system (and the errno text) when the file cannot be
  // opened, mapped or read, and with Errc::invalid_argument for a directory,
  // a device, or a stream longer than kMaxStreamBytes.
  static Result<std::unique_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::string_view text() const { return {data_, size_}; }

 private:
  MappedFile() = default;

  const char* data_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;  // munmap on destruction, else data_ points into copy_
  std::string copy_;
};

}  // namespace swiotlb::ops
