// Process liveness by signal 0: the kernel checks that the pid exists (and
// whether we may signal it) and sends nothing.
#include "owner_process.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace swiotlb {

std::int32_t current_pid() {
  return static_cast<std::int32_t>(::getpid());
}

bool process_exists(std::int32_t pid) {
  // kill() with 0 or a negative pid addresses process groups, not a process.
  if (pid <= 0) {
    return false;
  }
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace swiotlb
