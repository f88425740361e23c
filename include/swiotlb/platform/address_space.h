// An AddressSpace turns a CPU-side address (PhysAddr) into a pointer the
// library can read and write, so that the layers above copy bounce data
// without knowing whether addresses are this process's own or those of a
// modelled machine.
//
// Two implementations: HostAddressSpace (here), where a PhysAddr is a host
// virtual address, as for every user-space caller; and MachineModel
// (machine_model.h), where it is a physical address of a modelled board
// whose RAM banks are backed by host memory.
//
// Thread safety: host_pointer() is const and must be safe to call from any
// number of threads at once, without locks; both implementations are.
#pragma once

#include <cstddef>
#include <cstdint>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"

namespace swiotlb {

class AddressSpace {
 public:
  virtual ~AddressSpace() = default;

  // The host pointer for `addr`, valid for `bytes` bytes (0 allowed: just
  // the pointer). Fails when the range is not wholly backed by this address
  // space; the error names the range and why.
  virtual Result<std::byte*> host_pointer(PhysAddr addr, std::uint64_t bytes) const = 0;

 protected:
  AddressSpace() = default;
  AddressSpace(const AddressSpace&) = default;
  AddressSpace& operator=(const AddressSpace&) = default;
};

// The identity: a PhysAddr is a host virtual address. It cannot know which
// addresses are mapped, so it trusts the caller (as memcpy would) and fails
// only for the null address and for a range that wraps past the top of the
// address space. Stateless.
class HostAddressSpace final : public AddressSpace {
 public:
  Result<std::byte*> host_pointer(PhysAddr addr, std::uint64_t bytes) const override;
};

// A shared HostAddressSpace, for callers that need one by reference.
const HostAddressSpace& host_address_space();

}  // namespace swiotlb
