// write_record_run (src/pool/slot_record_run.h): the records a map writes
// over its run, from vector lanes, are field for field those of the
// kernel's per-slot loop, the wrap of the last slot's alloc_size included,
// and nothing past the run is touched.
#include "../../src/pool/slot_record_run.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "swiotlb/core/constants.h"

namespace swiotlb {
namespace {

// The kernel's loop, one field at a time: slot k of the run.
SlotRecord expected_record(std::uint64_t orig, std::uint32_t alloc_size, SlotRole role,
                           std::uint64_t orig_step, std::uint8_t part_step, std::uint32_t k) {
  SlotRecord r;
  r.orig_addr = orig + orig_step * k;
  r.alloc_size = alloc_size - k * static_cast<std::uint32_t>(kSlotSize);
  r.role = role;
  r.part = static_cast<std::uint8_t>(part_step * k);
  return r;
}

bool same_bytes(const SlotRecord& a, const SlotRecord& b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

// A run written over records that held something else, with a guard
// record on each side.
std::vector<SlotRecord> written(std::uint32_t count, std::uint64_t orig, std::uint32_t alloc_size,
                                SlotRole role, std::uint64_t orig_step, std::uint8_t part_step) {
  SlotRecord stale;
  stale.orig_addr = 0x1234;
  stale.alloc_size = 77;
  stale.mapping_size = 99;
  stale.owner = 5;
  stale.tlb_offset = 3;
  stale.pad_slots = 2;
  stale.part = 9;
  stale.role = SlotRole::data;
  stale.state = MappingState::live;
  stale.dir = Direction::to_device;
  std::vector<SlotRecord> records(count + 2, stale);
  write_record_run(records.data() + 1, count, orig, alloc_size, role, orig_step, part_step);
  return records;
}

TEST(SlotRecordRun, DataSlotsStepAddressCountAndPart) {
  const std::vector<SlotRecord> records =
      written(5, 0x40001000, 5 * 2048 - 100, SlotRole::data, kSlotSize, 1);
  for (std::uint32_t k = 0; k < 5; ++k) {
    const SlotRecord& r = records[1 + k];
    EXPECT_EQ(r.orig_addr, 0x40001000 + k * kSlotSize) << k;
    EXPECT_EQ(r.alloc_size, 5 * 2048 - 100 - k * 2048) << k;
    EXPECT_EQ(r.part, k);
    EXPECT_EQ(r.role, SlotRole::data);
    EXPECT_EQ(r.state, MappingState::none);
    EXPECT_EQ(r.dir, Direction::none);
    EXPECT_EQ(r.mapping_size, 0u);
    EXPECT_EQ(r.owner, 0u);
    EXPECT_EQ(r.tlb_offset, 0u);
    EXPECT_EQ(r.pad_slots, 0u);
  }
  // Untouched around the run.
  EXPECT_EQ(records.front().orig_addr, 0x1234u);
  EXPECT_EQ(records.back().mapping_size, 99u);
}

// The kernel leaves the data's offset out of the count, so a run's last
// slot may count below zero: it wraps in 32 bits, and mapping_size beside
// it stays zero.
TEST(SlotRecordRun, TheLastSlotsCountWrapsWithinItsField) {
  const std::vector<SlotRecord> records = written(3, 0x2000, 4096 - 43, SlotRole::data, 2048, 1);
  EXPECT_EQ(records[3].alloc_size, static_cast<std::uint32_t>(-43));
  EXPECT_EQ(records[3].mapping_size, 0u);
  EXPECT_TRUE(
      same_bytes(records[3], expected_record(0x2000, 4096 - 43, SlotRole::data, 2048, 1, 2)));
}

TEST(SlotRecordRun, PadSlotsAndMissingAddressesDoNotStep) {
  const std::vector<SlotRecord> records =
      written(2, kInvalidAddress, 3 * 2048, SlotRole::pad, 0, 0);
  for (std::uint32_t k = 0; k < 2; ++k) {
    EXPECT_EQ(records[1 + k].orig_addr, kInvalidAddress);
    EXPECT_EQ(records[1 + k].part, 0u);
    EXPECT_EQ(records[1 + k].role, SlotRole::pad);
  }
}

TEST(SlotRecordRun, AnEmptyRunWritesNothing) {
  const std::vector<SlotRecord> records = written(0, 0x1000, 2048, SlotRole::data, 2048, 1);
  EXPECT_EQ(records[0].orig_addr, 0x1234u);
  EXPECT_EQ(records[1].orig_addr, 0x1234u);
}

RC_GTEST_PROP(SlotRecordRun, EveryRecordIsTheFieldByFieldOne, ()) {
  const auto count = *rc::gen::inRange<std::uint32_t>(0, kSegmentSlots + 1);
  const bool data = *rc::gen::arbitrary<bool>();
  const bool has_orig = *rc::gen::arbitrary<bool>();
  const std::uint64_t orig = has_orig ? *rc::gen::arbitrary<std::uint64_t>() : kInvalidAddress;
  const auto alloc_size = *rc::gen::arbitrary<std::uint32_t>();
  const SlotRole role = data ? SlotRole::data : SlotRole::pad;
  const std::uint64_t orig_step = data && has_orig ? kSlotSize : 0;
  const std::uint8_t part_step = data ? 1 : 0;
  const std::vector<SlotRecord> records =
      written(count, orig, alloc_size, role, orig_step, part_step);
  for (std::uint32_t k = 0; k < count; ++k) {
    RC_ASSERT(same_bytes(records[1 + k],
                         expected_record(orig, alloc_size, role, orig_step, part_step, k)));
  }
  RC_ASSERT(records.front().orig_addr == 0x1234u);
  RC_ASSERT(records.back().orig_addr == 0x1234u);
}

}  // namespace
}  // namespace swiotlb
