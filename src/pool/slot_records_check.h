// The consistency of a run of slot records and free-run counters, checked
// without trusting them (private to the pool layer): SlotPool's invariant
// check, and attach, which must refuse a damaged image rather than index
// with what it holds.
#pragma once

#include <cstdint>

#include "swiotlb/core/error.h"
#include "swiotlb/pool/pool_image.h"

namespace swiotlb {

// Checks slots [base, base + count):
//  - every role, mapping state and direction is one the pool writes;
//  - the slots in use form whole mappings, none crossing a segment: pad
//    slots, then data slots numbered 0, 1, ..., as many in all as the first
//    slot's alloc_size says, with alloc_size falling by one slot per slot;
//    the first data slot holds the mapping (live, going or adopted, its pad
//    count, its data within its slots), the others nothing of it;
//  - a free slot is exactly a default SlotRecord, as a release leaves it;
//  - each free-run counter is the number of free slots from it to the next
//    slot in use or the end of its segment.
// Reads nothing outside the range, whatever it holds. Returns the number of
// slots in use, or the first violation. With `per_area`, also adds each
// mapping's slots to per_area[first slot / area_slots]: the area whose
// search made it, which for areas that do not end on a segment (the kernel
// splits 384 slots into two areas of 192) may not hold all of its slots.
// REQUIRES: base and count are multiples of kSegmentSlots; per_area, when
// given, has an entry for every area the range covers.
Result<std::uint64_t> check_slot_records(const std::uint16_t* list, const SlotRecord* slots,
                                         std::uint64_t base, std::uint64_t count,
                                         std::uint64_t area_slots = 0,
                                         std::uint64_t* per_area = nullptr);

}  // namespace swiotlb
