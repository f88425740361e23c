// IovaLiveSet: the IOVAs a domain has handed out and not yet taken back,
// pfn -> size in granules. The kernel trusts its callers and keeps no such
// record; we keep one so that a free of an IOVA that was never allocated, or
// is freed twice, or with the wrong size, is refused before it reaches a
// magazine (where it would later be handed out to a second owner).
//
// Synchronization: the set is split into shards by pfn, each with its own
// mutex, so that CPUs freeing and allocating different IOVAs rarely meet.
// No other lock is ever taken while a shard's mutex is held. Each shard's map
// draws its nodes from a pool under that same mutex, so steady traffic does
// not reach the heap.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory_resource>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace swiotlb::iova {

class IovaLiveSet {
 public:
  IovaLiveSet() = default;
  IovaLiveSet(const IovaLiveSet&) = delete;
  IovaLiveSet& operator=(const IovaLiveSet&) = delete;

  // Records pfn as handed out with `size` granules. REQUIRES: not recorded.
  void insert(std::uint64_t pfn, std::uint64_t size);

  // Removes and returns the size recorded for pfn when `accept(size)` says
  // the caller's view matches it; otherwise changes nothing and returns the
  // recorded size (or nothing) in `found` for the error message.
  template <class Accept>
  bool take(std::uint64_t pfn, Accept accept, std::optional<std::uint64_t>& found);

  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  // Every (pfn, size), unordered. Consistent only when no one is changing it.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> snapshot() const;

 private:
  static constexpr std::size_t kShards = 64;

  struct alignas(64) Shard {
    mutable std::mutex mutex;
    std::pmr::unsynchronized_pool_resource pool;                       // guarded by mutex
    std::pmr::unordered_map<std::uint64_t, std::uint64_t> map{&pool};  // guarded by mutex
  };

  Shard& shard_of(std::uint64_t pfn) {
    // Neighbouring pfns (and sizes that are powers of two apart) spread out.
    return shards_[(pfn * 0x9E3779B97F4A7C15ull) >> 58];
  }

  std::array<Shard, kShards> shards_;
  // Only a statistic: relaxed, never used to decide anything.
  std::atomic<std::uint64_t> count_{0};
};

template <class Accept>
bool IovaLiveSet::take(std::uint64_t pfn, Accept accept, std::optional<std::uint64_t>& found) {
  Shard& shard = shard_of(pfn);
  std::lock_guard lock(shard.mutex);
  const auto it = shard.map.find(pfn);
  if (it == shard.map.end()) {
    found.reset();
    return false;
  }
  found = it->second;
  if (!accept(it->second)) {
    return false;
  }
  shard.map.erase(it);
  count_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

}  // namespace swiotlb::iova
