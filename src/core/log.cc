// The warning sink and the printk-style rate limit.
#include "swiotlb/core/log.h"

#include <cstdio>
#include <string>

namespace swiotlb {

namespace {

LogSink& sink() {
  static LogSink s;
  return s;
}

}  // namespace

void set_log_sink(LogSink s) {
  sink() = std::move(s);
}

void log_warning(std::string_view message) {
  if (sink()) {
    sink()(message);
    return;
  }
  // stderr is the sink of last resort: if writing to it fails there is
  // nowhere left to report that.
  (void)std::fprintf(stderr, "swiotlb: %.*s\n", static_cast<int>(message.size()), message.data());
}

bool RateLimit::allow(std::uint64_t* suppressed) {
  std::lock_guard guard(lock_);
  const auto now = std::chrono::steady_clock::now();
  if (printed_ == 0 || now - window_start_ >= interval_) {
    window_start_ = now;
    printed_ = 0;
  }
  if (printed_ >= burst_) {
    ++missed_;
    return false;
  }
  ++printed_;
  *suppressed = missed_;
  missed_ = 0;
  return true;
}

}  // namespace swiotlb
