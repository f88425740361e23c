// libFuzzer driver: check_op_sequence() of op_sequence.h on every input;
// anything it reports is a finding (the process aborts with the reason).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "op_sequence.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string broke =
      swiotlb::fuzz::check_op_sequence(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!broke.empty()) {
    std::fprintf(stderr, "fuzz_ops: %s\n", broke.c_str());
    std::abort();
  }
  return 0;
}
