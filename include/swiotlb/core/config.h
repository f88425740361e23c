// The pool's configuration, parsed from the kernel's `swiotlb=` parameter.
//
//   swiotlb=<nslabs>[,<nareas>][,force|noforce][,addr=<phys>]
//
// Parsed as the kernel parses it, with the kernel's rounding:
//  - nslabs is rounded up to a multiple of 128 (a whole segment);
//  - nareas 0 means 1, any other value is rounded up to a power of two;
//  - nslabs is then raised to 128 * nareas if smaller, else rounded up to a
//    power of two.
// Without `,<nareas>` the number of CPUs takes its place, as at boot.
// `addr=<phys>` asks for the pool at a fixed address (seed 000).
//
// A word of our own, `swiotlb_high=<nslabs>[,<nareas>]`, adds a high pool
// (above 4 GiB) beside the default low one; see IoTlbOptions.
//
// Where the kernel silently ignores or adjusts something, the parse accepts it
// the same way and adds a warning that says what happened. Input the kernel
// would misread (garbage, overflow, an unknown word, an empty value) is an
// error that names the offending token.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"

namespace swiotlb {

enum class ForceMode : std::uint8_t {
  automatic,  // bounce only what a device cannot reach
  force,      // bounce every streaming mapping
  noforce,    // never bounce (the kernel then also frees the pool)
};

SWIOTLB_API std::string_view to_string(ForceMode mode);

struct SwiotlbConfig {
  std::uint64_t nslabs = 0;  // slots, after the kernel's rounding
  std::uint32_t nareas = 1;  // areas, a power of two
  ForceMode force = ForceMode::automatic;
  std::optional<std::uint64_t> addr;  // fixed pool address, if asked for

  // A second pool for devices that reach above 4 GiB, from our own
  // `swiotlb_high=<nslabs>[,<nareas>]` word (rounded as swiotlb= is).
  std::optional<std::uint64_t> high_nslabs;
  std::uint32_t high_nareas = 1;

  // What the text asked for before rounding (for messages and `info`).
  std::optional<std::uint64_t> requested_nslabs;
  std::optional<std::uint64_t> requested_nareas;

  // Things the kernel would have accepted silently, said out loud.
  std::vector<std::string> warnings;

  std::uint64_t bytes() const { return nslabs << 11; }
};

// The configuration a kernel boots with when no `swiotlb=` is given: 64 MiB,
// nareas from the CPU count, rounded as above.
SWIOTLB_API SwiotlbConfig default_swiotlb_config(unsigned cpu_count);

// Parses `text`: either a bare value ("65536,8,force"), a single
// "swiotlb=..." word, or a whole kernel command line in which every
// `swiotlb=` word is applied in order (as the kernel's early_param does).
// `cpu_count` stands in for the number of possible CPUs.
//
// Text that is one word, and not `name=value` for some other parameter, is
// taken as a bare value. On a command line, words after "--" belong to init
// and are skipped, and double quotes group words as the kernel groups them.
// ",<nareas>" (a leading comma) gives nareas without nslabs, as in the
// kernel. Later words win where they set something, except that noforce,
// once given, stays: the kernel keeps it as a flag nothing clears.
SWIOTLB_API Result<SwiotlbConfig> parse_swiotlb_config(std::string_view text, unsigned cpu_count);

// Checks an explicit geometry (not from the command line, so not rounded):
// nslabs a non-zero multiple of 128 and at most kMaxSlotCount, nareas a power
// of two with at least one segment per area, nslabs divisible by nareas.
SWIOTLB_API Status validate_geometry(std::uint64_t nslabs, std::uint32_t nareas);

}  // namespace swiotlb
