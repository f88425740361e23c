// RunCache: the parts that need no caller-supplied callback (see
// run_cache.h for the design).
#include "run_cache.h"

#include <utility>

namespace swiotlb {

RunCache::RunCache(std::uint64_t budget) : budget_(budget) {
  for (std::uint32_t k = 0; k < kMaxCachedSlots; ++k) {
    classes_[k].loaded.nslots = k + 1;
    classes_[k].previous.nslots = k + 1;
  }
}

bool RunCache::put_slow(std::uint32_t first, std::uint32_t nslots) {
  if (cached_slots() + nslots > budget_) {
    return false;
  }
  SizeClass& size_class = classes_[nslots - 1];
  if (size_class.loaded.full()) {
    if (size_class.previous.full()) {
      if (depot_count_ == kDepotMagazines) {
        return false;
      }
      depot_[depot_count_++] = size_class.previous;
      size_class.previous.count = 0;
    }
    std::swap(size_class.loaded, size_class.previous);
  }
  size_class.loaded.first[size_class.loaded.count++] = first;
  add_cached(nslots);
  return true;
}

std::optional<std::size_t> RunCache::depot_index(std::uint32_t nslots) const {
  for (std::size_t k = depot_count_; k-- > 0;) {
    if (depot_[k].nslots == nslots) {
      return k;
    }
  }
  return std::nullopt;
}

}  // namespace swiotlb
