// The IOVA tree: Linux 6.1's rbtree allocator over a std::map keyed by
// pfn_hi. Every public method holds mutex_ (iova_rbtree_lock) throughout;
// the _locked helpers expect it held.
#include "swiotlb/iova/iova_tree.h"

#include <algorithm>
#include <bit>

#include "swiotlb/core/check.h"

namespace swiotlb::iova {
namespace {

// The kernel's fls_long: 1-based index of the highest set bit, 0 for 0.
unsigned fls(std::uint64_t x) {
  return static_cast<unsigned>(std::bit_width(x));
}

}  // namespace

Status IovaTree::check_geometry(std::uint64_t granule, std::uint64_t start_pfn) {
  if (!std::has_single_bit(granule) || granule > kMaxGranule) {
    return make_error(Errc::invalid_argument,
                      "IOVA granule {} is not a power of two between 1 and {}", granule,
                      kMaxGranule);
  }
  const std::uint64_t max_pfn = ~std::uint64_t{0} >> std::countr_zero(granule);
  if (start_pfn == 0 || start_pfn > max_pfn) {
    return make_error(Errc::invalid_argument,
                      "IOVA start_pfn {:#x} is outside [0x1, {:#x}] for granule {}", start_pfn,
                      max_pfn, granule);
  }
  return Status::ok();
}

IovaTree::IovaTree(std::uint64_t granule, std::uint64_t start_pfn)
    : granule_(granule),
      shift_(static_cast<unsigned>(std::countr_zero(granule))),
      start_pfn_(start_pfn),
      dma_32bit_pfn_(std::uint64_t{1} << (32 - std::min(shift_, 32u))),
      max_pfn_(~std::uint64_t{0} >> shift_),
      map_(&node_pool_),
      max32_alloc_size_(dma_32bit_pfn_) {
  SWIOTLB_CHECK(check_geometry(granule, start_pfn), "callers validate the geometry first");
  cached_node_ = map_.emplace(kIovaAnchor, Entry{kIovaAnchor, IovaKind::anchor}).first;
  cached32_node_ = cached_node_;
}

Result<IovaRange> IovaTree::alloc(std::uint64_t size, std::uint64_t limit_pfn, bool size_aligned) {
  if (size == 0 || size > kMaxIovaSize) {
    return make_error(Errc::invalid_argument, "IOVA size {} is outside [1, 2^63] granules", size);
  }
  // The kernel works with an exclusive end (limit_pfn + 1); keep it from
  // wrapping to 0.
  const std::uint64_t limit_end = std::min(limit_pfn, kIovaAnchor - 1) + 1;
  std::optional<IovaRange> range;
  {
    std::lock_guard lock(mutex_);
    range = alloc_locked(size, limit_end, size_aligned);
  }
  if (!range) {
    return make_error(Errc::pool_full,
                      "no room for {} granule(s){} at or below pfn {:#x} (start_pfn {:#x})", size,
                      size_aligned ? " size-aligned" : "", limit_end - 1, start_pfn_);
  }
  return *range;
}

// __alloc_and_insert_iova_range. The walk moves down from a start node
// through the gaps between nodes; in each gap it places the range as high as
// the alignment allows and stops at the first gap where it fits above the
// next node down. The first pass starts at the cached node; when it runs out
// below, a second pass covers what lies between the cached node and the
// limit, which the first pass never saw.
std::optional<IovaRange> IovaTree::alloc_locked(std::uint64_t size, std::uint64_t limit_end,
                                                bool size_aligned) {
  const std::uint64_t align_mask =
      size_aligned ? ~std::uint64_t{0} << fls(size - 1) : ~std::uint64_t{0};
  const bool below_4g = limit_end <= dma_32bit_pfn_;
  if (below_4g && size >= max32_alloc_size_) {
    return std::nullopt;  // a 32-bit search at least this big failed already
  }
  Iter curr = below_4g ? cached32_node_ : cached_node_;
  const std::uint64_t retry_pfn = curr->first;
  std::uint64_t high_pfn = limit_end;
  std::uint64_t low_pfn = start_pfn_;
  for (bool retried = false;; retried = true) {
    std::uint64_t new_pfn = 0;
    Iter prev = curr;
    bool more = true;
    while (more) {
      high_pfn = std::min(high_pfn, curr->second.pfn_lo);
      new_pfn = (high_pfn - size) & align_mask;  // wraps when size > high_pfn
      prev = curr;
      more = curr != map_.begin();
      if (more) {
        --curr;
        more = new_pfn <= curr->first && new_pfn >= low_pfn;
      }
    }
    if (high_pfn >= size && new_pfn >= low_pfn) {
      const IovaRange range{new_pfn, new_pfn + size - 1};
      const Iter it =
          map_.emplace_hint(prev, range.pfn_hi, Entry{range.pfn_lo, IovaKind::allocated});
      (range.pfn_hi < dma_32bit_pfn_ ? cached32_node_ : cached_node_) = it;
      return range;
    }
    // The kernel's retry test. It can hold only once, since the second pass
    // raises low_pfn above start_pfn (a cached node never ends below it);
    // `retried` makes that certain rather than argued.
    if (retried || low_pfn != start_pfn_ || retry_pfn >= limit_end) {
      break;
    }
    high_pfn = limit_end;
    low_pfn = retry_pfn + 1;
    curr = find_limit_locked(limit_end);
  }
  // Recorded whatever the limit was: a later 32-bit search of this size or
  // more fails at once until something below 4 GiB is freed.
  max32_alloc_size_ = size;
  return std::nullopt;
}

IovaTree::Iter IovaTree::find_limit_locked(std::uint64_t limit_end) {
  if (limit_end > dma_32bit_pfn_) {
    return std::prev(map_.end());  // the anchor: the kernel's cheap guess
  }
  return map_.lower_bound(limit_end);  // never end(): the anchor is above
}

IovaTree::Iter IovaTree::find_locked(std::uint64_t pfn) {
  const Iter it = map_.lower_bound(pfn);
  if (it == map_.end() || it->second.pfn_lo > pfn || it->second.kind == IovaKind::anchor) {
    return map_.end();
  }
  return it;
}

// __cached_rbnode_delete_update, then the erase.
void IovaTree::remove_locked(Iter it) {
  const IovaRange freed = range_of(it);
  const Iter next = std::next(it);
  if (it == cached32_node_ ||
      (freed.pfn_hi < dma_32bit_pfn_ && freed.pfn_lo >= cached32_node_->second.pfn_lo)) {
    cached32_node_ = next;
  }
  if (freed.pfn_lo < dma_32bit_pfn_) {
    max32_alloc_size_ = dma_32bit_pfn_;
  }
  if (freed.pfn_lo >= cached_node_->second.pfn_lo) {
    cached_node_ = next;
  }
  map_.erase(it);
}

Status IovaTree::free(std::uint64_t pfn) {
  std::lock_guard lock(mutex_);
  const Iter it = find_locked(pfn);
  if (it == map_.end() || it->second.kind != IovaKind::allocated || it->second.pfn_lo != pfn) {
    if (it == map_.end()) {
      return make_error(Errc::not_mapped, "free of IOVA pfn {:#x}: no range holds it", pfn);
    }
    return make_error(Errc::not_mapped,
                      "free of IOVA pfn {:#x}: it lies in the {} range [{:#x}, {:#x}]", pfn,
                      it->second.kind == IovaKind::reserved ? "reserved" : "allocated",
                      it->second.pfn_lo, it->first);
  }
  remove_locked(it);
  return Status::ok();
}

void IovaTree::free_many(std::span<const std::uint64_t> pfns) {
  std::lock_guard lock(mutex_);
  for (const std::uint64_t pfn : pfns) {
    const Iter it = find_locked(pfn);
    const bool ok = it != map_.end() && it->second.kind == IovaKind::allocated;
    SWIOTLB_CHECK(ok, "a magazine held a pfn the tree does not have");
    if (ok) {
      remove_locked(it);
    }
  }
}

std::optional<IovaNode> IovaTree::find(std::uint64_t pfn) const {
  std::lock_guard lock(mutex_);
  const auto it = map_.lower_bound(pfn);
  if (it == map_.end() || it->second.pfn_lo > pfn || it->second.kind == IovaKind::anchor) {
    return std::nullopt;
  }
  return IovaNode{{it->second.pfn_lo, it->first}, it->second.kind};
}

Status IovaTree::check_reserve_locked(std::uint64_t pfn_lo, std::uint64_t pfn_hi) {
  if (pfn_lo > pfn_hi || pfn_hi > max_pfn_ || pfn_hi >= kIovaAnchor) {
    return make_error(Errc::out_of_range,
                      "reserve of IOVA pfns [{:#x}, {:#x}] is outside the domain [0x0, {:#x}]",
                      pfn_lo, pfn_hi, std::min(max_pfn_, kIovaAnchor - 1));
  }
  for (auto it = map_.lower_bound(pfn_lo); it->second.pfn_lo <= pfn_hi; ++it) {
    if (it->second.kind == IovaKind::allocated) {
      return make_error(Errc::busy,
                        "reserve of IOVA pfns [{:#x}, {:#x}] overlaps the allocated range "
                        "[{:#x}, {:#x}]",
                        pfn_lo, pfn_hi, it->second.pfn_lo, it->first);
    }
  }
  return Status::ok();
}

// reserve_iova. The kernel scans every node from the first; nodes before
// lower_bound(pfn_lo) end below the range and cannot overlap it, so the scan
// starts there. Each overlapped node is stretched down to cover pfn_lo, and
// the part of the request above it moves on to the next node.
Result<IovaRange> IovaTree::reserve(std::uint64_t pfn_lo, std::uint64_t pfn_hi) {
  std::lock_guard lock(mutex_);
  if (Status st = check_reserve_locked(pfn_lo, pfn_hi); !st) {
    return st.error();
  }
  for (Iter it = map_.lower_bound(pfn_lo); it->second.pfn_lo <= pfn_hi; ++it) {
    // Overlaps: this node ends at or above pfn_lo and starts at or below pfn_hi.
    it->second.pfn_lo = std::min(it->second.pfn_lo, pfn_lo);
    if (pfn_hi <= it->first) {
      return range_of(it);
    }
    pfn_lo = it->first + 1;
  }
  const Iter it = map_.emplace(pfn_hi, Entry{pfn_lo, IovaKind::reserved}).first;
  return range_of(it);
}

std::vector<IovaNode> IovaTree::nodes() const {
  std::lock_guard lock(mutex_);
  std::vector<IovaNode> out;
  out.reserve(map_.size());
  for (const auto& [hi, entry] : map_) {
    if (entry.kind != IovaKind::anchor) {
      out.push_back({{entry.pfn_lo, hi}, entry.kind});
    }
  }
  return out;
}

IovaSearchState IovaTree::search_state() const {
  std::lock_guard lock(mutex_);
  return {{cached_node_->second.pfn_lo, cached_node_->first},
          {cached32_node_->second.pfn_lo, cached32_node_->first},
          max32_alloc_size_,
          map_.size() - 1};
}

Status IovaTree::check_invariants() const {
  std::lock_guard lock(mutex_);
  if (map_.empty() || std::prev(map_.end())->first != kIovaAnchor ||
      std::prev(map_.end())->second.pfn_lo != kIovaAnchor) {
    return make_error(Errc::invalid_argument, "IOVA tree lost its anchor");
  }
  std::uint64_t next_free = 0;  // lowest pfn the next node may start at
  bool first = true;
  for (const auto& [hi, entry] : map_) {
    if (entry.pfn_lo > hi || (!first && entry.pfn_lo < next_free)) {
      return make_error(Errc::invalid_argument,
                        "IOVA tree node [{:#x}, {:#x}] is inverted or overlaps the one below",
                        entry.pfn_lo, hi);
    }
    if (entry.kind == IovaKind::allocated && (entry.pfn_lo < start_pfn_ || hi > max_pfn_)) {
      return make_error(Errc::invalid_argument,
                        "allocated IOVA [{:#x}, {:#x}] lies outside [{:#x}, {:#x}]", entry.pfn_lo,
                        hi, start_pfn_, max_pfn_);
    }
    if ((entry.kind == IovaKind::anchor) != (hi == kIovaAnchor)) {
      return make_error(Errc::invalid_argument, "IOVA tree node at {:#x} has the wrong kind", hi);
    }
    next_free = hi + 1;
    first = false;
  }
  const auto holds = [&](const Map::const_iterator& cached) {
    const auto it = map_.find(cached->first);
    return it == cached;
  };
  if (!holds(cached_node_) || !holds(cached32_node_)) {
    return make_error(Errc::invalid_argument, "an IOVA cached node points outside the tree");
  }
  return Status::ok();
}

}  // namespace swiotlb::iova
