// Which CPU the calling thread runs on; areas and IOVA magazines are chosen
// by it, as the kernel chooses them by raw_smp_processor_id().
#pragma once

namespace swiotlb {

// The CPU the calling thread runs on now, or 0 when the system cannot
// tell: read from the thread's restartable-sequences area when the C
// library registered one (one load), from sched_getcpu otherwise. The
// answer can be stale by the time it is used; callers use it only as a
// hint for spreading load. Thread-safe; no allocation, no error.
unsigned current_cpu();

// The number of CPUs that can run this process (sched_getaffinity), at least 1.
unsigned cpu_count();

}  // namespace swiotlb
