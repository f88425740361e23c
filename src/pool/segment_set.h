// SegmentSet: a set of segment numbers [0, size) with insert, erase and
// "the next member at or after i" in O(log64 size) word operations (private
// to the pool layer, used by the `fast` slot policy).
//
// It is a 64-ary summary tree of bitmaps: level 0 has one bit per segment;
// bit w of level k + 1 says that word w of level k is not zero. A default
// pool's area (256 segments) needs 4 + 1 words; the largest pool (2^24
// segments) 4 levels. Memory is allocated once, at construction, in whole
// cache lines.
//
// Not synchronized: the owner (one area of a pool) guards it with its lock.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

#include "cache_line_array.h"
#include "swiotlb/core/error.h"

namespace swiotlb::fast {

class SegmentSet {
 public:
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

  SegmentSet() = default;
  explicit SegmentSet(std::uint32_t size);

  bool contains(std::uint32_t i) const { return (words_[i >> 6] >> (i & 63) & 1) != 0; }

  // REQUIRES: i < size.
  void insert(std::uint32_t i) {
    for (unsigned level = 0; level < level_count_; ++level) {
      std::uint64_t& word = words_[offset_[level] + (i >> 6)];
      const bool was_empty = word == 0;
      word |= std::uint64_t{1} << (i & 63);
      if (!was_empty) {
        return;
      }
      i >>= 6;
    }
  }

  // REQUIRES: i < size.
  void erase(std::uint32_t i) {
    for (unsigned level = 0; level < level_count_; ++level) {
      std::uint64_t& word = words_[offset_[level] + (i >> 6)];
      word &= ~(std::uint64_t{1} << (i & 63));
      if (word != 0) {
        return;
      }
      i >>= 6;
    }
  }

  // The smallest member >= from, or kNone. Climbs while the rest of the
  // current word is empty, then descends along lowest set bits.
  std::uint32_t find_next(std::uint32_t from) const {
    std::uint64_t pos = from;
    unsigned level = 0;
    for (;; ++level, pos = (pos >> 6) + 1) {
      if (level == level_count_) {
        return kNone;
      }
      if (pos < bits_[level]) {
        const std::uint64_t word =
            words_[offset_[level] + (pos >> 6)] & (~std::uint64_t{0} << (pos & 63));
        if (word != 0) {
          pos = (pos & ~std::uint64_t{63}) + static_cast<unsigned>(std::countr_zero(word));
          break;
        }
      }
    }
    while (level-- > 0) {
      pos = (pos << 6) + static_cast<unsigned>(std::countr_zero(words_[offset_[level] + pos]));
    }
    return static_cast<std::uint32_t>(pos);
  }

  // Checks that every summary bit says whether the word below is non-zero.
  Status check() const;

 private:
  static constexpr unsigned kMaxLevels = 6;  // 64^6 > 2^32 members

  CacheLineArray<std::uint64_t> words_;    // all levels, level 0 first
  std::uint32_t offset_[kMaxLevels] = {};  // first word of each level
  std::uint64_t bits_[kMaxLevels] = {};    // members each level can hold
  unsigned level_count_ = 0;
};

}  // namespace swiotlb::fast
