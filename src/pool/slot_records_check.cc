// Slot records checked segment by segment: forwards for the mappings (a
// mapping's first slot says how long it is), backwards for the free-run
// counters (each counts towards the end of its segment).
#include "slot_records_check.h"

#include <algorithm>

#include "swiotlb/core/constants.h"

namespace swiotlb {

namespace {

bool reserved_clear(const SlotRecord& r) {
  return std::all_of(std::begin(r.reserved), std::end(r.reserved),
                     [](std::uint8_t b) { return b == 0; });
}

// No mapping fields: what a free slot, a pad slot and a data slot after the
// first hold beside their role, alloc_size and (data) part and orig_addr.
bool no_mapping_fields(const SlotRecord& r) {
  return r.mapping_size == 0 && r.owner == 0 && r.tlb_offset == 0 && r.pad_slots == 0 &&
         r.state == MappingState::none && r.dir == Direction::none && reserved_clear(r);
}

bool is_released(const SlotRecord& r) {
  return r.role == SlotRole::free && r.orig_addr == kInvalidAddress && r.alloc_size == 0 &&
         r.part == 0 && no_mapping_fields(r);
}

bool valid_role(SlotRole role) {
  return role == SlotRole::free || role == SlotRole::pad || role == SlotRole::data;
}

bool holds_mapping(MappingState state) {
  return state == MappingState::live || state == MappingState::going ||
         state == MappingState::adopted || state == MappingState::cached;
}

bool valid_direction(Direction dir) {
  return static_cast<std::uint8_t>(dir) <= static_cast<std::uint8_t>(Direction::none);
}

// The mapping whose first reserved slot is `first`, in a segment that ends
// at `end`. Returns the slots it holds.
Result<std::uint64_t> check_mapping(const SlotRecord* slots, std::uint64_t first,
                                    std::uint64_t end) {
  std::uint64_t head = first;
  while (head < end && slots[head].role == SlotRole::pad) {
    ++head;
  }
  if (head == end || slots[head].role != SlotRole::data) {
    return make_error(Errc::out_of_range, "slot {}: {} pad slots not followed by a data slot",
                      first, head - first);
  }
  const SlotRecord& h = slots[head];
  if (h.part != 0 || !holds_mapping(h.state)) {
    return make_error(Errc::out_of_range,
                      "slot {}: first data slot of a mapping with part {} and mapping state {}",
                      head, h.part, static_cast<unsigned>(h.state));
  }
  if (h.pad_slots != head - first) {
    return make_error(Errc::out_of_range, "slot {}: {} pad slots recorded, {} found", head,
                      h.pad_slots, head - first);
  }
  if (!valid_direction(h.dir) || h.tlb_offset >= kSlotSize || !reserved_clear(h)) {
    return make_error(Errc::out_of_range,
                      "slot {}: direction {}, data offset {} or reserved bytes out of range", head,
                      static_cast<unsigned>(h.dir), h.tlb_offset);
  }
  // The length as unmap computes it (SlotPool::info_locked).
  const std::uint64_t nslots = nr_slots(std::uint64_t{slots[first].alloc_size} + h.tlb_offset);
  const std::uint64_t data_slots = first + nslots - head;
  if (nslots <= head - first || nslots > end - first) {
    return make_error(Errc::out_of_range,
                      "slot {}: a mapping of {} slots ({} pad) does not fit its segment", first,
                      nslots, head - first);
  }
  if (h.mapping_size == 0 ||
      h.tlb_offset + std::uint64_t{h.mapping_size} > data_slots * kSlotSize) {
    return make_error(Errc::out_of_range,
                      "slot {}: {} bytes at offset {} do not fit the mapping's {} data slots", head,
                      h.mapping_size, h.tlb_offset, data_slots);
  }
  for (std::uint64_t k = 0; k < nslots; ++k) {
    const SlotRecord& r = slots[first + k];
    const auto alloc = static_cast<std::uint32_t>(slots[first].alloc_size - (k << kSlotShift));
    const bool is_pad = first + k < head;
    bool ok = r.alloc_size == alloc && r.role == (is_pad ? SlotRole::pad : SlotRole::data);
    if (is_pad) {
      ok = ok && r.part == 0 && r.orig_addr == kInvalidAddress && no_mapping_fields(r);
    } else {
      ok = ok && r.part == first + k - head && (first + k == head || no_mapping_fields(r));
    }
    if (!ok) {
      return make_error(Errc::out_of_range,
                        "slot {}: slot {} of the mapping at slot {} has role {}, part {}, alloc "
                        "size {} or mapping fields that do not belong there",
                        first + k, k, first, static_cast<unsigned>(r.role), r.part, r.alloc_size);
    }
  }
  return nslots;
}

}  // namespace

Result<std::uint64_t> check_slot_records(const std::uint16_t* list, const SlotRecord* slots,
                                         std::uint64_t base, std::uint64_t count,
                                         std::uint64_t area_slots, std::uint64_t* per_area) {
  std::uint64_t in_use = 0;
  for (std::uint64_t segment = base; segment < base + count; segment += kSegmentSlots) {
    const std::uint64_t end = segment + kSegmentSlots;
    for (std::uint64_t i = segment; i < end;) {
      const SlotRecord& r = slots[i];
      if (!valid_role(r.role)) {
        return make_error(Errc::out_of_range, "slot {}: role {} is not a slot role", i,
                          static_cast<unsigned>(r.role));
      }
      if (r.role == SlotRole::free) {
        if (!is_released(r)) {
          return make_error(Errc::out_of_range, "slot {}: free, but holds mapping fields", i);
        }
        ++i;
        continue;
      }
      Result<std::uint64_t> nslots = check_mapping(slots, i, end);
      if (!nslots) {
        return std::move(nslots).error();
      }
      if (per_area != nullptr) {
        per_area[i / area_slots] += *nslots;
      }
      i += *nslots;
      in_use += *nslots;
    }
    std::uint16_t expect = 0;
    for (std::uint64_t i = end; i-- > segment;) {
      expect = slots[i].role == SlotRole::free ? static_cast<std::uint16_t>(expect + 1)
                                               : std::uint16_t{0};
      if (list[i] != expect) {
        return make_error(Errc::out_of_range, "slot {}: free-run counter {} but {} expected", i,
                          list[i], expect);
      }
    }
  }
  return in_use;
}

}  // namespace swiotlb
