// Whether the process a pool image names as its holder still runs (private
// to the pool layer).
#pragma once

#include <cstdint>

namespace swiotlb {

// This process's id, as a pool image records it.
std::int32_t current_pid();

// True when `pid` names a process that exists, even one this process may
// not signal, and even a zombie (it has not been waited for yet). A pid of
// 0 or below names no process: an image records 0 when nobody holds it.
bool process_exists(std::int32_t pid);

}  // namespace swiotlb
