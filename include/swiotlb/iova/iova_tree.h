// IovaTree: the ordered set of page-frame ranges behind an IOVA domain, and
// the top-down allocator that searches it. It reproduces the tree half of
// Linux 6.1's drivers/iommu/iova.c: the same sequence of reserve, alloc and
// free calls with the same sizes and limits gives the same pfns.
//
// A pfn here is a device page-frame number: a DMA address shifted right by
// the domain's granule shift. Ranges are inclusive, [pfn_lo, pfn_hi].
//
// Representation. The kernel keeps its ranges in a red-black tree ordered by
// pfn_lo, with an anchor node at pfn IOVA_ANCHOR (all ones) above every
// usable pfn so that a top-down walk always has a node to start from. We keep
// them in a std::map keyed by pfn_hi, with the same anchor:
//  - The key is pfn_hi, not pfn_lo, because reserving a range that overlaps
//    an existing reserved range lowers that range's pfn_lo in place; pfn_hi
//    never changes while a node lives. Ranges never overlap, so both keys give
//    the same order.
//  - The kernel's rb_prev / rb_next are std::prev / std::next. Map iterators,
//    like the kernel's node pointers, stay valid until their node is erased,
//    so the two cached search starts (cached_node, cached32_node) are
//    iterators, updated on insert and erase exactly as the kernel updates
//    its pointers.
//  - iova_find_limit (where the retry pass starts) walks the tree's shape and
//    returns either the node that contains limit_pfn or the lowest node above
//    it, depending on where the red-black rebalancing put them. Starting the
//    walk from either gives the same allocation (the first step from the
//    higher one always moves on to the lower one with the same window), so we
//    start from lower_bound(limit_pfn), which needs no shape.
//
// Synchronization: one mutex, the kernel's iova_rbtree_lock, guards the map,
// both cached iterators and max32_alloc_size. Every public method takes it
// for its whole run and calls nothing outside this class while holding it.
// The rcache (iova_rcache.h) takes its own locks first and this one last.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "swiotlb/core/error.h"

namespace swiotlb::iova {

// The anchor's pfn: above every pfn a domain can hand out or reserve.
inline constexpr std::uint64_t kIovaAnchor = ~std::uint64_t{0};

// The largest granule: the kernel requires granule <= PAGE_SIZE.
inline constexpr std::uint64_t kMaxGranule = 4096;

// The largest allocation, in granules: keeps the alignment shift defined.
inline constexpr std::uint64_t kMaxIovaSize = std::uint64_t{1} << 63;

// An inclusive range of pfns.
struct IovaRange {
  std::uint64_t pfn_lo = 0;
  std::uint64_t pfn_hi = 0;

  constexpr std::uint64_t size() const { return pfn_hi - pfn_lo + 1; }
  constexpr bool contains(std::uint64_t pfn) const { return pfn >= pfn_lo && pfn <= pfn_hi; }
  constexpr bool overlaps(const IovaRange& other) const {
    return pfn_lo <= other.pfn_hi && other.pfn_lo <= pfn_hi;
  }
  constexpr bool operator==(const IovaRange&) const = default;
};

// What a node of the tree holds. The kernel does not tell these apart; we
// do, so that a free of a reserved range, or a reserve over an allocation,
// is refused instead of corrupting the tree.
enum class IovaKind : std::uint8_t {
  allocated,  // handed out by alloc (possibly parked in a magazine since)
  reserved,   // made by reserve; never freed
  anchor,     // the sentinel at kIovaAnchor
};

struct IovaNode {
  IovaRange range;
  IovaKind kind = IovaKind::allocated;
  constexpr bool operator==(const IovaNode&) const = default;
};

// The allocator state that decides where the next search starts, for tests
// and for explaining a replay.
struct IovaSearchState {
  IovaRange cached_node;           // start of searches with a limit above 4 GiB
  IovaRange cached32_node;         // start of searches with a limit at or below 4 GiB
  std::uint64_t max32_alloc_size;  // a 32-bit search this big fails at once
  std::uint64_t node_count;        // nodes, the anchor excluded
};

class IovaTree {
 public:
  // Checks what init_iova_domain requires: granule a power of two no larger
  // than kMaxGranule. start_pfn must be at least 1 (the kernel's DMA layer
  // never uses 0, and alloc_iova_fast could not tell pfn 0 from failure) and
  // at most the domain's max_pfn.
  static Status check_geometry(std::uint64_t granule, std::uint64_t start_pfn);

  // REQUIRES: check_geometry(granule, start_pfn) succeeds.
  IovaTree(std::uint64_t granule, std::uint64_t start_pfn);
  IovaTree(const IovaTree&) = delete;
  IovaTree& operator=(const IovaTree&) = delete;

  std::uint64_t granule() const { return granule_; }
  unsigned shift() const { return shift_; }
  std::uint64_t start_pfn() const { return start_pfn_; }
  // The first pfn at 4 GiB: limits at or below it use the 32-bit cache.
  std::uint64_t dma_32bit_pfn() const { return dma_32bit_pfn_; }
  // The highest pfn a 64-bit DMA address can name (ULLONG_MAX >> shift).
  std::uint64_t max_pfn() const { return max_pfn_; }

  // alloc_iova: `size` granules at or below `limit_pfn` (inclusive),
  // searched top-down from the cached node, then once more from the limit
  // down to the cached node. With size_aligned, pfn_lo is a multiple of
  // size rounded up to a power of two.
  // Fails (pool_full) when no gap fits, (invalid_argument) when size is 0
  // or above kMaxIovaSize. A limit of kIovaAnchor is read as one below it.
  Result<IovaRange> alloc(std::uint64_t size, std::uint64_t limit_pfn, bool size_aligned);

  // free_iova for the allocated range that starts at `pfn`.
  // Fails (not_mapped) when no allocated range starts there; nothing changes.
  Status free(std::uint64_t pfn);

  // Frees the allocated ranges containing each pfn, in order, under one lock
  // (iova_magazine_free_pfns). REQUIRES: each pfn is in an allocated range;
  // a pfn that is not is skipped (and asserts in debug builds).
  void free_many(std::span<const std::uint64_t> pfns);

  // find_iova: the node whose range contains `pfn`, anchor excluded.
  std::optional<IovaNode> find(std::uint64_t pfn) const;

  // reserve_iova: keeps [pfn_lo, pfn_hi] from ever being allocated. Where it
  // overlaps reserved ranges it merges with them exactly as the kernel does
  // (the lowest overlapping range is stretched down to pfn_lo and only the
  // part above the overlapped ranges becomes a new node); the result is the
  // node the kernel would return. A range below start_pfn is allowed.
  // Fails (out_of_range) when pfn_lo > pfn_hi or pfn_hi > max_pfn(), and
  // (busy) when the range overlaps an allocated range; nothing changes.
  Result<IovaRange> reserve(std::uint64_t pfn_lo, std::uint64_t pfn_hi);

  // Every node in pfn order, the anchor excluded.
  std::vector<IovaNode> nodes() const;
  IovaSearchState search_state() const;

  // Checks ordering, disjointness, keys, the anchor and that both cached
  // iterators point into the map. Returns the first violation found.
  Status check_invariants() const;

 private:
  struct Entry {
    std::uint64_t pfn_lo;
    IovaKind kind;
  };
  using Map = std::pmr::map<std::uint64_t, Entry>;  // keyed by pfn_hi
  using Iter = Map::iterator;

  std::optional<IovaRange> alloc_locked(std::uint64_t size, std::uint64_t limit_end,
                                        bool size_aligned);
  Iter find_limit_locked(std::uint64_t limit_end);
  Iter find_locked(std::uint64_t pfn);
  void remove_locked(Iter it);
  Status check_reserve_locked(std::uint64_t pfn_lo, std::uint64_t pfn_hi);
  static IovaRange range_of(Iter it) { return {it->second.pfn_lo, it->first}; }

  const std::uint64_t granule_;
  const unsigned shift_;
  const std::uint64_t start_pfn_;
  const std::uint64_t dma_32bit_pfn_;
  const std::uint64_t max_pfn_;

  mutable std::mutex mutex_;
  // Recycles map nodes, so that steady alloc/free traffic does not reach the
  // heap. Guarded by mutex_ like the map that uses it.
  std::pmr::unsynchronized_pool_resource node_pool_;
  Map map_;                         // guarded by mutex_
  Iter cached_node_;                // guarded by mutex_
  Iter cached32_node_;              // guarded by mutex_
  std::uint64_t max32_alloc_size_;  // guarded by mutex_
};

}  // namespace swiotlb::iova
