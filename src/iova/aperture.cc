// Apertures and inbound-window holes; pure functions.
#include "swiotlb/iova/aperture.h"

#include <algorithm>

namespace swiotlb::iova {

Result<std::uint64_t> device_dma_limit(unsigned mask_bits, std::uint64_t bus_dma_limit) {
  if (mask_bits == 0 || mask_bits > 64) {
    return make_error(Errc::invalid_argument, "a DMA mask of {} bits is outside [1, 64]",
                      mask_bits);
  }
  const std::uint64_t mask =
      mask_bits == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << mask_bits) - 1;
  return bus_dma_limit == 0 ? mask : std::min(mask, bus_dma_limit);
}

Result<std::vector<DmaWindow>> sort_inbound_windows(std::vector<DmaWindow> windows) {
  std::stable_sort(windows.begin(), windows.end(),
                   [](const DmaWindow& a, const DmaWindow& b) { return a.start < b.start; });
  for (std::size_t i = 0; i < windows.size(); ++i) {
    if (windows[i].start > windows[i].end) {
      return make_error(Errc::invalid_argument,
                        "inbound window [{:#x}, {:#x}] ends below its start", windows[i].start,
                        windows[i].end);
    }
    if (i > 0 && windows[i].start <= windows[i - 1].end) {
      return make_error(Errc::invalid_argument,
                        "inbound windows [{:#x}, {:#x}] and [{:#x}, {:#x}] overlap",
                        windows[i - 1].start, windows[i - 1].end, windows[i].start, windows[i].end);
    }
  }
  return windows;
}

// iova_reserve_pci_windows. Each hole is handed over as [start, end] where
// start is one past the previous window and end is the next window's own
// first address; the pfn of `end` is therefore the window's first granule.
// After the last window the hole runs to the top of the address space,
// unless the window already reaches it (where the kernel's `start` would
// wrap to 0 and reserve everything; we stop instead).
std::vector<IovaRange> kernel_pci_window_reserves(const std::vector<DmaWindow>& outbound,
                                                  const std::vector<DmaWindow>& inbound,
                                                  unsigned shift) {
  std::vector<IovaRange> out;
  out.reserve(outbound.size() + inbound.size() + 1);
  for (const DmaWindow& window : outbound) {
    out.push_back({window.start >> shift, window.end >> shift});
  }
  std::uint64_t start = 0;
  const auto reserve_hole = [&](std::uint64_t end) {
    if (end > start) {
      out.push_back({start >> shift, end >> shift});
    }
  };
  for (const DmaWindow& window : inbound) {
    reserve_hole(window.start);
    if (window.end == ~std::uint64_t{0}) {
      return out;
    }
    start = window.end + 1;
  }
  if (!inbound.empty()) {
    reserve_hole(~std::uint64_t{0});
  }
  return out;
}

std::vector<ReservedRegion> inbound_window_holes(const std::vector<DmaWindow>& inbound,
                                                 std::uint64_t top) {
  std::vector<ReservedRegion> holes;
  if (inbound.empty()) {
    return holes;
  }
  std::uint64_t next = 0;  // lowest address not yet covered or reported
  for (const DmaWindow& window : inbound) {
    if (window.start > top) {
      break;
    }
    if (window.start > next) {
      holes.push_back({next, window.start - 1, ReservedType::reserved});
    }
    if (window.end >= top) {
      return holes;
    }
    next = window.end + 1;
  }
  holes.push_back({next, top, ReservedType::reserved});
  return holes;
}

}  // namespace swiotlb::iova
