// The direction of a DMA transfer and the attributes of a mapping.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "swiotlb/core/export.h"

namespace swiotlb {

// Numbered as the kernel's enum dma_data_direction, so that traces recorded
// on a kernel carry the same numbers.
enum class Direction : std::uint8_t {
  bidirectional = 0,
  to_device = 1,
  from_device = 2,
  none = 3,
};

SWIOTLB_API std::string_view to_string(Direction dir);
SWIOTLB_API std::optional<Direction> direction_from_number(std::uint64_t n);

// True when the CPU's data must reach the device (copy into the bounce buffer).
constexpr bool copies_to_device(Direction dir) {
  return dir == Direction::to_device || dir == Direction::bidirectional;
}
// True when the device's data must reach the CPU (copy out of the bounce buffer).
constexpr bool copies_from_device(Direction dir) {
  return dir == Direction::from_device || dir == Direction::bidirectional;
}

// Mapping attributes. The bit values are the kernel's DMA_ATTR_* bits, so
// that a trace's attrs field can be used as it is.
enum class Attr : std::uint32_t {
  skip_cpu_sync = 1u << 5,  // DMA_ATTR_SKIP_CPU_SYNC
  no_warn = 1u << 8,        // DMA_ATTR_NO_WARN
  may_sleep = 1u << 11,     // DMA_ATTR_MAY_SLEEP (mainline)
};

class Attrs {
 public:
  constexpr Attrs() = default;
  constexpr Attrs(Attr a)
      : bits_(static_cast<std::uint32_t>(a)) {}  // NOLINT(google-explicit-constructor)
  constexpr static Attrs from_bits(std::uint32_t bits) {
    Attrs a;
    a.bits_ = bits;
    return a;
  }
  constexpr bool has(Attr a) const { return (bits_ & static_cast<std::uint32_t>(a)) != 0; }
  constexpr Attrs operator|(Attrs other) const { return from_bits(bits_ | other.bits_); }
  constexpr std::uint32_t bits() const { return bits_; }
  constexpr bool operator==(const Attrs&) const = default;

 private:
  std::uint32_t bits_ = 0;
};

constexpr Attrs operator|(Attr a, Attr b) {
  return Attrs(a) | Attrs(b);
}

}  // namespace swiotlb
