// The geometry of a software IO TLB, fixed by the kernel's ABI and mirrored
// here so that a pool built by this library indexes its slots exactly as the
// kernel would.
#pragma once

#include <cstddef>
#include <cstdint>

namespace swiotlb {

// A slot is the unit of allocation: 2 KiB (the kernel's IO_TLB_SHIFT = 11).
inline constexpr unsigned kSlotShift = 11;
inline constexpr std::uint64_t kSlotSize = std::uint64_t{1} << kSlotShift;

// Slots are grouped in segments of 128 (IO_TLB_SEGSIZE); no mapping crosses a
// segment, so the largest mapping is 128 slots = 256 KiB.
inline constexpr std::uint32_t kSegmentSlots = 128;
inline constexpr std::uint64_t kSegmentBytes = kSegmentSlots * kSlotSize;

// The smallest pool the boot-time fallback goes down to: 1 MiB (the
// kernel's IO_TLB_MIN_SLABS).
inline constexpr std::uint64_t kMinBootSlots = (std::uint64_t{1} << 20) >> kSlotShift;

// The page size the kernel's alignment rules are written against (x86-64,
// arm64 with 4 KiB pages).
inline constexpr unsigned kPageShift = 12;
inline constexpr std::uint64_t kPageSize = std::uint64_t{1} << kPageShift;

// The kernel's default pool: 64 MiB.
inline constexpr std::uint64_t kDefaultPoolBytes = std::uint64_t{64} << 20;
inline constexpr std::uint64_t kDefaultSlotCount = kDefaultPoolBytes >> kSlotShift;

// The largest pool this library accepts: 2^31 slots (4 TiB); the kernel keeps
// slot indices in an int.
inline constexpr std::uint64_t kMaxSlotCount = std::uint64_t{1} << 31;

// Slots needed to hold `bytes` (the kernel's nr_slots()).
constexpr std::uint64_t nr_slots(std::uint64_t bytes) {
  return (bytes + kSlotSize - 1) >> kSlotShift;
}

// Pages needed to hold `bytes`.
constexpr std::uint64_t nr_pages(std::uint64_t bytes) {
  return (bytes + kPageSize - 1) >> kPageShift;
}

// The kernel's ALIGN(x, a): correct for a power of two `a`, and reproduced
// bit for bit for any other value because the 6.1 search relies on it.
constexpr std::uint64_t kernel_align(std::uint64_t x, std::uint64_t a) {
  return (x + (a - 1)) & ~(a - 1);
}

constexpr bool is_power_of_two(std::uint64_t x) {
  return x != 0 && (x & (x - 1)) == 0;
}

// Smallest power of two >= x, for 1 <= x <= 2^63.
constexpr std::uint64_t round_up_power_of_two(std::uint64_t x) {
  std::uint64_t p = 1;
  while (p < x) {
    p <<= 1;
  }
  return p;
}

}  // namespace swiotlb
