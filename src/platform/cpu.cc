// CPU identity through the scheduler: a hint, never a correctness input.
#include "swiotlb/platform/cpu.h"

#include <sched.h>

namespace swiotlb {

unsigned current_cpu() {
  const int cpu = sched_getcpu();
  return cpu < 0 ? 0u : static_cast<unsigned>(cpu);
}

unsigned cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    return 1;
  }
  const int n = CPU_COUNT(&set);
  return n > 0 ? static_cast<unsigned>(n) : 1u;
}

}  // namespace swiotlb
