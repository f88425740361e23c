// The op vocabulary on a Device, through the DMA API (apply_op.h).
#include "swiotlb/dma/apply_op.h"

#include <type_traits>
#include <variant>

#include "swiotlb/core/error_format.h"
#include "swiotlb/dma/dma_api.h"

namespace swiotlb::ops {

Applied apply(const Op& op, Device& device) {
  return std::visit(
      [&](const auto& o) -> Applied {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, Map>) {
          const DeviceConfig& config = device.config();
          if (o.min_align_mask != config.min_align_mask ||
              o.seg_boundary_mask != config.seg_boundary_mask) {
            return make_error(Errc::invalid_argument,
                              "a map with min_align_mask {:#x} and seg_boundary_mask {:#x} on a "
                              "device whose masks are {:#x} and {:#x}",
                              o.min_align_mask, o.seg_boundary_mask, config.min_align_mask,
                              config.seg_boundary_mask);
          }
          if (o.alloc_size != 0 || o.alloc_align_mask != 0) {
            return make_error(Errc::invalid_argument,
                              "a map with alloc_size {} and alloc_align_mask {:#x} on a device: "
                              "map_page takes neither",
                              o.alloc_size, o.alloc_align_mask);
          }
          Result<DmaAddr> got =
              map_page(device, PhysAddr(o.orig), o.size, o.dir, Attrs::from_bits(o.attrs));
          if (!got) {
            return got.error();
          }
          return got->value();
        } else if constexpr (std::is_same_v<T, Unmap>) {
          if (Status claimed = require_claimed_size(o, "the DMA API"); !claimed) {
            return claimed.error();
          }
          if (Status ok =
                  unmap_page(device, DmaAddr(o.addr), o.size, o.dir, Attrs::from_bits(o.attrs));
              !ok) {
            return ok.error();
          }
          return std::uint64_t{0};
        } else if constexpr (std::is_same_v<T, Sync>) {
          const Status ok = o.to == SyncFor::cpu
                                ? sync_single_for_cpu(device, DmaAddr(o.addr), o.size, o.dir)
                                : sync_single_for_device(device, DmaAddr(o.addr), o.size, o.dir);
          if (!ok) {
            return ok.error();
          }
          return std::uint64_t{0};
        } else if constexpr (std::is_same_v<T, Tick>) {
          return std::uint64_t{0};
        } else {
          return not_taken(o, "a Device");
        }
      },
      op);
}

}  // namespace swiotlb::ops
