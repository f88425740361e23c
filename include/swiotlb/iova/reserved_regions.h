// Reserved regions: the device addresses an IOMMU domain must never hand out
// or map, as the kernel lists them to users in
// /sys/kernel/iommu_groups/<n>/reserved_regions, and their complement, the
// valid IOVA ranges, as VFIO's IOVA-range capability reports them to a user
// who chooses its own IOVAs.
//
// The sysfs format is one region per line, "0x%016llx 0x%016llx %s\n":
// start, end (inclusive), type. The kernel sorts regions by start (then by
// type) and merges overlapping or adjacent regions of one type; VFIO takes
// the aperture and cuts out every region except direct-relaxable ones.
//
// Pure functions over values; no synchronization needed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/iova/dma_window.h"

namespace swiotlb::iova {

// The kernel's enum iommu_resv_type, in its order (ties sort by it).
enum class ReservedType : std::uint8_t {
  direct,            // must stay mapped 1:1 (firmware RMRR)
  direct_relaxable,  // advertised 1:1 but safe to drop for device assignment
  reserved,          // never map or hand out (holes, MMIO windows)
  msi,               // hardware MSI doorbells, untranslated
  sw_msi,            // an MSI window the kernel maps itself; also listed as "msi"
};

// The sysfs name: direct, direct-relaxable, reserved, msi (sw_msi too).
SWIOTLB_API std::string_view to_string(ReservedType type);
// Parses a sysfs name; "msi" gives ReservedType::msi.
SWIOTLB_API std::optional<ReservedType> reserved_type_from_string(std::string_view name);

struct ReservedRegion {
  std::uint64_t start = 0;
  std::uint64_t end = 0;  // inclusive
  ReservedType type = ReservedType::reserved;
  constexpr bool operator==(const ReservedRegion&) const = default;
};

// Orders and merges regions as iommu_insert_resv_region does, one at a
// time: sorted by start then type; regions of one type that overlap or
// touch become one. Regions of different types are kept even if they
// overlap.
SWIOTLB_API std::vector<ReservedRegion> merge_reserved_regions(std::vector<ReservedRegion> regions);

// The sysfs text: one "0x%016llx 0x%016llx <type>\n" line per region.
SWIOTLB_API std::string format_reserved_regions(const std::vector<ReservedRegion>& regions);

// Reads the sysfs text back. Fails (parse) naming the line and the field.
SWIOTLB_API Result<std::vector<ReservedRegion>> parse_reserved_regions(std::string_view text);

// VFIO's valid IOVA ranges: `aperture` minus every region that is not
// direct-relaxable, in address order. Empty when nothing is left.
SWIOTLB_API std::vector<DmaWindow> valid_iova_ranges(const DmaWindow& aperture,
                                                     const std::vector<ReservedRegion>& regions);

}  // namespace swiotlb::iova
