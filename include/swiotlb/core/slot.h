// Strong types for slot indices and counts, so that a count of slots is
// never mistaken for a byte size or an index.
#pragma once

#include <compare>
#include <cstdint>

namespace swiotlb {

class SlotIndex {
 public:
  constexpr SlotIndex() = default;
  constexpr explicit SlotIndex(std::uint32_t value) : value_(value) {}
  constexpr std::uint32_t value() const { return value_; }
  constexpr auto operator<=>(const SlotIndex&) const = default;

 private:
  std::uint32_t value_ = 0;
};

class SlotCount {
 public:
  constexpr SlotCount() = default;
  constexpr explicit SlotCount(std::uint64_t value) : value_(value) {}
  constexpr std::uint64_t value() const { return value_; }
  constexpr std::uint64_t bytes() const { return value_ << 11; }
  constexpr auto operator<=>(const SlotCount&) const = default;

 private:
  std::uint64_t value_ = 0;
};

}  // namespace swiotlb
