// The report of a failed SWIOTLB_CHECK.
#include "swiotlb/core/check.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>

namespace swiotlb::detail {

void check_failed(const char* condition, const char* reason, const char* file, int line) noexcept {
  // One write, so that reports from two threads do not interleave; no
  // allocation, since the heap may be what broke.
  std::array<char, 1024> text{};
  const int n = std::snprintf(text.data(), text.size(), "swiotlb: check failed at %s:%d: %s (%s)\n",
                              file, line, condition, reason);
  if (n > 0) {
    const auto length =
        static_cast<std::size_t>(n) < text.size() ? static_cast<std::size_t>(n) : text.size() - 1;
    [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, text.data(), length);
  }
  std::abort();
}

}  // namespace swiotlb::detail
