// ExchangedTranslator: runs of exchanged pool pages over a fixed base.
#include "swiotlb/dma/exchanged_translator.h"

#include "swiotlb/core/constants.h"

namespace swiotlb {

namespace {

constexpr std::uint64_t kPageMask = kPageSize - 1;

}  // namespace

ExchangedTranslator::ExchangedTranslator(std::shared_ptr<const FrameTranslator> base,
                                         std::uint32_t capacity)
    : base_(base != nullptr ? std::move(base) : FrameTranslator::Builder().build()),
      runs_(capacity) {}

std::uint64_t ExchangedTranslator::machine_frame(std::uint64_t pfn) const {
  const PhysAddr page(pfn << kPageShift);
  if (const std::optional<WindowMapping> run = runs_.find(page, kPageSize)) {
    return (run->dma_start + (page.value() - run->cpu_start)) >> kPageShift;
  }
  const std::uint64_t machine = base_->to_machine(page);
  if (machine == kInvalidAddress ||
      runs_.to_phys(DmaAddr(machine), kPageSize).value() != kInvalidAddress) {
    return kInvalidAddress;  // no frame, or a run owns it now
  }
  return machine >> kPageShift;
}

std::uint64_t ExchangedTranslator::to_machine(PhysAddr addr) const {
  const std::uint64_t mfn = machine_frame(addr.value() >> kPageShift);
  return mfn == kInvalidAddress ? kInvalidAddress
                                : (mfn << kPageShift) | (addr.value() & kPageMask);
}

PhysAddr ExchangedTranslator::to_pseudo(std::uint64_t machine) const {
  if (const PhysAddr in_run = runs_.to_phys(DmaAddr(machine)); in_run.value() != kInvalidAddress) {
    return in_run;
  }
  const PhysAddr page = base_->to_pseudo(machine);
  if (page.value() == kInvalidAddress || runs_.find(page).has_value()) {
    return PhysAddr(kInvalidAddress);  // nobody's, or a frame its page gave up
  }
  return page;
}

std::uint64_t ExchangedTranslator::range_to_machine(PhysAddr addr, std::uint64_t size) const {
  // A mapping in a pool lies inside its run: one lookup.
  if (const std::optional<WindowMapping> run = runs_.find(addr, size == 0 ? 1 : size)) {
    return run->dma_start + (addr.value() - run->cpu_start);
  }
  const std::uint64_t first = addr.value() >> kPageShift;
  const std::uint64_t last = size == 0 ? first : (addr.value() + size - 1) >> kPageShift;
  const std::uint64_t base = machine_frame(first);
  if (base == kInvalidAddress) {
    return kInvalidAddress;
  }
  for (std::uint64_t pfn = first + 1; pfn <= last; ++pfn) {
    if (machine_frame(pfn) != base + (pfn - first)) {
      return kInvalidAddress;
    }
  }
  return (base << kPageShift) | (addr.value() & kPageMask);
}

bool ExchangedTranslator::contiguous(PhysAddr addr, std::uint64_t size) const {
  return size == 0 || range_to_machine(addr, size) != kInvalidAddress;
}

bool ExchangedTranslator::foreign(PhysAddr addr, std::uint64_t size) const {
  if (size == 0) {
    return false;
  }
  const std::uint64_t first = addr.value() >> kPageShift;
  const std::uint64_t last = (addr.value() + size - 1) >> kPageShift;
  for (std::uint64_t pfn = first; pfn <= last; ++pfn) {
    const PhysAddr page(pfn << kPageShift);
    if (!runs_.find(page, kPageSize).has_value() && base_->foreign(page, kPageSize)) {
      return true;
    }
  }
  return false;
}

Status ExchangedTranslator::add_run(PhysAddr start, std::uint64_t bytes, std::uint64_t first_mfn) {
  const std::uint64_t frames = bytes >> kPageShift;
  if (bytes == 0 || ((start.value() | bytes) & kPageMask) != 0 ||
      start.value() + (bytes - 1) < start.value() || first_mfn + frames < first_mfn ||
      first_mfn + frames > (~std::uint64_t{0} >> kPageShift)) {
    return make_error(Errc::invalid_argument,
                      "exchanged run [{:#x}, +{:#x}) at mfn {:#x}: a run is whole pages and "
                      "must not wrap",
                      start.value(), bytes, first_mfn);
  }
  std::lock_guard guard(writer_);
  const std::uint64_t first_pfn = start.value() >> kPageShift;
  // A frame the base gave to a page by name stays that page's unless the
  // page is in this run or moved into another one.
  for (std::uint64_t i = 0; i < frames; ++i) {
    const std::uint64_t mfn = first_mfn + i;
    if (!base_->maps_machine_frame(mfn)) {
      continue;
    }
    const std::uint64_t owner = base_->to_pseudo(mfn << kPageShift).value() >> kPageShift;
    if ((owner >= first_pfn && owner < first_pfn + frames) ||
        runs_.find(PhysAddr(owner << kPageShift), kPageSize).has_value()) {
      continue;
    }
    return make_error(Errc::invalid_argument,
                      "exchanged run [{:#x}, +{:#x}): machine frame {:#x} belongs to pfn {:#x}",
                      start.value(), bytes, mfn, owner);
  }
  return runs_.add({start.value(), first_mfn << kPageShift, bytes, next_id_++});
}

Result<ExchangedRun> ExchangedTranslator::remove_run(PhysAddr start) {
  std::lock_guard guard(writer_);
  const std::optional<WindowMapping> run = runs_.find(start);
  if (!run || run->cpu_start != start.value()) {
    return make_error(Errc::not_mapped, "no exchanged run starts at {:#x}", start.value());
  }
  if (Status removed = runs_.remove(run->id); !removed) {
    return std::move(removed).error();
  }
  return ExchangedRun{PhysAddr(run->cpu_start), run->size, run->dma_start >> kPageShift};
}

std::vector<ExchangedRun> ExchangedTranslator::runs() const {
  std::vector<ExchangedRun> out;
  for (const WindowMapping& w : runs_.windows()) {
    out.push_back({PhysAddr(w.cpu_start), w.size, w.dma_start >> kPageShift});
  }
  return out;
}

}  // namespace swiotlb
