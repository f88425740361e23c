// Where the library's warnings go. The kernel prints its swiotlb warnings
// (a full pool, a bad unmap) to the kernel log; this library hands them to a
// sink that defaults to standard error and can be replaced, for example by a
// test that wants to read them.
//
// Thread safety: log_warning() may be called from any thread; set_log_sink()
// must not race with it (set the sink once, at start-up).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string_view>

namespace swiotlb {

using LogSink = std::function<void(std::string_view message)>;

// Replaces the sink; an empty function restores the default (stderr).
void set_log_sink(LogSink sink);
void log_warning(std::string_view message);

// The kernel's printk rate limit: at most `burst` messages per `interval`;
// the rest are counted and reported with the next message that passes.
class RateLimit {
 public:
  RateLimit(std::chrono::milliseconds interval, std::uint32_t burst)
      : interval_(interval), burst_(burst) {}

  // True when a message may be printed now. *suppressed receives how many
  // were held back since the last message that passed.
  bool allow(std::uint64_t* suppressed);

 private:
  std::mutex lock_;
  std::chrono::milliseconds interval_;
  std::uint32_t burst_;
  std::chrono::steady_clock::time_point window_start_{};
  std::uint32_t printed_ = 0;  // guarded by lock_
  std::uint64_t missed_ = 0;   // guarded by lock_
};

}  // namespace swiotlb
