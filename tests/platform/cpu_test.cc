// current_cpu() names the CPU the calling thread runs on: pinned to each
// CPU it may use in turn, the thread is told that CPU (as sched_getcpu
// tells it), whichever way current_cpu reads it.
#include "swiotlb/platform/cpu.h"

#include <gtest/gtest.h>
#include <sched.h>

namespace swiotlb {
namespace {

// Restores the thread's affinity when the test ends.
class AffinityGuard {
 public:
  AffinityGuard() { ok_ = sched_getaffinity(0, sizeof(saved_), &saved_) == 0; }
  ~AffinityGuard() {
    if (ok_) {
      sched_setaffinity(0, sizeof(saved_), &saved_);
    }
  }
  AffinityGuard(const AffinityGuard&) = delete;
  AffinityGuard& operator=(const AffinityGuard&) = delete;
  bool ok() const { return ok_; }
  const cpu_set_t& saved() const { return saved_; }

 private:
  cpu_set_t saved_{};
  bool ok_ = false;
};

TEST(CurrentCpu, IsTheCpuTheThreadIsPinnedTo) {
  AffinityGuard guard;
  ASSERT_TRUE(guard.ok());
  const unsigned allowed = cpu_count();
  int checked = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &guard.saved())) {
      continue;
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    sched_yield();  // the move to that CPU has happened by the return
    EXPECT_EQ(current_cpu(), static_cast<unsigned>(cpu));
    EXPECT_EQ(sched_getcpu(), cpu);
    ++checked;
  }
  EXPECT_EQ(static_cast<unsigned>(checked), allowed);
}

}  // namespace
}  // namespace swiotlb
