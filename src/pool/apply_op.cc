// The op vocabulary on a SlotPool (apply_op.h).
#include "swiotlb/pool/apply_op.h"

#include <type_traits>
#include <variant>

namespace swiotlb::ops {

Applied apply(const Op& op, SlotPool& pool) {
  return std::visit(
      [&](const auto& o) -> Applied {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, Map>) {
          SlotRequest r;
          r.orig = PhysAddr(o.orig);
          r.mapping_size = o.size;
          r.alloc_size = o.alloc_size;
          r.alloc_align_mask = o.alloc_align_mask;
          r.min_align_mask = o.min_align_mask;
          r.seg_boundary_mask = o.seg_boundary_mask;
          r.pool_dma_start = DmaAddr(pool.start().value());
          r.cpu = o.cpu;
          r.dir = o.dir;
          Result<SlotMapping> got = pool.map(r);
          if (!got) {
            return got.error();
          }
          return got->tlb_addr.value();
        } else if constexpr (std::is_same_v<T, Unmap>) {
          const MappingClaim claim{o.size, o.dir, 0};
          Result<MappingInfo> gone =
              pool.unmap(PhysAddr(o.addr), o.min_align_mask, o.size != 0 ? &claim : nullptr);
          if (!gone) {
            return gone.error();
          }
          return std::uint64_t{0};
        } else if constexpr (std::is_same_v<T, Sync>) {
          Result<MappingInfo> live = pool.find_mapping(PhysAddr(o.addr), o.size);
          if (!live) {
            return live.error();
          }
          return std::uint64_t{0};
        } else if constexpr (std::is_same_v<T, Tick>) {
          return std::uint64_t{0};
        } else {
          return not_taken(o, "a SlotPool");
        }
      },
      op);
}

}  // namespace swiotlb::ops
