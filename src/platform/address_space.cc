// The host address space: PhysAddr is the caller's own virtual address.
// Stateless, so nothing to synchronize.
#include "swiotlb/platform/address_space.h"

namespace swiotlb {

Result<std::byte*> HostAddressSpace::host_pointer(PhysAddr addr, std::uint64_t bytes) const {
  if (addr.value() == 0) {
    return make_error(Errc::out_of_range, "address 0 (null) is not host memory");
  }
  if (bytes > kInvalidAddress - addr.value() + 1) {
    return make_error(Errc::out_of_range,
                      "host range at {:#x} of {} bytes wraps past the top of the address space",
                      addr.value(), bytes);
  }
  return static_cast<std::byte*>(addr.to_pointer());
}

const HostAddressSpace& host_address_space() {
  static const HostAddressSpace space;
  return space;
}

}  // namespace swiotlb
