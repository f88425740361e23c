// Reserved regions: ordering, merging, the sysfs text and VFIO's complement.
// Pure functions over values.
#include "swiotlb/iova/reserved_regions.h"

#include <algorithm>
#include <array>
#include <sstream>

#include "swiotlb/iova/reserved_regions_json.h"

namespace swiotlb::iova {
namespace {

constexpr std::array<std::string_view, 5> kTypeNames = {"direct", "direct-relaxable", "reserved",
                                                        "msi", "msi"};

std::string hex16(std::uint64_t value) {
  return fmt::format("{:#018x}", value);
}

// Splits on runs of spaces and tabs.
std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t pos = 0;
  while (pos < line.size()) {
    const std::size_t start = line.find_first_not_of(" \t\r", pos);
    if (start == std::string_view::npos) {
      break;
    }
    const std::size_t end = std::min(line.find_first_of(" \t\r", start), line.size());
    fields.push_back(line.substr(start, end - start));
    pos = end;
  }
  return fields;
}

}  // namespace

std::string_view to_string(ReservedType type) {
  return kTypeNames[static_cast<std::size_t>(type)];
}

std::optional<ReservedType> reserved_type_from_string(std::string_view name) {
  for (std::size_t i = 0; i + 1 < kTypeNames.size(); ++i) {
    if (kTypeNames[i] == name) {
      return static_cast<ReservedType>(i);
    }
  }
  return std::nullopt;
}

// The kernel merges only with the newest region of the same type, which,
// applied one insertion at a time, comes to merging each type on its own.
// sw_msi prints as "msi" but is a type of its own, as in the kernel.
std::vector<ReservedRegion> merge_reserved_regions(std::vector<ReservedRegion> regions) {
  const auto by_type_then_start = [](const ReservedRegion& a, const ReservedRegion& b) {
    return a.type != b.type ? a.type < b.type : a.start < b.start;
  };
  std::sort(regions.begin(), regions.end(), by_type_then_start);
  std::vector<ReservedRegion> merged;
  for (const ReservedRegion& region : regions) {
    if (!merged.empty() && merged.back().type == region.type &&
        (merged.back().end == ~std::uint64_t{0} || region.start <= merged.back().end + 1)) {
      merged.back().end = std::max(merged.back().end, region.end);
    } else {
      merged.push_back(region);
    }
  }
  std::stable_sort(merged.begin(), merged.end(), [](const auto& a, const auto& b) {
    return a.start != b.start ? a.start < b.start : a.type < b.type;
  });
  return merged;
}

std::string format_reserved_regions(const std::vector<ReservedRegion>& regions) {
  std::string out;
  for (const ReservedRegion& region : regions) {
    out +=
        fmt::format("{} {} {}\n", hex16(region.start), hex16(region.end), to_string(region.type));
  }
  return out;
}

Result<std::vector<ReservedRegion>> parse_reserved_regions(std::string_view text) {
  std::vector<ReservedRegion> regions;
  std::istringstream in{std::string(text)};
  std::string line;
  for (std::size_t line_no = 1; std::getline(in, line); ++line_no) {
    const std::vector<std::string_view> fields = fields_of(line);
    if (fields.empty()) {
      continue;
    }
    if (fields.size() != 3) {
      return make_error(Errc::parse, "reserved_regions line {}: {} fields, expected start end type",
                        line_no, fields.size());
    }
    Result<std::uint64_t> start = parse_dma_number(fields[0], "start");
    Result<std::uint64_t> end = parse_dma_number(fields[1], "end");
    const std::optional<ReservedType> type = reserved_type_from_string(fields[2]);
    if (!start || !end || !type || *start > *end) {
      const std::string_view field = !start ? "start" : !end ? "end" : !type ? "type" : "end";
      return make_error(Errc::parse, "reserved_regions line {}: bad {} in '{}'", line_no, field,
                        line);
    }
    regions.push_back({*start, *end, *type});
  }
  return regions;
}

// vfio_iommu_resv_exclude: each region splits whatever valid range it cuts.
std::vector<DmaWindow> valid_iova_ranges(const DmaWindow& aperture,
                                         const std::vector<ReservedRegion>& regions) {
  std::vector<DmaWindow> valid{aperture};
  for (const ReservedRegion& region : regions) {
    if (region.type == ReservedType::direct_relaxable) {
      continue;
    }
    std::vector<DmaWindow> next;
    for (const DmaWindow& range : valid) {
      if (region.start > range.end || region.end < range.start) {
        next.push_back(range);
        continue;
      }
      if (region.start > range.start) {
        next.push_back({range.start, region.start - 1});
      }
      if (region.end < range.end) {
        next.push_back({region.end + 1, range.end});
      }
    }
    valid = std::move(next);
  }
  return valid;
}

nlohmann::json reserved_regions_json(const std::vector<ReservedRegion>& regions) {
  nlohmann::json out = nlohmann::json::array();
  for (const ReservedRegion& region : regions) {
    out.push_back({{"start", hex16(region.start)},
                   {"end", hex16(region.end)},
                   {"type", std::string(to_string(region.type))}});
  }
  return out;
}

nlohmann::json dma_windows_json(const std::vector<DmaWindow>& windows) {
  nlohmann::json out = nlohmann::json::array();
  for (const DmaWindow& window : windows) {
    out.push_back({{"start", hex16(window.start)}, {"end", hex16(window.end)}});
  }
  return out;
}

}  // namespace swiotlb::iova
