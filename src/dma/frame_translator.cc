// Frame tables for the translator: two hash maps, one per direction.
#include "swiotlb/dma/frame_translator.h"

#include <algorithm>
#include <iterator>

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

namespace swiotlb {

FrameExchange::FrameExchange(std::uint64_t first_mfn, std::uint64_t count) {
  if (count != 0) {
    free_.emplace(first_mfn, count);
  }
}

void FrameExchange::fail_after(std::uint64_t frames) {
  std::lock_guard guard(lock_);
  fail_after_ = frames;
}

std::uint64_t FrameExchange::free_frames() const {
  std::lock_guard guard(lock_);
  std::uint64_t frames = 0;
  for (const auto& [first, count] : free_) {
    frames += count;
  }
  return frames;
}

Result<std::uint64_t> FrameExchange::exchange(std::uint64_t count, std::uint64_t limit,
                                              std::uint64_t chunk) {
  std::lock_guard guard(lock_);
  const std::uint64_t limit_frames =
      limit == ~std::uint64_t{0} ? ~std::uint64_t{0} >> kPageShift : (limit + 1) >> kPageShift;
  // The lowest run first: the kernel asks for the fewest address bits it
  // can and raises them only when the hypervisor refuses.
  auto it = free_.begin();
  for (; it != free_.end(); ++it) {
    if (it->second >= count && it->first + count <= limit_frames) {
      break;
    }
  }
  if (it == free_.end() || count == 0) {
    return make_error(Errc::unreachable,
                      "exchange: no run of {} free machine frames ends below {:#x}", count, limit);
  }
  // Frame by frame in chunks, as the hypercall goes; a stop part way gives
  // back what it took.
  std::uint64_t done = 0;
  while (done < count) {
    const std::uint64_t step = std::min(chunk, count - done);
    if (done + step > fail_after_) {
      const std::uint64_t stopped_at = fail_after_;
      fail_after_ = ~std::uint64_t{0};
      return make_error(Errc::system,
                        "exchange: the hypervisor exchanged {} of {} frames and stopped; the {} "
                        "frames it handed out were taken back",
                        stopped_at, count, stopped_at);
    }
    done += step;
  }
  fail_after_ = ~std::uint64_t{0};
  const std::uint64_t first = it->first;
  const std::uint64_t left = it->second - count;
  free_.erase(it);
  if (left != 0) {
    free_.emplace(first + count, left);
  }
  return first;
}

Status FrameExchange::give_back(std::uint64_t first_mfn, std::uint64_t count) {
  if (count == 0) {
    return {};
  }
  std::lock_guard guard(lock_);
  // The free run after it, and the one before it, must not overlap it.
  auto next = free_.lower_bound(first_mfn);
  const bool overlaps_next = next != free_.end() && next->first < first_mfn + count;
  const bool overlaps_prev =
      next != free_.begin() && std::prev(next)->first + std::prev(next)->second > first_mfn;
  if (overlaps_next || overlaps_prev) {
    return make_error(Errc::invalid_argument,
                      "machine frames [{:#x}, {:#x}) given back, but some of them are free already",
                      first_mfn, first_mfn + count);
  }
  std::uint64_t first = first_mfn;
  std::uint64_t frames = count;
  if (next != free_.end() && next->first == first + frames) {
    frames += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    if (auto prev = std::prev(next); prev->first + prev->second == first) {
      first = prev->first;
      frames += prev->second;
      free_.erase(prev);
    }
  }
  free_.emplace(first, frames);
  return {};
}

bool FrameTranslator::foreign(PhysAddr addr, std::uint64_t size) const {
  if (size == 0 || to_machine_.empty()) {
    return false;
  }
  const std::uint64_t first = addr.value() >> kPageShift;
  const std::uint64_t last = (addr.value() + size - 1) >> kPageShift;
  for (std::uint64_t pfn = first; pfn <= last; ++pfn) {
    if (const auto it = to_machine_.find(pfn);
        it != to_machine_.end() && it->second != pfn && !exchanged_.contains(pfn)) {
      return true;
    }
  }
  return false;
}

Result<std::shared_ptr<const FrameTranslator>> FrameTranslator::exchanged(
    FrameExchange& exchange, PhysAddr start, std::uint64_t bytes, std::uint64_t limit) const {
  if (bytes == 0 || (start.value() & (kPageSize - 1)) != 0 || (bytes & (kPageSize - 1)) != 0) {
    return make_error(Errc::invalid_argument,
                      "exchange of [{:#x}, +{:#x}): a pool is exchanged in whole pages",
                      start.value(), bytes);
  }
  const std::uint64_t first_pfn = start.value() >> kPageShift;
  const std::uint64_t frames = bytes >> kPageShift;
  Result<std::uint64_t> first_mfn = exchange.exchange(frames, limit, kSegmentBytes >> kPageShift);
  if (!first_mfn) {
    return make_error(first_mfn.error().code(), "pool [{:#x}, {:#x}): {}", start.value(),
                      start.value() + bytes, first_mfn.error().message());
  }
  auto t = std::make_shared<FrameTranslator>(*this);
  for (std::uint64_t i = 0; i < frames; ++i) {
    const std::uint64_t pfn = first_pfn + i;
    if (const auto it = t->to_machine_.find(pfn); it != t->to_machine_.end()) {
      t->to_pseudo_.erase(it->second);  // the old frame is given up
      t->to_machine_.erase(it);
    }
  }
  for (std::uint64_t i = 0; i < frames; ++i) {
    const std::uint64_t pfn = first_pfn + i;
    const std::uint64_t mfn = *first_mfn + i;
    if (const auto owner = t->to_pseudo_.find(mfn); owner != t->to_pseudo_.end()) {
      // The frames are of no use to this guest: the hypervisor has them back.
      (void)exchange.give_back(*first_mfn, frames);
      return make_error(Errc::invalid_argument,
                        "exchange: machine frame {:#x} came back for pfn {:#x} but pfn {:#x} "
                        "owns it",
                        mfn, pfn, owner->second);
    }
    t->to_machine_.emplace(pfn, mfn);
    t->to_pseudo_.emplace(mfn, pfn);
    t->exchanged_.insert(pfn);
  }
  return std::shared_ptr<const FrameTranslator>(std::move(t));
}

}  // namespace swiotlb
