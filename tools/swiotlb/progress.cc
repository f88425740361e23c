// TerminalProgress: a self-effacing progress line on a terminal's stderr.
#include "progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace swiotlb::sim {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kQuietFor = std::chrono::seconds(1);
constexpr auto kRedrawEvery = std::chrono::milliseconds(200);

}  // namespace

TerminalProgress::TerminalProgress(std::string what)
    : what_(std::move(what)), enabled_(::isatty(STDERR_FILENO) == 1), started_(Clock::now()) {}

TerminalProgress::~TerminalProgress() {
  finish();
}

void TerminalProgress::set_stage(std::string what) {
  what_ = std::move(what);
}

ProgressFn TerminalProgress::callback() {
  return [this](const ReplayProgress& progress) { update(progress); };
}

void TerminalProgress::update(const ReplayProgress& progress) {
  if (!enabled_) {
    return;
  }
  const Clock::time_point now = Clock::now();
  if (now - started_ < kQuietFor || (drawn_ && now - last_draw_ < kRedrawEvery)) {
    return;
  }
  const auto percent = static_cast<unsigned>(progress.fraction * 100);
  if (progress.events_total != 0) {
    fmt::print(stderr, "\r{}: {:3}% ({}/{} events)\x1b[K", what_, percent, progress.events_done,
               progress.events_total);
  } else {
    fmt::print(stderr, "\r{}: {:3}% ({} events)\x1b[K", what_, percent, progress.events_done);
  }
  // The line is a courtesy: if stderr cannot be flushed there is nothing
  // better to do than carry on.
  (void)std::fflush(stderr);
  drawn_ = true;
  last_draw_ = now;
}

void TerminalProgress::finish() {
  if (drawn_) {
    fmt::print(stderr, "\r\x1b[K");
    (void)std::fflush(stderr);  // as in update(): nothing to do if it fails
    drawn_ = false;
  }
}

}  // namespace swiotlb::sim
