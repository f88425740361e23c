// A Xen-like translation of page frames: a guest's pseudo-physical frame
// numbers (pfns) become machine frame numbers (mfns) before the device's dma
// ranges apply, so one device can see a foreign guest page at another
// machine address. Frames with no entry are local and map 1:1.
//
// A translation must be one-to-one. When a foreign mapping claims a machine
// frame that is also the identity frame of a local page (the pfn equal to
// it), the foreign page owns that frame and the local page has no machine
// address at all: the device cannot reach it, so it is bounced.
//
// Thread safety: immutable after creation; build it with the Builder.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"

namespace swiotlb {

class FrameTranslator {
 public:
  class Builder {
   public:
    // Maps guest frame `pfn` to machine frame `mfn`. Fails for a pfn mapped
    // twice or an mfn given to two pfns.
    Status map(std::uint64_t pfn, std::uint64_t mfn);
    std::shared_ptr<const FrameTranslator> build();

   private:
    std::unordered_map<std::uint64_t, std::uint64_t> to_machine_;
    std::unordered_map<std::uint64_t, std::uint64_t> to_pseudo_;
  };

  // The machine address of a CPU address (4 KiB frames), or kInvalidAddress
  // for a local page whose frame a foreign page owns.
  std::uint64_t to_machine(PhysAddr addr) const;
  // The CPU address of a machine address; kInvalidAddress when the machine
  // frame belongs to no page of this guest (an identity frame shadowed by a
  // foreign mapping).
  PhysAddr to_pseudo(std::uint64_t machine) const;
  // True when [addr, addr + size) is contiguous in machine frames (a
  // mapping that is not must be bounced, as xen-swiotlb's
  // range_straddles_page_boundary).
  bool contiguous(PhysAddr addr, std::uint64_t size) const;

 private:
  std::unordered_map<std::uint64_t, std::uint64_t> to_machine_;
  std::unordered_map<std::uint64_t, std::uint64_t> to_pseudo_;
};

}  // namespace swiotlb
