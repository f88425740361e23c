// SegmentSet's construction and self-check (see segment_set.h).
#include "segment_set.h"

namespace swiotlb::fast {

SegmentSet::SegmentSet(std::uint32_t size) {
  std::uint64_t bits = size == 0 ? 1 : size;
  std::uint32_t words = 0;
  for (;;) {
    offset_[level_count_] = words;
    bits_[level_count_] = bits;
    ++level_count_;
    words += static_cast<std::uint32_t>((bits + 63) / 64);
    if (bits <= 64) {
      break;
    }
    bits = (bits + 63) / 64;
  }
  words_ = CacheLineArray<std::uint64_t>(words, 0);
}

Status SegmentSet::check() const {
  for (unsigned level = 0; level + 1 < level_count_; ++level) {
    for (std::uint64_t w = 0; w < bits_[level + 1]; ++w) {
      const bool nonzero = words_[offset_[level] + w] != 0;
      const bool summary = (words_[offset_[level + 1] + (w >> 6)] >> (w & 63) & 1) != 0;
      if (nonzero != summary) {
        return make_error(Errc::out_of_range,
                          "segment set: level {} word {} is {}zero but its summary bit says {}",
                          level, w, nonzero ? "non-" : "", summary ? "non-zero" : "zero");
      }
    }
  }
  return {};
}

}  // namespace swiotlb::fast
