// The IOVA magazines. A CPU's loaded/prev pair is touched only under that
// CPU's lock for the class; the depot only under the class's depot mutex,
// taken inside a CPU lock when both are needed. Magazines are allocated on
// the slow path only (a CPU's pair is full), as the kernel allocates them.
#include "swiotlb/iova/iova_rcache.h"

#include <bit>
#include <span>
#include <utility>

#include "swiotlb/core/check.h"

namespace swiotlb::iova {

unsigned order_base_2(std::uint64_t n) {
  SWIOTLB_CHECK(n >= 1, "a magazine holds at least one pfn");
  return n <= 1 ? 0u : static_cast<unsigned>(std::bit_width(n - 1));
}

std::uint64_t fast_alloc_size(std::uint64_t size) {
  return size < kIovaRcacheMaxGranules ? std::bit_ceil(size) : size;
}

// iova_magazine_pop: the scan runs from the top, so the most recently pushed
// pfn that fits wins, and the last pfn moves into the hole it leaves.
std::optional<std::uint64_t> IovaRcache::Magazine::pop(std::uint64_t limit_pfn) {
  for (std::size_t i = size; i-- > 0;) {
    if (pfns[i] <= limit_pfn) {
      const std::uint64_t pfn = pfns[i];
      pfns[i] = pfns[--size];
      return pfn;
    }
  }
  return std::nullopt;
}

IovaRcache::IovaRcache(unsigned cpu_count) : cpu_count_(cpu_count) {
  SWIOTLB_CHECK(cpu_count >= 1, "a cache serves at least one CPU");
  for (SizeClass& cls : classes_) {
    cls.cpus = std::make_unique<CpuCache[]>(cpu_count);
    for (unsigned cpu = 0; cpu < cpu_count; ++cpu) {
      cls.cpus[cpu].loaded = std::make_unique<Magazine>();
      cls.cpus[cpu].prev = std::make_unique<Magazine>();
    }
  }
}

IovaRcache::~IovaRcache() = default;

std::optional<std::uint64_t> IovaRcache::get(unsigned cpu, std::uint64_t size,
                                             std::uint64_t limit_pfn) {
  SWIOTLB_CHECK(cpu < cpu_count_, "the CPU id was validated by the domain");
  const unsigned class_index = order_base_2(size);
  // The kernel pops below limit + 1 - size without checking that this does
  // not wrap; when it would, nothing of this size fits, so nothing is popped.
  if (class_index >= kIovaRangeCacheMaxSize || limit_pfn < size - 1) {
    return std::nullopt;
  }
  SizeClass& cls = classes_[class_index];
  CpuCache& cache = cls.cpus[cpu];
  std::lock_guard lock(cache.lock);
  if (cache.loaded->empty()) {
    if (!cache.prev->empty()) {
      std::swap(cache.loaded, cache.prev);
    } else {
      std::lock_guard depot_lock(cls.depot_mutex);
      if (cls.depot_size == 0) {
        return std::nullopt;
      }
      cache.loaded = std::move(cls.depot[--cls.depot_size]);  // the empty one is dropped
    }
  }
  return cache.loaded->pop(limit_pfn - (size - 1));
}

bool IovaRcache::insert(unsigned cpu, std::uint64_t pfn, std::uint64_t size, IovaTree& tree) {
  SWIOTLB_CHECK(cpu < cpu_count_, "the CPU id was validated by the domain");
  const unsigned class_index = order_base_2(size);
  if (class_index >= kIovaRangeCacheMaxSize) {
    return false;
  }
  SizeClass& cls = classes_[class_index];
  CpuCache& cache = cls.cpus[cpu];
  std::unique_ptr<Magazine> spill;
  {
    std::lock_guard lock(cache.lock);
    if (cache.loaded->full()) {
      if (!cache.prev->full()) {
        std::swap(cache.loaded, cache.prev);
      } else {
        spill = replace_full_loaded(cls, cache);
      }
    }
    cache.loaded->push(pfn);
  }
  // Emptied outside the CPU lock, as the kernel does, so that the tree lock
  // is not held up behind this CPU's cache.
  if (spill) {
    drain(*spill, tree);
  }
  return true;
}

// Both of the CPU's magazines are full: park the loaded one in the depot,
// or hand it back for emptying when the depot is full too.
std::unique_ptr<IovaRcache::Magazine> IovaRcache::replace_full_loaded(SizeClass& cls,
                                                                      CpuCache& cache) {
  auto fresh = std::make_unique<Magazine>();
  std::unique_ptr<Magazine> spill;
  {
    std::lock_guard depot_lock(cls.depot_mutex);
    if (cls.depot_size < kMaxGlobalMagazines) {
      cls.depot[cls.depot_size++] = std::move(cache.loaded);
    } else {
      spill = std::move(cache.loaded);
    }
  }
  cache.loaded = std::move(fresh);
  return spill;
}

void IovaRcache::drain(Magazine& mag, IovaTree& tree) {
  tree.free_many(std::span<const std::uint64_t>(mag.pfns.data(), mag.size));
  mag.size = 0;
}

void IovaRcache::flush_cpu(unsigned cpu, IovaTree& tree) {
  SWIOTLB_CHECK(cpu < cpu_count_, "the CPU id was validated by the domain");
  for (SizeClass& cls : classes_) {
    CpuCache& cache = cls.cpus[cpu];
    std::lock_guard lock(cache.lock);
    drain(*cache.loaded, tree);
    drain(*cache.prev, tree);
  }
}

void IovaRcache::flush_depot(IovaTree& tree) {
  for (SizeClass& cls : classes_) {
    std::lock_guard depot_lock(cls.depot_mutex);
    for (std::size_t i = 0; i < cls.depot_size; ++i) {
      drain(*cls.depot[i], tree);
      cls.depot[i].reset();
    }
    cls.depot_size = 0;
  }
}

void IovaRcache::flush_all(IovaTree& tree) {
  for (unsigned cpu = 0; cpu < cpu_count_; ++cpu) {
    flush_cpu(cpu, tree);
  }
  flush_depot(tree);
}

CpuMagazines IovaRcache::cpu_magazines(unsigned cpu, unsigned size_class) const {
  SWIOTLB_CHECK(cpu < cpu_count_ && size_class < kIovaRangeCacheMaxSize,
                "a cached size class on a known CPU");
  const CpuCache& cache = classes_[size_class].cpus[cpu];
  std::lock_guard lock(cache.lock);
  const auto pfns = [](const Magazine& mag) {
    return std::vector<std::uint64_t>(mag.pfns.begin(),
                                      mag.pfns.begin() + static_cast<std::ptrdiff_t>(mag.size));
  };
  return {pfns(*cache.loaded), pfns(*cache.prev)};
}

std::vector<std::vector<std::uint64_t>> IovaRcache::depot(unsigned size_class) const {
  SWIOTLB_CHECK(size_class < kIovaRangeCacheMaxSize, "only cacheable sizes reach the depot");
  const SizeClass& cls = classes_[size_class];
  std::lock_guard depot_lock(cls.depot_mutex);
  std::vector<std::vector<std::uint64_t>> out;
  for (std::size_t i = 0; i < cls.depot_size; ++i) {
    const Magazine& mag = *cls.depot[i];
    out.emplace_back(mag.pfns.begin(), mag.pfns.begin() + static_cast<std::ptrdiff_t>(mag.size));
  }
  return out;
}

std::uint64_t IovaRcache::cached_pfn_count() const {
  std::uint64_t count = 0;
  for (unsigned c = 0; c < kIovaRangeCacheMaxSize; ++c) {
    for (unsigned cpu = 0; cpu < cpu_count_; ++cpu) {
      const CpuMagazines mags = cpu_magazines(cpu, c);
      count += mags.loaded.size() + mags.prev.size();
    }
    for (const auto& mag : depot(c)) {
      count += mag.size();
    }
  }
  return count;
}

}  // namespace swiotlb::iova
