// write_record_run(): the slot records a map writes over its run, two
// 16-byte stores a record (private to the pool layer).
//
// From one slot of a run to the next, the kernel's per-slot fields step by
// a fixed amount: alloc_size (the bytes from the slot to the reservation's
// end) goes down by a slot, and for data slots orig_addr goes up by a slot
// and the part up by one; every other field of a fresh record is zero or
// constant. So the records are two pairs of 64-bit lanes kept in vector
// registers and stepped by adds, where writing each record field by field
// took seven stores. A map writes a run of up to a segment (128 slots);
// runs of a few slots to a few dozen are the common case, on every map a
// search serves.
//
// alloc_size shares its lane with mapping_size (zero on a fresh record),
// and its count may go below zero on a run's last slot, where the kernel's
// unsigned count wraps: the lane is masked to its low half after each
// step, so the wrap stays within alloc_size as it does in 32 bits.
//
// Pure function on memory the caller owns; nothing to synchronize.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "swiotlb/core/address.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/core/direction.h"
#include "swiotlb/pool/pool_image.h"

namespace swiotlb {

// What the lanes below assume of the record's layout.
static_assert(std::endian::native == std::endian::little, "lane 0 is the low bits");
static_assert(sizeof(SlotRecord) == 32);
static_assert(offsetof(SlotRecord, orig_addr) == 0);
static_assert(offsetof(SlotRecord, alloc_size) == 8 && offsetof(SlotRecord, mapping_size) == 12);
static_assert(offsetof(SlotRecord, part) == 23);  // the top byte of lane 2
static_assert(offsetof(SlotRecord, role) == 24 && offsetof(SlotRecord, state) == 25 &&
              offsetof(SlotRecord, dir) == 26);  // the low bytes of lane 3

// What a record keeps in orig_addr for a mapping from `orig`, where 0 means
// a mapping with no original buffer: kInvalidAddress.
constexpr std::uint64_t record_orig(std::uint64_t orig) {
  return orig != 0 ? orig : kInvalidAddress;
}

// The fresh records of `count` slots from `out`: the first with `orig`,
// `alloc_size`, `role` and part 0; each next one with alloc_size a slot
// less, orig_addr `orig_step` more (a slot for data with an original
// address, 0 otherwise) and part `part_step` more (1 for data, 0 for pad).
// Every other field holds its default: no mapping, Direction::none.
// REQUIRES: the parts stay below 256 (a run is within one segment).
inline void write_record_run(SlotRecord* out, std::uint32_t count, std::uint64_t orig,
                             std::uint32_t alloc_size, SlotRole role, std::uint64_t orig_step,
                             std::uint8_t part_step) {
  using Lanes = std::uint64_t __attribute__((vector_size(16)));
  constexpr std::uint64_t kAllocSizeBits = 0xffffffff;
  constexpr std::uint64_t kSlotDown = kAllocSizeBits + 1 - kSlotSize;  // -kSlotSize in 32 bits
  const Lanes keep{~std::uint64_t{0}, kAllocSizeBits};
  const Lanes low_step{orig_step, kSlotDown};
  const Lanes high_step{std::uint64_t{part_step} << 56, 0};
  Lanes low{orig, alloc_size};
  Lanes high{0, static_cast<std::uint64_t>(role) |
                    static_cast<std::uint64_t>(MappingState::none) << 8 |
                    static_cast<std::uint64_t>(Direction::none) << 16};
  auto* bytes = reinterpret_cast<unsigned char*>(out);
  for (std::uint32_t k = 0; k < count; ++k, bytes += sizeof(SlotRecord)) {
    const Lanes record_low = low & keep;
    std::memcpy(bytes, &record_low, sizeof record_low);
    std::memcpy(bytes + sizeof record_low, &high, sizeof high);
    low += low_step;
    high += high_step;
  }
}

}  // namespace swiotlb
