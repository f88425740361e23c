// libFuzzer driver: check_iova_trace() of fuzz_checks.h on every input; anything
// it reports is a finding (the process aborts with the reason).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string broke =
      swiotlb::fuzz::check_iova_trace(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!broke.empty()) {
    std::fprintf(stderr, "fuzz_iova_trace: %s\n", broke.c_str());
    std::abort();
  }
  return 0;
}
