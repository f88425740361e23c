// IovaDomain: the tree, the magazines and the record of handed-out IOVAs
// put together. This file takes no lock of its own; each part locks itself,
// in the order live record (alone), CPU magazine, depot, tree.
#include "swiotlb/iova/iova_domain.h"

#include <algorithm>
#include <bit>
#include <map>

#include "iova_live_set.h"

namespace swiotlb::iova {

Result<std::unique_ptr<IovaDomain>> IovaDomain::create(std::uint64_t granule,
                                                       std::uint64_t start_pfn, unsigned cpu_count,
                                                       IovaChecks checks) {
  if (Status st = IovaTree::check_geometry(granule, start_pfn); !st) {
    return st.error();
  }
  if (cpu_count == 0) {
    return make_error(Errc::invalid_argument, "an IOVA domain needs at least one CPU");
  }
  return std::unique_ptr<IovaDomain>(new IovaDomain(granule, start_pfn, cpu_count, checks));
}

IovaDomain::IovaDomain(std::uint64_t granule, std::uint64_t start_pfn, unsigned cpu_count,
                       IovaChecks checks)
    : tree_(granule, start_pfn),
      rcache_(cpu_count),
      live_(checks == IovaChecks::on ? std::make_unique<IovaLiveSet>() : nullptr) {}

IovaDomain::~IovaDomain() = default;

Status IovaDomain::check_cpu(unsigned cpu) const {
  if (cpu >= cpu_count()) {
    return make_error(Errc::invalid_argument, "CPU {} is outside this IOVA domain's {} CPUs", cpu,
                      cpu_count());
  }
  return Status::ok();
}

Result<IovaRange> IovaDomain::alloc(std::uint64_t size, std::uint64_t limit_pfn,
                                    bool size_aligned) {
  Result<IovaRange> range = tree_.alloc(size, limit_pfn, size_aligned);
  if (range && live_ != nullptr) {
    live_->insert(range->pfn_lo, range->size());
  }
  return range;
}

Status IovaDomain::free(std::uint64_t pfn) {
  if (live_ == nullptr) {
    return tree_.free(pfn);
  }
  std::optional<std::uint64_t> found;
  const auto any_size = [](std::uint64_t) { return true; };
  if (!live_->take(pfn, any_size, found)) {
    return make_error(Errc::not_mapped, "free of IOVA pfn {:#x}: no IOVA handed out starts there",
                      pfn);
  }
  return tree_.free(pfn);
}

std::optional<IovaNode> IovaDomain::find(std::uint64_t pfn) const {
  return tree_.find(pfn);
}

Result<IovaRange> IovaDomain::reserve(std::uint64_t pfn_lo, std::uint64_t pfn_hi) {
  return tree_.reserve(pfn_lo, pfn_hi);
}

// The ladder (see the header): round the size, try this CPU's magazines,
// then the tree; if that fails and flushing is allowed, empty every
// magazine into the tree and try the tree once more; then fail.
Result<std::uint64_t> IovaDomain::alloc_fast(unsigned cpu, std::uint64_t size,
                                             std::uint64_t limit_pfn, bool flush_rcache) {
  if (Status st = check_cpu(cpu); !st) {
    return st.error();
  }
  if (size == 0 || size > kMaxIovaSize) {
    return make_error(Errc::invalid_argument, "IOVA size {} is outside [1, 2^63] granules", size);
  }
  size = fast_alloc_size(size);
  // The kernel adds one to the limit on the way in; keep that from wrapping.
  limit_pfn = std::min(limit_pfn, kIovaAnchor - 1);
  if (const std::optional<std::uint64_t> pfn = rcache_.get(cpu, size, limit_pfn)) {
    if (live_ != nullptr) {
      live_->insert(*pfn, size);
    }
    return *pfn;
  }
  return alloc_fast_from_tree(size, limit_pfn, flush_rcache);
}

Result<std::uint64_t> IovaDomain::alloc_fast_from_tree(std::uint64_t size, std::uint64_t limit_pfn,
                                                       bool flush_rcache) {
  Result<IovaRange> range = tree_.alloc(size, limit_pfn, true);
  if (!range && flush_rcache) {
    rcache_.flush_all(tree_);
    range = tree_.alloc(size, limit_pfn, true);
  }
  if (!range) {
    return make_error(
        Errc::pool_full, "no room for {} granule(s) at or below pfn {:#x}{}: {} IOVA(s) live", size,
        limit_pfn, flush_rcache ? " even after flushing the magazines" : "", live_count());
  }
  if (live_ != nullptr) {
    live_->insert(range->pfn_lo, size);
  }
  return range->pfn_lo;
}

Status IovaDomain::free_fast(unsigned cpu, std::uint64_t pfn, std::uint64_t size) {
  if (Status st = check_cpu(cpu); !st) {
    return st.error();
  }
  if (size == 0 || size > kMaxIovaSize) {
    return make_error(Errc::invalid_argument, "IOVA size {} is outside [1, 2^63] granules", size);
  }
  const std::uint64_t rounded = fast_alloc_size(size);
  // Production mode takes the caller's size for what alloc_fast gave.
  std::uint64_t held = rounded;
  if (live_ != nullptr) {
    Result<std::uint64_t> taken = take_live(pfn, size);
    if (!taken) {
      return std::move(taken).error();
    }
    held = *taken;
  }
  // Only a range of exactly its class's size and alignment may be parked:
  // the magazine will hand it to any request of that class. A range from
  // alloc() with an odd size or without alignment goes back to the tree.
  const bool cacheable = rounded == std::bit_ceil(size) && held == rounded && pfn % rounded == 0;
  if (cacheable && rcache_.insert(cpu, pfn, size, tree_)) {
    return Status::ok();
  }
  return tree_.free(pfn);
}

// The caller may give the size it asked alloc_fast for or the rounded size
// it got; anything else is a different IOVA than the one recorded.
Result<std::uint64_t> IovaDomain::take_live(std::uint64_t pfn, std::uint64_t size) {
  const std::uint64_t rounded = fast_alloc_size(size);
  std::optional<std::uint64_t> found;
  const auto matches = [&](std::uint64_t held) { return held == size || held == rounded; };
  if (live_->take(pfn, matches, found)) {
    return *found;
  }
  if (!found) {
    return make_error(Errc::not_mapped,
                      "free of IOVA pfn {:#x} ({} granule(s)): no IOVA handed out starts there",
                      pfn, size);
  }
  return make_error(Errc::mapping_mismatch,
                    "free of IOVA pfn {:#x} with {} granule(s): it was allocated with {}", pfn,
                    size, *found);
}

void IovaDomain::flush_rcaches() {
  rcache_.flush_all(tree_);
}

Status IovaDomain::flush_cpu_rcache(unsigned cpu) {
  if (Status st = check_cpu(cpu); !st) {
    return st;
  }
  rcache_.flush_cpu(cpu, tree_);
  return Status::ok();
}

std::uint64_t IovaDomain::live_count() const {
  return live_ != nullptr ? live_->count() : 0;
}

Status IovaDomain::check_invariants() const {
  if (Status st = tree_.check_invariants(); !st) {
    return st;
  }
  return check_parked_pfns();
}

// Every allocated tree range must be owned exactly once: by a caller (the
// live record) or by a magazine.
Status IovaDomain::check_parked_pfns() const {
  std::map<std::uint64_t, std::uint64_t> owned;  // pfn -> size
  if (live_ != nullptr) {
    for (const auto& [pfn, size] : live_->snapshot()) {
      owned.emplace(pfn, size);
    }
  }
  const auto park = [&](std::uint64_t pfn, unsigned size_class) -> Status {
    if (!owned.emplace(pfn, std::uint64_t{1} << size_class).second) {
      return make_error(Errc::invalid_argument, "IOVA pfn {:#x} is owned twice", pfn);
    }
    return Status::ok();
  };
  for (unsigned c = 0; c < kIovaRangeCacheMaxSize; ++c) {
    std::vector<std::uint64_t> pfns;
    for (unsigned cpu = 0; cpu < cpu_count(); ++cpu) {
      CpuMagazines mags = rcache_.cpu_magazines(cpu, c);
      pfns.insert(pfns.end(), mags.loaded.begin(), mags.loaded.end());
      pfns.insert(pfns.end(), mags.prev.begin(), mags.prev.end());
    }
    for (const auto& mag : rcache_.depot(c)) {
      pfns.insert(pfns.end(), mag.begin(), mag.end());
    }
    for (const std::uint64_t pfn : pfns) {
      if (Status st = park(pfn, c); !st) {
        return st;
      }
    }
  }
  if (live_ == nullptr) {
    // No record of the handed-out ones: each parked pfn must at least be
    // an allocated range of its class's size.
    for (const auto& [pfn, size] : owned) {
      const std::optional<IovaNode> node = tree_.find(pfn);
      if (!node || node->kind != IovaKind::allocated || node->range.pfn_lo != pfn ||
          node->range.size() != size) {
        return make_error(Errc::invalid_argument,
                          "parked IOVA pfn {:#x} is not an allocated range of {} granule(s)", pfn,
                          size);
      }
    }
    return Status::ok();
  }
  std::uint64_t allocated = 0;
  for (const IovaNode& node : tree_.nodes()) {
    if (node.kind != IovaKind::allocated) {
      continue;
    }
    ++allocated;
    const auto it = owned.find(node.range.pfn_lo);
    if (it == owned.end() || it->second != node.range.size()) {
      return make_error(Errc::invalid_argument,
                        "allocated IOVA [{:#x}, {:#x}] is owned by no one, or with another size",
                        node.range.pfn_lo, node.range.pfn_hi);
    }
  }
  if (allocated != owned.size()) {
    return make_error(Errc::invalid_argument, "{} IOVA(s) are owned but the tree allocates {}",
                      owned.size(), allocated);
  }
  return Status::ok();
}

}  // namespace swiotlb::iova
