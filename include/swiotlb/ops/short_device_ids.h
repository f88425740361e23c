// ShortDeviceIds: the first few device ids of a trace that are at most 16
// bytes long (a PCI address, "0000:00:04.0", is 12), each kept as its length
// and two words, so that the reader's fast path finds an event's device with
// a few integer operations instead of hashing the id as a string. Part of
// TraceReader (trace_reader.h), not a consumer's API; the reader's map of
// all ids stays the authority: an id not found here is looked up there.
//
// The ids sit in a small table at the slot a multiplicative hash of their
// words gives, the multiplier picked (from a fixed list) so that no two kept
// ids share a slot: a lookup then compares one slot, and takes no branch on
// which device a line names. Events name their devices in no order, and a
// loop over the ids that stopped at the match guessed its way out wrong on
// most lines.
//
// Not thread-safe: one reader owns it.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace swiotlb::ops {

class ShortDeviceIds {
 public:
  static constexpr std::size_t kMaxIds = 8;
  static constexpr std::size_t kMaxLength = 16;

  // Keeps `id` as device `index` if it is short enough, there is room, and
  // some multiplier of the list gives every kept id a slot of its own.
  void add(std::string_view id, std::uint16_t index) {
    if (count_ == kMaxIds || id.empty() || id.size() > kMaxLength) {
      return;
    }
    // The key is read from a copy padded to the length find() reads.
    std::array<char, kMaxLength + 8> padded{};
    std::memcpy(padded.data(), id.data(), id.size());
    kept_[count_] = {key_of(std::string_view(padded.data(), id.size())), index};
    ++count_;
    for (const std::uint64_t multiplier : kMultipliers) {
      if (build(multiplier)) {
        return;
      }
    }
    // No multiplier parts this id from the others: it is left to the caller.
    // The table the others had is built again (it had no collision).
    --count_;
    build(multiplier_);
  }

  // Sets `index` to the device `id` names and returns true, or returns false
  // when `id` is not kept here. REQUIRES: 8 bytes readable at id.data(),
  // however short `id` is.
  bool find(std::string_view id, std::uint16_t& index) const {
    if (id.size() - 1 >= kMaxLength) {  // empty (the size wraps) or long
      return false;
    }
    const Key key = key_of(id);
    const Slot& slot = slots_[slot_of(key, multiplier_)];
    if (!same(slot.key, key)) {
      return false;
    }
    index = slot.index;
    return true;
  }

 private:
  // Two ids of the same length up to 16 bytes are equal when their first
  // eight bytes (fewer for a shorter id) and their last eight are. A slot
  // that holds no id has length 0, which no kept id has.
  struct Key {
    std::uint64_t head = 0;
    std::uint64_t tail = 0;
    std::uint64_t length = 0;
  };

  struct Slot {
    Key key;
    std::uint16_t index = 0;
  };

  // 32 slots for at most 8 ids: a random multiplier parts 8 ids about two
  // times in five, so that one of the list's sixteen nearly always does.
  static constexpr unsigned kSlotBits = 5;
  static constexpr std::array<std::uint64_t, 16> kMultipliers = {
      0x9e3779b97f4a7c15, 0xbf58476d1ce4e5b9, 0x94d049bb133111eb, 0xd6e8feb86659fd93,
      0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3, 0x589965cc75374cc3,
      0x1d8e4e27c47d124f, 0xc2b2ae3d27d4eb4f, 0x165667b19e3779f9, 0x27d4eb2f165667c5,
      0xff51afd7ed558ccd, 0xc4ceb9fe1a85ec53, 0x87c37b91114253d5, 0x4cf5ad432745937f};

  // Equality in one test of the three words' differences together.
  static bool same(const Key& a, const Key& b) {
    return ((a.head ^ b.head) | (a.tail ^ b.tail) | (a.length ^ b.length)) == 0;
  }

  // The tail is multiplied before the words are mixed, so that ids that
  // differ in one byte (PCI functions, "...04.0" and "...05.0") differ in
  // the high bits the slot is taken from.
  static std::size_t slot_of(const Key& key, std::uint64_t multiplier) {
    const std::uint64_t mixed = key.head ^ std::rotl(key.tail * kMultipliers[0], 29) ^ key.length;
    return static_cast<std::size_t>((mixed * multiplier) >> (64 - kSlotBits));
  }

  // Puts every kept id in its slot under `multiplier`; false, with the table
  // in no useful state, when two of them share one.
  bool build(std::uint64_t multiplier) {
    slots_ = {};
    for (std::size_t i = 0; i < count_; ++i) {
      Slot& slot = slots_[slot_of(kept_[i].key, multiplier)];
      if (slot.key.length != 0) {
        return false;
      }
      slot = kept_[i];
    }
    multiplier_ = multiplier;
    return true;
  }

  static std::uint64_t load8(const char* p) {
    std::uint64_t word = 0;
    std::memcpy(&word, p, sizeof word);
    return word;
  }

  // REQUIRES: 1 <= id.size() <= kMaxLength, 8 bytes readable at id.data().
  static Key key_of(std::string_view id) {
    const std::size_t n = id.size();
    Key key;
    key.length = n;
    key.head = load8(id.data());
    if (n < 8) {
      // Only the id's own bytes count, not whatever follows it in memory.
      const unsigned rest = static_cast<unsigned>(64 - 8 * n);
      key.head &= std::endian::native == std::endian::little ? ~std::uint64_t{0} >> rest
                                                             : ~std::uint64_t{0} << rest;
    }
    key.tail = n > 8 ? load8(id.data() + n - 8) : 0;
    return key;
  }

  std::array<Slot, std::size_t{1} << kSlotBits> slots_{};
  std::uint64_t multiplier_ = kMultipliers[0];
  std::array<Slot, kMaxIds> kept_{};  // in the order added
  std::size_t count_ = 0;
};

}  // namespace swiotlb::ops
