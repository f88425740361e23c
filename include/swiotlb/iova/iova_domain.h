// IovaDomain: the device address space of one IOMMU domain, as Linux 6.1's
// drivers/iommu/iova.c manages it. It hands out ranges of device page frames
// (pfns of `granule` bytes) top-down below a caller's limit, never inside a
// reserved range, never below start_pfn (so never pfn 0).
//
// It is an IovaTree (iova_tree.h: the ordered ranges, the anchor, the cached
// search starts, the 32-bit fast-fail hint and the retry pass) with an
// IovaRcache in front (iova_rcache.h: per-CPU magazines and a depot), and
// offers the kernel's two sets of calls:
//  - alloc / free / find / reserve: alloc_iova, free_iova, find_iova,
//    reserve_iova, straight on the tree;
//  - alloc_fast / free_fast: alloc_iova_fast, free_iova_fast, through the
//    magazines; what the kernel's DMA layer uses for every mapping.
// Fed the same calls with the same sizes, limits and CPUs as a kernel, it
// returns the same pfns.
//
// Checked mode (IovaChecks::on, the default, for tests and debugging): beyond
// the kernel, it remembers which IOVAs it has handed out, so a free of one
// never allocated, freed twice or with the wrong size is an error value and
// changes nothing (the kernel would cache it and later hand the same pfns to
// two owners). Production mode (IovaChecks::off) trusts its callers as the
// kernel does: no record, so the cached calls touch only a CPU's magazines;
// free() and a free_fast() that reaches the tree still refuse a pfn the
// tree does not hold, but a wrong free_fast() that fits a magazine is
// parked there unchecked.
//
// Synchronization: every method may be called from any thread. The tree has
// one mutex (iova_rbtree_lock); each CPU's magazines one per size class;
// each class's depot one; the record of handed-out IOVAs is sharded. Callers
// passing different CPUs to alloc_fast/free_fast only meet on the tree when
// a magazine misses or overflows. check_invariants() and the inspection
// calls are exact only while no other thread is using the domain.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/iova/iova_rcache.h"
#include "swiotlb/iova/iova_tree.h"

namespace swiotlb::iova {

class IovaLiveSet;

// Whether a domain keeps the record of handed-out IOVAs (see above).
enum class IovaChecks : std::uint8_t { on, off };

class SWIOTLB_API IovaDomain {
 public:
  // init_iova_domain plus iova_domain_init_rcaches.
  // Fails (invalid_argument) when the granule is not a power of two of at
  // most kMaxGranule bytes, start_pfn is 0 or beyond the highest pfn, or
  // cpu_count is 0.
  static Result<std::unique_ptr<IovaDomain>> create(std::uint64_t granule, std::uint64_t start_pfn,
                                                    unsigned cpu_count,
                                                    IovaChecks checks = IovaChecks::on);
  ~IovaDomain();
  IovaDomain(const IovaDomain&) = delete;
  IovaDomain& operator=(const IovaDomain&) = delete;

  std::uint64_t granule() const { return tree_.granule(); }
  unsigned shift() const { return tree_.shift(); }
  std::uint64_t start_pfn() const { return tree_.start_pfn(); }
  std::uint64_t dma_32bit_pfn() const { return tree_.dma_32bit_pfn(); }
  std::uint64_t max_pfn() const { return tree_.max_pfn(); }
  unsigned cpu_count() const { return rcache_.cpu_count(); }
  IovaChecks checks() const { return live_ != nullptr ? IovaChecks::on : IovaChecks::off; }

  // --- The tree calls -----------------------------------------------------

  // alloc_iova: `size` granules ending at or below limit_pfn, size-aligned
  // if asked. Fails (pool_full) when nothing fits, (invalid_argument) for a
  // size of 0 or above kMaxIovaSize.
  Result<IovaRange> alloc(std::uint64_t size, std::uint64_t limit_pfn, bool size_aligned);

  // free_iova of the IOVA handed out at `pfn`, straight to the tree.
  // Fails (not_mapped) when no handed-out IOVA starts at pfn (production
  // mode: when the tree holds no allocated range there).
  Status free(std::uint64_t pfn);

  // find_iova: the range containing pfn: handed out, parked in a magazine
  // (both `allocated`) or reserved.
  std::optional<IovaNode> find(std::uint64_t pfn) const;

  // reserve_iova: see IovaTree::reserve. Fails (out_of_range) outside the
  // domain, (busy) over an allocated range, including one parked in a
  // magazine; nothing changes.
  Result<IovaRange> reserve(std::uint64_t pfn_lo, std::uint64_t pfn_hi);

  // --- The cached calls ---------------------------------------------------
  //
  // alloc_fast's fallback ladder, the kernel's alloc_iova_fast:
  //   1. round size up to a power of two if it is below 32 granules, so that
  //      anything that comes back through a magazine fits its whole class;
  //   2. cache: pop a pfn from this CPU's magazines of that class that ends
  //      at or below limit_pfn (see IovaRcache::get);
  //   3. tree: a size-aligned top-down search;
  //   4. if that fails and flush_rcache is set: return every CPU's magazines
  //      and the depots to the tree;
  //   5. retry the tree once;
  //   6. fail (pool_full).
  // The kernel's DMA layer first asks with a 32-bit limit and no flush, then
  // with the device's limit and a flush.
  // Also fails (invalid_argument) for cpu >= cpu_count() or a size of 0 or
  // above kMaxIovaSize. Returns the pfn; the range is
  // [pfn, pfn + fast_alloc_size(size) - 1].
  Result<std::uint64_t> alloc_fast(unsigned cpu, std::uint64_t size, std::uint64_t limit_pfn,
                                   bool flush_rcache);

  // free_iova_fast: gives back the IOVA at pfn. `size` is what the caller
  // asked alloc_fast for (or the rounded size). IOVAs of up to 32 granules
  // are parked in this CPU's magazines; larger ones, and ones from alloc()
  // whose size or alignment is not what alloc_fast would have given, go
  // straight to the tree.
  // Fails (invalid_argument) for cpu >= cpu_count(), (not_mapped) when no
  // handed-out IOVA starts at pfn, (mapping_mismatch) when it has another
  // size; nothing changes. Production mode makes only the first check and
  // the tree's own.
  Status free_fast(unsigned cpu, std::uint64_t pfn, std::uint64_t size);

  // Returns every magazine's pfns to the tree (what step 4 does).
  void flush_rcaches();
  // free_cpu_cached_iovas, as on CPU hot-unplug. Fails for cpu >= cpu_count().
  Status flush_cpu_rcache(unsigned cpu);

  // --- Inspection ---------------------------------------------------------

  const IovaTree& tree() const { return tree_; }
  const IovaRcache& rcache() const { return rcache_; }
  // IOVAs handed out and not given back (magazine-parked ones excluded);
  // 0 in production mode, which keeps no record.
  std::uint64_t live_count() const;

  // The tree's invariants, plus: every handed-out IOVA and every parked pfn
  // is the start of an allocated tree range of its size, no pfn is both or
  // twice, and every allocated range is one or the other (production mode:
  // only the parked pfns, which must be allocated ranges of their class).
  Status check_invariants() const;

 private:
  IovaDomain(std::uint64_t granule, std::uint64_t start_pfn, unsigned cpu_count, IovaChecks checks);

  Status check_cpu(unsigned cpu) const;
  // Removes pfn from the record of handed-out IOVAs and returns its size.
  Result<std::uint64_t> take_live(std::uint64_t pfn, std::uint64_t size);
  [[gnu::cold]] Result<std::uint64_t> alloc_fast_from_tree(std::uint64_t size,
                                                           std::uint64_t limit_pfn,
                                                           bool flush_rcache);
  Status check_parked_pfns() const;

  IovaTree tree_;
  IovaRcache rcache_;
  std::unique_ptr<IovaLiveSet> live_;  // null in production mode
};

}  // namespace swiotlb::iova
