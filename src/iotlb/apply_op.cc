// The op vocabulary on an IoTlb (apply_op.h).
#include "swiotlb/iotlb/apply_op.h"

#include <chrono>
#include <type_traits>
#include <variant>

#include "swiotlb/core/error_format.h"

namespace swiotlb::ops {

BounceRequest bounce_request(const Map& m, const IoTlb& tlb) {
  BounceRequest r;
  r.orig = PhysAddr(m.orig);
  r.size = m.size;
  r.alloc_size = m.alloc_size;
  r.alloc_align_mask = m.alloc_align_mask;
  r.min_align_mask = m.min_align_mask;
  r.seg_boundary_mask = m.seg_boundary_mask;
  r.pool_dma_start = DmaAddr(tlb.start().value());
  r.dir = m.dir;
  r.attrs = Attrs::from_bits(m.attrs);
  r.cpu = m.cpu;
  return r;
}

Applied apply(const Op& op, IoTlb& tlb, SimulationBackend* clock) {
  return std::visit(
      [&](const auto& o) -> Applied {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, Map>) {
          Result<PhysAddr> got = tlb.map(bounce_request(o, tlb));
          if (!got) {
            return got.error();
          }
          return got->value();
        } else if constexpr (std::is_same_v<T, Unmap>) {
          if (Status claimed = require_claimed_size(o, "an IoTlb"); !claimed) {
            return claimed.error();
          }
          if (Status ok = tlb.unmap(PhysAddr(o.addr), o.min_align_mask,
                                    MappingClaim{o.size, o.dir, 0}, Attrs::from_bits(o.attrs));
              !ok) {
            return ok.error();
          }
          return std::uint64_t{0};
        } else if constexpr (std::is_same_v<T, Sync>) {
          const Status ok = o.to == SyncFor::cpu
                                ? tlb.sync_for_cpu(PhysAddr(o.addr), o.size, o.dir, 0)
                                : tlb.sync_for_device(PhysAddr(o.addr), o.size, o.dir, 0);
          if (!ok) {
            return ok.error();
          }
          return std::uint64_t{0};
        } else if constexpr (std::is_same_v<T, Grow>) {
          Result<PhysAddr> start = tlb.add_pool(0, o.nslabs, o.nareas);
          if (!start) {
            return start.error();
          }
          return start->value();
        } else if constexpr (std::is_same_v<T, Tick>) {
          if (clock == nullptr) {
            return make_error(Errc::invalid_argument,
                              "a tick of {} ns on an IoTlb without a simulation clock: its "
                              "backend's clock is real time",
                              o.ns);
          }
          constexpr auto kTickNs = static_cast<std::uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(SimulationBackend::kTick)
                  .count());
          clock->advance(o.ns / kTickNs);
          tlb.run_maintenance();
          return std::uint64_t{0};
        } else {
          return not_taken(o, "an IoTlb");
        }
      },
      op);
}

}  // namespace swiotlb::ops
