// Xen's fixup: one exchange per configured pool the devices cannot reach.
#include "swiotlb/dma/xen_fixup.h"

#include <utility>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb {

Result<std::shared_ptr<const FrameTranslator>> xen_swiotlb_fixup(
    const IoTlb& io_tlb, std::shared_ptr<const FrameTranslator> translator, FrameExchange& exchange,
    std::uint64_t limit) {
  if (!translator) {
    return make_error(Errc::invalid_argument, "xen_swiotlb_fixup: no frame translator");
  }
  // The runs exchanged so far, handed back if a later pool fails.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> taken;  // first mfn, frames
  for (std::uint32_t i = 0; i < io_tlb.pool_count(); ++i) {
    const PoolInfo info = io_tlb.pool_info(i);
    const std::uint64_t bytes = info.end - info.start;
    if (translator->contiguous(info.start, bytes)) {
      const std::uint64_t machine = translator->to_machine(info.start);
      if (machine != kInvalidAddress && machine + (bytes - 1) <= limit) {
        continue;  // already reachable
      }
    }
    Result<std::shared_ptr<const FrameTranslator>> next =
        translator->exchanged(exchange, info.start, bytes, limit);
    if (!next) {
      for (const auto& [first_mfn, frames] : taken) {
        (void)exchange.give_back(first_mfn, frames);
      }
      return make_error(next.error().code(), "xen_swiotlb_fixup of the {} pool: {}", info.name,
                        next.error().message());
    }
    translator = std::move(*next);
    taken.emplace_back(translator->to_machine(info.start) >> kPageShift, bytes >> kPageShift);
  }
  return translator;
}

}  // namespace swiotlb
