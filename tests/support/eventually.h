// Waiting in tests for another thread to reach a state: threads are ordered
// by polling what they leave behind, never by sleeping a guessed time.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace swiotlb::testing {

// Polls `done` until it holds, for at most 30 s; false if it never did.
inline bool eventually(const std::function<bool()>& done) {
  using namespace std::chrono_literals;
  const auto limit = std::chrono::steady_clock::now() + 30s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > limit) {
      return false;
    }
    std::this_thread::sleep_for(100us);
  }
  return true;
}

}  // namespace swiotlb::testing
