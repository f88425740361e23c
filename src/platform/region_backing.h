// Internal to the platform layer: what stands behind a Region's mapping.
// A Backing is an owned descriptor (none for anonymous memory), the page
// size its mappings follow, and a name for messages. These functions open,
// size and seal backings; region_mapping.h maps them.
//
// Thread safety: none of their own; each Backing belongs to the call that is
// building one Region.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "host_page.h"
#include "swiotlb/core/error.h"
#include "swiotlb/platform/region_spec.h"
#include "unique_fd.h"

namespace swiotlb {

struct Backing {
  UniqueFd fd;  // not valid for anonymous memory
  RegionKind kind = RegionKind::anonymous;
  std::size_t page_size = 0;
  std::string name;   // "anonymous memory", "memfd", "file /x", "fd 7", ...
  bool sized = true;  // the file has a size to check (a character device has none)
};

Backing anonymous_backing();

// A new, empty memfd that allows sealing; size it with seal_memfd().
Result<Backing> open_memfd();

// Sizes a memfd from open_memfd() to `size` bytes and seals it against
// shrinking (a peer that shrank it would turn our accesses into SIGBUS),
// growing (the geometry is fixed at creation) and further sealing (so that a
// peer cannot add a write seal and lock other attachers out).
Status seal_memfd(const Backing& backing, std::uint64_t size);

// Opens `path` read-write (creating it, mode 0600, when `create`). The kind
// comes from the file system: hugetlbfs when the file is on one (page size:
// the huge page size, from fstatfs), file otherwise. `wanted` hugetlbfs
// refuses a path elsewhere.
Result<Backing> open_file(const std::string& path, RegionKind wanted, bool create);

// Opens the device file `path` read-write, never creating it: a character
// device, or a regular file standing in for one. Anything else is refused.
Result<Backing> open_device(const std::string& path);

// Takes a duplicate of a caller's descriptor; the kind is memfd for a memfd,
// else as for open_file().
Result<Backing> adopt_fd(int fd);

// Checks that the file holds offset + size bytes; a shorter one is grown to
// that when `grow` (never shrunk), else refused with the sizes in the message.
Status fit_file(const Backing& backing, std::uint64_t offset, std::uint64_t size, bool grow);

// Checks that `value` (named `what` in the message) is a multiple of the
// backing's page size.
Status check_page_aligned(const Backing& backing, std::string_view what, std::uint64_t value);

}  // namespace swiotlb
