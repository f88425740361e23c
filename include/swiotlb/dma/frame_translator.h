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
// Xen's fixup of a bounce pool (exchanging the pool's frames for
// machine-contiguous frames a device reaches) makes a new translator from
// an old one and a FrameExchange: see exchanged(). Pools exchanged while
// devices run are kept apart, in an ExchangedTranslator over this one.
//
// Thread safety: immutable after creation; build it with the Builder.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/dma/frame_translation.h"

namespace swiotlb {

// A model of the hypervisor's side of Xen's memory exchange
// (XENMEM_exchange, as xen_create_contiguous_region uses it): machine
// frames it can hand a guest in place of the guest's own, one
// machine-contiguous run at a time. It can be made to stop part way, as a
// real exchange may (the hypercall reports how many frames it exchanged).
//
// Thread safety: every method may be called from any thread.
class SWIOTLB_API FrameExchange {
 public:
  // Machine frames [first_mfn, first_mfn + count) are free to hand out.
  FrameExchange(std::uint64_t first_mfn, std::uint64_t count);

  // Fault injection: the next exchange stops after `frames` frames.
  void fail_after(std::uint64_t frames);
  // Free machine frames now.
  std::uint64_t free_frames() const;

  // Takes the lowest run of `count` free machine frames that ends at or
  // below machine address `limit`, and exchanges it `chunk` frames at a
  // time. Returns its first mfn. Errors: unreachable (no such run),
  // system (the exchange stopped part way: every frame it handed out is
  // taken back, and the message says how many there were).
  Result<std::uint64_t> exchange(std::uint64_t count, std::uint64_t limit, std::uint64_t chunk);
  // Takes back machine frames [first_mfn, first_mfn + count) that an
  // exchange handed out (a pool given up, or an exchange its guest could
  // not use). Errors: invalid_argument (some of them are free already;
  // nothing changes).
  Status give_back(std::uint64_t first_mfn, std::uint64_t count);

 private:
  mutable std::mutex lock_;
  std::map<std::uint64_t, std::uint64_t> free_;   // first mfn -> frames; guarded by lock_
  std::uint64_t fail_after_ = ~std::uint64_t{0};  // guarded by lock_
};

class SWIOTLB_API FrameTranslator final : public FrameTranslation {
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
  std::uint64_t to_machine(PhysAddr addr) const override;
  // The CPU address of a machine address; kInvalidAddress when the machine
  // frame belongs to no page of this guest (an identity frame shadowed by a
  // foreign mapping).
  PhysAddr to_pseudo(std::uint64_t machine) const override;
  bool contiguous(PhysAddr addr, std::uint64_t size) const override;
  // A page is foreign when it was mapped (Builder::map) to a machine frame
  // other than its own frame number; pages exchanged() are the guest's own.
  bool foreign(PhysAddr addr, std::uint64_t size) const override;
  // True when machine frame `mfn` was given to a page by map() or
  // exchanged() (an identity frame is not: it is claimed by default only).
  bool maps_machine_frame(std::uint64_t mfn) const { return to_pseudo_.contains(mfn); }

  // The kernel's xen_swiotlb_fixup for one pool: a translator in which the
  // pages of [start, start + bytes) (whole pages) sit in one run of machine
  // frames ending at or below machine address `limit`, got from `exchange`
  // one segment (256 KiB) at a time. The frames given up are not reused.
  // This translator is unchanged (it is immutable); the caller hands the
  // new one to its devices. Errors: invalid_argument (not whole pages, or
  // an exchanged frame that another page already owns: the frames go back
  // to `exchange`), and those of FrameExchange::exchange, which leave
  // everything as it was.
  Result<std::shared_ptr<const FrameTranslator>> exchanged(FrameExchange& exchange, PhysAddr start,
                                                           std::uint64_t bytes,
                                                           std::uint64_t limit) const;

 private:
  std::unordered_map<std::uint64_t, std::uint64_t> to_machine_;
  std::unordered_map<std::uint64_t, std::uint64_t> to_pseudo_;
  std::unordered_set<std::uint64_t> exchanged_;  // pfns given frames by exchanged()
};

}  // namespace swiotlb
