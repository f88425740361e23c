// Frame tables for the translator: two hash maps, one per direction.
#include "swiotlb/dma/frame_translator.h"

#include "swiotlb/core/constants.h"

namespace swiotlb {

Status FrameTranslator::Builder::map(std::uint64_t pfn, std::uint64_t mfn) {
  if (to_machine_.contains(pfn)) {
    return make_error(Errc::invalid_argument, "pfn {:#x} is mapped twice", pfn);
  }
  if (to_pseudo_.contains(mfn)) {
    return make_error(Errc::invalid_argument, "mfn {:#x} is given to pfns {:#x} and {:#x}", mfn,
                      to_pseudo_.at(mfn), pfn);
  }
  to_machine_.emplace(pfn, mfn);
  to_pseudo_.emplace(mfn, pfn);
  return {};
}

std::shared_ptr<const FrameTranslator> FrameTranslator::Builder::build() {
  auto t = std::make_shared<FrameTranslator>();
  t->to_machine_ = std::move(to_machine_);
  t->to_pseudo_ = std::move(to_pseudo_);
  return t;
}

std::uint64_t FrameTranslator::to_machine(PhysAddr addr) const {
  const std::uint64_t pfn = addr.value() >> kPageShift;
  std::uint64_t mfn = pfn;
  if (const auto it = to_machine_.find(pfn); it != to_machine_.end()) {
    mfn = it->second;
  } else if (to_pseudo_.contains(pfn)) {
    return kInvalidAddress;  // a foreign page owns this page's identity frame
  }
  return (mfn << kPageShift) | (addr.value() & (kPageSize - 1));
}

PhysAddr FrameTranslator::to_pseudo(std::uint64_t machine) const {
  const std::uint64_t mfn = machine >> kPageShift;
  const std::uint64_t offset = machine & (kPageSize - 1);
  if (const auto it = to_pseudo_.find(mfn); it != to_pseudo_.end()) {
    return PhysAddr((it->second << kPageShift) | offset);
  }
  // An identity frame, unless that pfn was itself moved elsewhere (then no
  // page of this guest lives in it).
  if (to_machine_.contains(mfn)) {
    return PhysAddr(kInvalidAddress);
  }
  return PhysAddr(machine);
}

bool FrameTranslator::contiguous(PhysAddr addr, std::uint64_t size) const {
  if (size == 0) {
    return true;
  }
  const std::uint64_t first = addr.value() >> kPageShift;
  const std::uint64_t last = (addr.value() + size - 1) >> kPageShift;
  const std::uint64_t base = to_machine(PhysAddr(first << kPageShift));
  if (base == kInvalidAddress) {
    return false;
  }
  for (std::uint64_t pfn = first + 1; pfn <= last; ++pfn) {
    if (to_machine(PhysAddr(pfn << kPageShift)) != base + ((pfn - first) << kPageShift)) {
      return false;
    }
  }
  return true;
}

}  // namespace swiotlb
