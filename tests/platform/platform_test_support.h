// Helpers for the platform tests: a scratch directory, a free address to
// place fixed regions at, a captured warning log, a forked child, and the
// process's resident memory.
//
// Fixed addresses are found by probing instead of being hard-coded, because
// the free parts of the address space differ with and without sanitizers
// (AddressSanitizer's shadow covers roughly 0x7fff8000-0x10007fff7fff).
//
// Thread safety: for one test thread.
#pragma once

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "swiotlb/core/address.h"
#include "swiotlb/core/log.h"

namespace swiotlb::test {

// A directory under the temporary directory, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "swiotlb-platform-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) {
      path_ = pattern;
    }
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) {
      std::filesystem::remove_all(path_, ignored);
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// An address, aligned to `align`, where `bytes` can be mapped right now.
// The lowest part of a larger hole is returned: the system fills holes from
// the top, so small mappings made meanwhile do not land on it.
inline std::optional<PhysAddr> free_address(std::uint64_t bytes, std::uint64_t align = 4096) {
  constexpr std::uint64_t kSlack = std::uint64_t{64} << 20;
  const std::uint64_t span = bytes + align + kSlack;
  void* p = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return std::nullopt;
  }
  munmap(p, span);
  const auto start = reinterpret_cast<std::uintptr_t>(p);
  return PhysAddr((start + align - 1) & ~(align - 1));
}

// Collects warnings while alive; restores the default sink after.
class LogCapture {
 public:
  LogCapture() {
    set_log_sink([this](std::string_view m) { messages_.emplace_back(m); });
  }
  ~LogCapture() { set_log_sink({}); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  const std::vector<std::string>& messages() const { return messages_; }

 private:
  std::vector<std::string> messages_;
};

// Runs `body` in a forked child and returns its exit code (body's result),
// or -1 when the fork failed or the child did not exit normally.
inline int run_in_child(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid < 0) {
    return -1;
  }
  if (pid == 0) {
    _exit(body());
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
    return -1;
  }
  return WEXITSTATUS(status);
}

// Resident memory of this process in bytes (/proc/self/statm), 0 if unknown.
inline std::uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0;
  std::uint64_t resident = 0;
  if (!(statm >> size >> resident)) {
    return 0;
  }
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace swiotlb::test
