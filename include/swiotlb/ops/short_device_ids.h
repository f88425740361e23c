// ShortDeviceIds: the first few device ids of a trace that are at most 16
// bytes long (a PCI address, "0000:00:04.0", is 12), each kept as its length
// and two words, so that the reader's fast path finds an event's device with
// a few integer compares instead of hashing the id. Part of TraceReader
// (trace_reader.h), not a consumer's API; the reader's map of all ids stays
// the authority: an id not found here is looked up there.
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

  // Keeps `id` as device `index` if it is short enough and there is room.
  void add(std::string_view id, std::uint16_t index) {
    if (count_ == kMaxIds || id.empty() || id.size() > kMaxLength) {
      return;
    }
    // The key is read from a copy padded to the length find() reads.
    std::array<char, kMaxLength + 8> padded{};
    std::memcpy(padded.data(), id.data(), id.size());
    keys_[count_] = key_of(std::string_view(padded.data(), id.size()));
    indexes_[count_] = index;
    ++count_;
  }

  // Sets `index` to the device `id` names and returns true, or returns false
  // when `id` is not kept here. REQUIRES: 8 bytes readable at id.data(),
  // however short `id` is.
  bool find(std::string_view id, std::uint16_t& index) const {
    if (id.empty() || id.size() > kMaxLength) {
      return false;
    }
    const Key key = key_of(id);
    for (std::size_t i = 0; i < count_; ++i) {
      if (keys_[i] == key) {
        index = indexes_[i];
        return true;
      }
    }
    return false;
  }

 private:
  // Two ids of the same length up to 16 bytes are equal when their first
  // eight bytes (fewer for a shorter id) and their last eight are.
  struct Key {
    std::uint64_t head = 0;
    std::uint64_t tail = 0;
    std::size_t length = 0;
    bool operator==(const Key&) const = default;
  };

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

  std::array<Key, kMaxIds> keys_{};
  std::array<std::uint16_t, kMaxIds> indexes_{};
  std::size_t count_ = 0;
};

}  // namespace swiotlb::ops
