// Internal to the platform layer: putting a Backing into the address space,
// anywhere or at one exact address, never on top of an existing mapping.
//
// Thread safety: the functions may run concurrently; the address space is
// the kernel's to arbitrate (two callers asking for the same fixed address:
// one wins, the other gets "taken").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"
#include "swiotlb/platform/region_spec.h"

namespace swiotlb {

struct MapRequest {
  std::size_t size = 0;  // a multiple of the backing's page size
  int fd = -1;           // -1: private anonymous memory; else mapped shared
  std::uint64_t offset = 0;
  // hugetlbfs: reserve the huge pages when mapping, so that a shortage is an
  // error now rather than SIGBUS at the first touch.
  bool reserve = false;
  std::size_t page_size = 0;  // the backing's, for messages
  std::string_view what;      // the backing's name, for messages
};

// Maps where the system chooses, low first when `placement` asks for it.
Result<std::byte*> map_anywhere(const MapRequest& request, RegionPlacement placement);

// Maps at exactly `addr` with MAP_FIXED_NOREPLACE. An address in use fails
// with a message naming the mapping that holds it; a kernel that took the
// flag as a hint and mapped elsewhere has that mapping undone and fails.
Result<std::byte*> map_fixed(const MapRequest& request, PhysAddr addr);

}  // namespace swiotlb
