// The live-IOVA record: one shard mutex per operation, nothing else held.
#include "iova_live_set.h"

#include "swiotlb/core/check.h"

namespace swiotlb::iova {

void IovaLiveSet::insert(std::uint64_t pfn, std::uint64_t size) {
  Shard& shard = shard_of(pfn);
  std::lock_guard lock(shard.mutex);
  [[maybe_unused]] const bool inserted = shard.map.emplace(pfn, size).second;
  SWIOTLB_CHECK(inserted, "an IOVA was handed out twice");
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> IovaLiveSet::snapshot() const {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    out.insert(out.end(), shard.map.begin(), shard.map.end());
  }
  return out;
}

}  // namespace swiotlb::iova
