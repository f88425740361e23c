// Runs the built `swiotlb` command as a user would, through the shell, for
// the tests of its subcommands.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace swiotlb::testing {

struct CliRun {
  std::string out;  // what the redirect sends to the pipe
  int status = -1;  // exit status, -1 when the command did not exit
};

// Runs `swiotlb <args> <redirect>`; the redirect decides which streams end
// up in `out` (e.g. "2>/dev/null", "2>&1 >/dev/null").
inline CliRun run_cli(const std::string& args, const std::string& redirect = "") {
  const std::string command = std::string("'") + SWIOTLB_CLI + "' " + args + " " + redirect;
  CliRun run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return run;
  }
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    run.out.append(buffer.data(), n);
  }
  const int raw = pclose(pipe);
  run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return run;
}

}  // namespace swiotlb::testing
