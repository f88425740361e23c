// ExchangedTranslator: a guest's frame translation that changes while its
// devices run, because pools made later had their frames exchanged.
//
// A FrameTranslator is fixed once built, and a Device asks its translation
// on every map. A pool grown, or made for one mapping, after the devices
// exist must still become reachable: Xen's exchange (frame_translator.h,
// FrameExchange) gives its pages one run of machine frames below the
// devices' limit, and that run has to reach every device at once, before
// the pool takes its first mapping. This translation is a fixed base
// FrameTranslator plus a table of such runs (pool pages -> machine
// frames), added when a pool is exchanged and removed when it is given
// back; xen_exchange_backend.h does both for an IoTlb's pools.
//
// Per page: a page inside a run sits in the run's frame; any other page in
// the base's frame, unless a run now owns that frame (the page then has no
// machine frame, as a local page whose frame a foreign page owns). A
// machine frame inside a run belongs to the run's page; any other to the
// base's page, unless that page moved into a run (its old frame was given
// up). Pages in runs are the guest's own, never foreign.
//
// Memory ordering: readers take no lock. The runs live in a WindowTable
// (window_table.h: a sequence lock; each lookup sees the table before or
// after a change, never half of one), cpu side the pages, dma side the
// machine addresses. A translation of more than one page looks runs up once
// per page, so it is consistent only for memory whose runs do not change
// meanwhile; the IoTlb's backend protocol gives that for every address a
// caller may hold: a run is added before its pool takes a mapping and
// removed after the pool's last mapping is gone.
//
// Thread safety: every method may be called from any thread; add_run()
// and remove_run() are serialized inside.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/dma/frame_translation.h"
#include "swiotlb/dma/frame_translator.h"
#include "swiotlb/dma/window_table.h"

namespace swiotlb {

// Pages [start, start + bytes) in machine frames first_mfn, first_mfn + 1, ...
struct ExchangedRun {
  PhysAddr start;
  std::uint64_t bytes = 0;
  std::uint64_t first_mfn = 0;
};

class SWIOTLB_API ExchangedTranslator final : public FrameTranslation {
 public:
  // Runs over `base` (null: every page in its own frame), `capacity` runs
  // at once (at least 1).
  ExchangedTranslator(std::shared_ptr<const FrameTranslator> base, std::uint32_t capacity);
  ExchangedTranslator(const ExchangedTranslator&) = delete;
  ExchangedTranslator& operator=(const ExchangedTranslator&) = delete;

  std::uint64_t to_machine(PhysAddr addr) const override;
  PhysAddr to_pseudo(std::uint64_t machine) const override;
  bool contiguous(PhysAddr addr, std::uint64_t size) const override;
  std::uint64_t range_to_machine(PhysAddr addr, std::uint64_t size) const override;
  bool foreign(PhysAddr addr, std::uint64_t size) const override;

  // The pages of [start, start + bytes) now sit in machine frames from
  // `first_mfn` on (what an exchange handed out for them). Errors:
  // invalid_argument (not whole pages, or wrapping; pages or frames that
  // overlap another run; a frame that a page of the base still holds),
  // out_of_range (`capacity` runs already). Nothing changes on an error.
  Status add_run(PhysAddr start, std::uint64_t bytes, std::uint64_t first_mfn);
  // Takes out the run whose pages start at `start` and returns it: its
  // pages go back to the base's frames and its frames to nobody (the
  // caller hands them back to the hypervisor). Errors: not_mapped.
  Result<ExchangedRun> remove_run(PhysAddr start);

  // The runs now, in no particular order.
  std::vector<ExchangedRun> runs() const;
  const FrameTranslator& base() const { return *base_; }

 private:
  // The machine frame of page `pfn`, or kInvalidAddress.
  std::uint64_t machine_frame(std::uint64_t pfn) const;

  const std::shared_ptr<const FrameTranslator> base_;
  WindowTable runs_;           // cpu side: pages; dma side: machine addresses
  std::mutex writer_;          // add_run and remove_run check, then change
  std::uint32_t next_id_ = 0;  // guarded by writer_
};

}  // namespace swiotlb
