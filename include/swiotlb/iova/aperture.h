// The aperture of a device behind an IOMMU, and the holes in it.
//
// A device can address [0, dma limit], where the limit is its DMA mask cut
// by its bus's limit (the kernel's min_not_zero(dma_mask, bus_dma_limit)).
// Its host bridge may pass only some of that upstream: the inbound windows
// (the device tree's dma-ranges; iproc bridges, for one, reach memory only
// through a few windows). An IOVA outside every inbound window would be
// dropped on its way to the IOMMU, so the kernel reserves the holes: below
// the first window, between each pair of windows, and above the last one.
// It also reserves the bridge's outbound MMIO windows, which a device's
// writes would hit as peer-to-peer instead of reaching the IOMMU.
//
// Two views of the same holes are given here:
//  - kernel_pci_window_reserves(): the pfn ranges iova_reserve_pci_windows
//    passes to reserve_iova, in its order and with its arithmetic, for a
//    domain that must match the kernel pfn for pfn. The kernel's hole below
//    a window ends at the window's first address, inclusive, so the first
//    granule of every window above a hole is reserved too; and the hole
//    above the last window runs to the top of the 64-bit space.
//  - inbound_window_holes(): the holes as a user should be told of them:
//    exactly the addresses no window covers, within the aperture.
//
// Pure functions over values; no synchronization needed.
#pragma once

#include <cstdint>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/iova/dma_window.h"
#include "swiotlb/iova/iova_tree.h"
#include "swiotlb/iova/reserved_regions.h"

namespace swiotlb::iova {

// The x86 interrupt window (IOAPIC_RANGE_START..END): writes there are
// interrupts, never DMA. Intel's IOMMU driver reports it as type msi.
inline constexpr DmaWindow kX86MsiWindow{0xfee00000, 0xfeefffff};

// The highest address a device reaches: DMA_BIT_MASK(mask_bits), lowered to
// bus_dma_limit when that is non-zero (0 means "no bus limit").
// Fails (invalid_argument) when mask_bits is not in [1, 64].
SWIOTLB_API Result<std::uint64_t> device_dma_limit(unsigned mask_bits, std::uint64_t bus_dma_limit);

// Sorts inbound windows by start (as the kernel's list_sort does) and checks
// them. Fails (invalid_argument), naming both windows, when two overlap.
SWIOTLB_API Result<std::vector<DmaWindow>> sort_inbound_windows(std::vector<DmaWindow> windows);

// What iova_reserve_pci_windows reserves, as pfn ranges for a granule of
// 1 << shift, in call order: each outbound window, then the holes around
// the sorted inbound windows. REQUIRES: `inbound` is sorted and
// non-overlapping (sort_inbound_windows), shift < 64. An empty `inbound`
// reserves no holes, as in the kernel.
SWIOTLB_API std::vector<IovaRange> kernel_pci_window_reserves(
    const std::vector<DmaWindow>& outbound, const std::vector<DmaWindow>& inbound, unsigned shift);

// The addresses in [0, top] that no inbound window covers, as `reserved`
// regions in address order. REQUIRES: `inbound` sorted and non-overlapping.
// An empty `inbound` means no holes.
SWIOTLB_API std::vector<ReservedRegion> inbound_window_holes(const std::vector<DmaWindow>& inbound,
                                                             std::uint64_t top);

}  // namespace swiotlb::iova
