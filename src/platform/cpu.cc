// CPU identity through the scheduler: a hint, never a correctness input.
#include "swiotlb/platform/cpu.h"

#include <sched.h>

#include <cstdint>

#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#define SWIOTLB_HAVE_RSEQ_AREA 1
#endif

namespace swiotlb {

unsigned current_cpu() {
#ifdef SWIOTLB_HAVE_RSEQ_AREA
  // The C library registers a restartable-sequences area for every thread
  // (glibc 2.35 on), in which the kernel keeps the thread's CPU current at
  // every return to user space: one load, where sched_getcpu costs a call
  // and a few nanoseconds on every map. The area sits __rseq_offset bytes
  // from the thread pointer; its cpu_id is negative until registered, and
  // __rseq_size is 0 when the C library did not register it at all.
  if (__rseq_size != 0) {
    const auto* area = reinterpret_cast<const volatile struct rseq*>(
        static_cast<const char*>(__builtin_thread_pointer()) + __rseq_offset);
    const auto cpu = static_cast<std::int32_t>(area->cpu_id);
    if (cpu >= 0) {
      return static_cast<unsigned>(cpu);
    }
  }
#endif
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
