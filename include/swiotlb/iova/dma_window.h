// DmaWindow: an inclusive range of device (bus) addresses, the unit in which
// a host bridge's inbound windows (the device tree's dma-ranges), its
// outbound MMIO windows and the valid IOVA ranges a VFIO user may map are
// all described. Written "start-end" on command lines, both ends inclusive.
//
// Plain values; no synchronization needed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"

namespace swiotlb::iova {

struct DmaWindow {
  std::uint64_t start = 0;
  std::uint64_t end = 0;  // inclusive

  constexpr bool contains(std::uint64_t addr) const { return addr >= start && addr <= end; }
  constexpr bool overlaps(const DmaWindow& other) const {
    return start <= other.end && other.start <= end;
  }
  constexpr bool operator==(const DmaWindow&) const = default;
};

// Parses "0x80000000-0xffffffff,0x800000000-0xfffffffff": a comma-separated
// list of start-end pairs, each number decimal or 0x-prefixed hex.
// Fails (parse) naming the offending item when a number does not parse or
// overflows, a pair lacks its '-', or start > end.
SWIOTLB_API Result<std::vector<DmaWindow>> parse_dma_windows(std::string_view text);

// Parses one number, decimal or 0x-prefixed hex, the whole of `text`.
// Fails (parse) naming `what` and the text.
SWIOTLB_API Result<std::uint64_t> parse_dma_number(std::string_view text, std::string_view what);

// "0x0000000080000000-0x00000000ffffffff"
SWIOTLB_API std::string format_dma_window(const DmaWindow& window);

}  // namespace swiotlb::iova
