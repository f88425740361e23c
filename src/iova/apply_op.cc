// The op vocabulary on an IovaDomain (apply_op.h).
#include "swiotlb/iova/apply_op.h"

#include <type_traits>
#include <variant>

namespace swiotlb::ops {

Applied apply(const Op& op, iova::IovaDomain& domain) {
  return std::visit(
      [&](const auto& o) -> Applied {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, IovaReserve>) {
          if (Result<iova::IovaRange> got = domain.reserve(o.pfn_lo, o.pfn_hi); !got) {
            return got.error();
          }
          return std::uint64_t{0};
        } else if constexpr (std::is_same_v<T, IovaAlloc>) {
          return domain.alloc_fast(o.cpu, o.size, o.limit_pfn, o.flush);
        } else if constexpr (std::is_same_v<T, IovaFree>) {
          if (Status ok = domain.free_fast(o.cpu, o.pfn, o.size); !ok) {
            return ok.error();
          }
          return std::uint64_t{0};
        } else if constexpr (std::is_same_v<T, Tick>) {
          return std::uint64_t{0};
        } else {
          return not_taken(o, "an IovaDomain");
        }
      },
      op);
}

Op op_from_iova(const iova::IovaTraceOp& op) {
  switch (op.kind) {
    case iova::IovaOpKind::reserve:
      return IovaReserve{op.pfn, op.pfn_hi};
    case iova::IovaOpKind::alloc:
      return IovaAlloc{op.cpu, op.size, op.limit_pfn, op.flush};
    case iova::IovaOpKind::free:
      return IovaFree{op.cpu, op.pfn, op.size};
  }
  return Tick{};  // not reached: every kind is handled above
}

}  // namespace swiotlb::ops
