// Strong address types.
//
// PhysAddr is what the CPU side calls an address: for a user-space caller,
// the host virtual address of its buffer. DmaAddr is what a device sees. The
// two never convert implicitly, so a CPU address cannot be handed to a device
// by mistake; a Device translates one to the other.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace swiotlb {

template <class Tag>
class Address {
 public:
  constexpr Address() = default;
  constexpr explicit Address(std::uint64_t value) : value_(value) {}

  // Named constructor for a CPU pointer (only meaningful for PhysAddr).
  static Address from_pointer(const void* p) {
    return Address(static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p)));
  }
  // Addresses are modelled as integers by design; this turns one back into
  // the pointer it came from.
  void* to_pointer() const {
    // NOLINTNEXTLINE(performance-no-int-to-ptr): the integer is a pointer's value by design
    return reinterpret_cast<void*>(static_cast<std::uintptr_t>(value_));
  }

  constexpr std::uint64_t value() const { return value_; }

  constexpr Address operator+(std::uint64_t offset) const { return Address(value_ + offset); }
  constexpr Address operator-(std::uint64_t offset) const { return Address(value_ - offset); }
  constexpr std::uint64_t operator-(Address other) const { return value_ - other.value_; }
  constexpr Address& operator+=(std::uint64_t offset) {
    value_ += offset;
    return *this;
  }
  // clang-tidy flags the literal 0 that the defaulted <=> compares against
  // when it is rewritten as <, >, ... : a false positive.
  constexpr auto operator<=>(const Address&) const = default;  // NOLINT(modernize-use-nullptr)

 private:
  std::uint64_t value_ = 0;
};

struct PhysTag {};
struct DmaTag {};
using PhysAddr = Address<PhysTag>;
using DmaAddr = Address<DmaTag>;

// The kernel's DMA_MAPPING_ERROR and INVALID_PHYS_ADDR: all ones.
inline constexpr std::uint64_t kInvalidAddress = ~std::uint64_t{0};

}  // namespace swiotlb

template <class Tag>
struct std::hash<swiotlb::Address<Tag>> {
  std::size_t operator()(swiotlb::Address<Tag> a) const noexcept {
    return std::hash<std::uint64_t>{}(a.value());
  }
};
