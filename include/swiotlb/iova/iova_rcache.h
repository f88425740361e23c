// IovaRcache: the per-CPU magazine caches that sit in front of an IovaTree,
// as Linux 6.1's iova.c builds them (after Bonwick and Adams' "Magazines and
// Vmem", with a fixed magazine size).
//
// Freed ranges of 1, 2, 4, 8, 16 or 32 granules are not returned to the tree
// at once: their pfns are pushed into a magazine of their size class on the
// freeing CPU, and a later allocation of that class on the same CPU pops one
// back without touching the tree. Each CPU has, per class, a `loaded` and a
// `prev` magazine of kIovaMagazineSize pfns. Full magazines overflow into a
// depot of kMaxGlobalMagazines per class shared by all CPUs; when the depot
// is full too, the overflowing magazine's pfns go back to the tree.
//
// The CPU is an argument, not a lookup: a trace replay passes the CPU the
// trace names, a live caller passes the CPU it runs on (current_cpu()).
//
// Synchronization: each CPU's pair of magazines, per class, has its own
// spin lock (the kernel's per-CPU rcache lock, held for a push or a pop),
// so callers that pass different
// CPUs never contend; several threads may still pass the same CPU. Each
// class's depot has one mutex. Lock order: CPU lock, then depot lock, then
// the tree's lock (taken inside IovaTree when a magazine is emptied into it).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "swiotlb/core/spin_lock.h"
#include "swiotlb/iova/iova_tree.h"

namespace swiotlb::iova {

// Size classes: log2 of the cached sizes, 0..5, i.e. 1..32 granules.
inline constexpr unsigned kIovaRangeCacheMaxSize = 6;
// The largest cached size, in granules.
inline constexpr std::uint64_t kIovaRcacheMaxGranules = std::uint64_t{1}
                                                        << (kIovaRangeCacheMaxSize - 1);
// pfns per magazine: 127 so that the kernel's magazine is 1 KiB.
inline constexpr std::size_t kIovaMagazineSize = 127;
// Full magazines the depot keeps per size class.
inline constexpr std::size_t kMaxGlobalMagazines = 32;

// The kernel's order_base_2: ceil(log2(n)). REQUIRES: n >= 1.
unsigned order_base_2(std::uint64_t n);

// The size alloc_iova_fast really allocates for `size` granules: sizes below
// kIovaRcacheMaxGranules are rounded up to a power of two so that whatever
// comes back through a magazine fits any request of its class.
// REQUIRES: 1 <= size <= kMaxIovaSize.
std::uint64_t fast_alloc_size(std::uint64_t size);

// A snapshot of one CPU's magazines of one class, pfns in magazine order.
struct CpuMagazines {
  std::vector<std::uint64_t> loaded;
  std::vector<std::uint64_t> prev;
};

class IovaRcache {
 public:
  // REQUIRES: cpu_count >= 1.
  explicit IovaRcache(unsigned cpu_count);
  ~IovaRcache();
  IovaRcache(const IovaRcache&) = delete;
  IovaRcache& operator=(const IovaRcache&) = delete;

  unsigned cpu_count() const { return cpu_count_; }

  // iova_rcache_get: a cached pfn for `size` granules whose range ends at or
  // below limit_pfn, or nothing. Looks only at this CPU's loaded magazine,
  // after moving in prev (when loaded is empty) or the depot's last magazine
  // (when both are empty); a loaded magazine with no pfn low enough is a
  // miss even if prev or the depot hold one. The pfn taken is the highest-
  // indexed one low enough, and the magazine's last pfn fills its slot.
  // REQUIRES: cpu < cpu_count(); size is a power of two (fast_alloc_size).
  std::optional<std::uint64_t> get(unsigned cpu, std::uint64_t size, std::uint64_t limit_pfn);

  // iova_rcache_insert: caches `pfn`, an allocated range of `size` granules.
  // Returns false, caching nothing, when the size is above the classes; the
  // caller then frees it to the tree. When both of this CPU's magazines are
  // full, the loaded one goes to the depot, or, with the depot full, its
  // pfns go back to `tree`, and a fresh magazine takes its place.
  // REQUIRES: cpu < cpu_count(); the range is allocated in `tree` and held
  // by no magazine.
  bool insert(unsigned cpu, std::uint64_t pfn, std::uint64_t size, IovaTree& tree);

  // free_cpu_cached_iovas: returns every pfn in this CPU's magazines to the
  // tree, class by class, loaded before prev. REQUIRES: cpu < cpu_count().
  void flush_cpu(unsigned cpu, IovaTree& tree);
  // free_global_cached_iovas: returns every depot magazine's pfns to the
  // tree, class by class, oldest magazine first, and empties the depots.
  void flush_depot(IovaTree& tree);
  // The flush alloc_iova_fast does before its last try: every CPU in order,
  // then the depots.
  void flush_all(IovaTree& tree);

  // Inspection, for tests and reports. Each takes the locks it reads under,
  // so a snapshot of a busy cache is consistent per magazine, not overall.
  CpuMagazines cpu_magazines(unsigned cpu, unsigned size_class) const;
  std::vector<std::vector<std::uint64_t>> depot(unsigned size_class) const;
  std::uint64_t cached_pfn_count() const;

 private:
  struct Magazine {
    std::size_t size = 0;
    std::array<std::uint64_t, kIovaMagazineSize> pfns{};

    bool full() const { return size == kIovaMagazineSize; }
    bool empty() const { return size == 0; }
    std::optional<std::uint64_t> pop(std::uint64_t limit_pfn);
    void push(std::uint64_t pfn) { pfns[size++] = pfn; }
  };

  // One CPU's magazines of one class, on a cache line of its own.
  struct alignas(64) CpuCache {
    mutable SpinLock lock;
    std::unique_ptr<Magazine> loaded;  // guarded by lock
    std::unique_ptr<Magazine> prev;    // guarded by lock
  };

  struct SizeClass {
    mutable std::mutex depot_mutex;
    std::size_t depot_size = 0;                                        // guarded by depot_mutex
    std::array<std::unique_ptr<Magazine>, kMaxGlobalMagazines> depot;  // guarded by depot_mutex
    std::unique_ptr<CpuCache[]> cpus;  // one per CPU; the array itself is immutable
  };

  [[gnu::cold]] std::unique_ptr<Magazine> replace_full_loaded(SizeClass& cls, CpuCache& cpu);
  static void drain(Magazine& mag, IovaTree& tree);

  const unsigned cpu_count_;
  std::array<SizeClass, kIovaRangeCacheMaxSize> classes_;
};

}  // namespace swiotlb::iova
