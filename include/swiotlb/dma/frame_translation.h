// FrameTranslation: how a device's view of memory passes through a guest's
// page frames before its dma ranges apply (a Xen-like pseudo-physical to
// machine translation, 4 KiB frames).
//
// Two kinds exist: FrameTranslator (frame_translator.h), fixed once made,
// and ExchangedTranslator (exchanged_translator.h), which adds pools whose
// frames were exchanged while devices run. A Device takes either through
// DeviceConfig::translator and asks it on every map, so an implementation
// answers without a lock.
//
// Thread safety: every method may be called from any thread at once.
#pragma once

#include <cstdint>

#include "swiotlb/core/address.h"
#include "swiotlb/core/export.h"

namespace swiotlb {

class SWIOTLB_API FrameTranslation {
 public:
  virtual ~FrameTranslation() = default;

  // The machine address of a CPU address, or kInvalidAddress for a page
  // with no machine frame of its own (a foreign page owns its frame).
  virtual std::uint64_t to_machine(PhysAddr addr) const = 0;
  // The CPU address of a machine address; kInvalidAddress when the
  // machine frame belongs to no page of this guest.
  virtual PhysAddr to_pseudo(std::uint64_t machine) const = 0;
  // True when [addr, addr + size) is contiguous in machine frames (a
  // mapping that is not must be bounced, as xen-swiotlb's
  // range_straddles_page_boundary).
  virtual bool contiguous(PhysAddr addr, std::uint64_t size) const = 0;
  // The machine address of `addr` when [addr, addr + size) is contiguous in
  // machine frames, else kInvalidAddress: contiguous() and to_machine() in
  // one pass, for the map path.
  virtual std::uint64_t range_to_machine(PhysAddr addr, std::uint64_t size) const {
    return contiguous(addr, size) ? to_machine(addr) : kInvalidAddress;
  }
  // True when some page of [addr, addr + size) is foreign: another guest's
  // page mapped here. Only those need the cache-flush hypercall; the
  // guest's own pages, exchanged ones included, are maintained by the CPU.
  virtual bool foreign(PhysAddr addr, std::uint64_t size) const = 0;

 protected:
  FrameTranslation() = default;
  FrameTranslation(const FrameTranslation&) = default;
  FrameTranslation& operator=(const FrameTranslation&) = default;
};

}  // namespace swiotlb
