// A progress line on standard error for long replays.
//
// TerminalProgress is a ProgressFn (replay.h) that stays silent unless
// standard error is a terminal and the work has already taken more than a
// second; then it redraws one line ("replay:  42% (420000 events)")
// at most a few times a second. finish() clears the line. Short runs and
// runs whose standard error goes to a file or pipe print nothing, so scripts
// see no noise.
#pragma once

#include <chrono>
#include <string>

#include "swiotlb/sim/replay.h"

namespace swiotlb::sim {

class TerminalProgress {
 public:
  // `what` names the work on the line ("replay", "size linux-6.1").
  explicit TerminalProgress(std::string what);
  ~TerminalProgress();
  TerminalProgress(const TerminalProgress&) = delete;
  TerminalProgress& operator=(const TerminalProgress&) = delete;

  // Starts a new stage with another name; the one-second delay still counts
  // from construction.
  void set_stage(std::string what);

  // A callback for ReplayOptions::progress that reports to this line.
  // REQUIRES: *this outlives the callback's use.
  ProgressFn callback();

  // Clears the line if one was drawn.
  void finish();

 private:
  void update(const ReplayProgress& progress);

  std::string what_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace swiotlb::sim
