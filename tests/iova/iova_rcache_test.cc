// The magazines behind alloc_fast/free_fast, against sequences worked out by
// hand from Linux 6.1's iova_magazine_pop, __iova_rcache_get,
// __iova_rcache_insert and the alloc_iova_fast fallback ladder.
#include "swiotlb/iova/iova_rcache.h"

#include <gtest/gtest.h>

#include <vector>

#include "swiotlb/iova/iova_domain.h"

namespace swiotlb::iova {
namespace {

constexpr std::uint64_t kLimit32 = 0xfffff;

std::unique_ptr<IovaDomain> make_domain(unsigned cpus, std::uint64_t start_pfn = 1) {
  Result<std::unique_ptr<IovaDomain>> d = IovaDomain::create(4096, start_pfn, cpus);
  EXPECT_TRUE(d) << d.error().message();
  return std::move(*d);
}

std::uint64_t alloc(IovaDomain& d, unsigned cpu, std::uint64_t size, std::uint64_t limit = kLimit32,
                    bool flush = true) {
  Result<std::uint64_t> pfn = d.alloc_fast(cpu, size, limit, flush);
  EXPECT_TRUE(pfn) << pfn.error().message();
  return pfn ? *pfn : 0;
}

void release(IovaDomain& d, unsigned cpu, std::uint64_t pfn, std::uint64_t size) {
  Status st = d.free_fast(cpu, pfn, size);
  EXPECT_TRUE(st) << st.error().message();
}

TEST(IovaRcacheTest, SizeClasses) {
  EXPECT_EQ(order_base_2(1), 0u);
  EXPECT_EQ(order_base_2(2), 1u);
  EXPECT_EQ(order_base_2(3), 2u);
  EXPECT_EQ(order_base_2(32), 5u);
  EXPECT_EQ(order_base_2(33), 6u);
  EXPECT_EQ(fast_alloc_size(1), 1u);
  EXPECT_EQ(fast_alloc_size(3), 4u);
  EXPECT_EQ(fast_alloc_size(17), 32u);
  EXPECT_EQ(fast_alloc_size(31), 32u);
  EXPECT_EQ(fast_alloc_size(32), 32u);
  EXPECT_EQ(fast_alloc_size(33), 33u);  // beyond the classes: not rounded
  EXPECT_EQ(kIovaMagazineSize, 127u);
  EXPECT_EQ(kMaxGlobalMagazines, 32u);
}

// A freed IOVA comes straight back on the same CPU: last in, first out.
TEST(IovaRcacheTest, FreedPfnComesBackOnTheSameCpu) {
  auto d = make_domain(1);
  EXPECT_EQ(alloc(*d, 0, 1), 0xfffffu);
  EXPECT_EQ(alloc(*d, 0, 1), 0xffffeu);
  EXPECT_EQ(alloc(*d, 0, 1), 0xffffdu);
  release(*d, 0, 0xffffd, 1);
  EXPECT_EQ(d->rcache().cpu_magazines(0, 0).loaded, std::vector<std::uint64_t>{0xffffd});
  EXPECT_EQ(alloc(*d, 0, 1), 0xffffdu);
  EXPECT_EQ(alloc(*d, 0, 4), 0xffff8u);
  EXPECT_EQ(alloc(*d, 0, 16), 0xfffe0u);
  EXPECT_TRUE(d->check_invariants());
}

// The pop scans from the top for the first pfn whose range ends at or below
// the limit, and moves the magazine's last pfn into the hole.
TEST(IovaRcacheTest, PopTakesTheHighestIndexBelowTheLimit) {
  auto d = make_domain(1);
  const std::uint64_t a = alloc(*d, 0, 1);  // 0xfffff
  const std::uint64_t b = alloc(*d, 0, 1);  // 0xffffe
  const std::uint64_t c = alloc(*d, 0, 1);  // 0xffffd
  const std::uint64_t e = alloc(*d, 0, 1);  // 0xffffc
  for (std::uint64_t pfn : {e, c, b, a}) {
    release(*d, 0, pfn, 1);
  }
  ASSERT_EQ(d->rcache().cpu_magazines(0, 0).loaded, (std::vector<std::uint64_t>{e, c, b, a}));
  EXPECT_EQ(alloc(*d, 0, 1, 0xffffd), c);  // a and b are above the limit
  EXPECT_EQ(d->rcache().cpu_magazines(0, 0).loaded, (std::vector<std::uint64_t>{e, a, b}));
  EXPECT_EQ(alloc(*d, 0, 1), b);
  EXPECT_EQ(alloc(*d, 0, 1), a);
  EXPECT_EQ(alloc(*d, 0, 1), e);
  EXPECT_TRUE(d->check_invariants());
}

// The limit the pop uses is limit + 1 - size: the whole range must fit.
TEST(IovaRcacheTest, PopLimitCountsTheWholeRange) {
  auto d = make_domain(1);
  const std::uint64_t p = alloc(*d, 0, 4);  // [0xffffc, 0xfffff]
  release(*d, 0, p, 4);
  // A limit of 0xffffe would cut the range: the cache misses, the tree
  // finds room below.
  EXPECT_EQ(alloc(*d, 0, 4, 0xffffe), 0xffff8u);
  EXPECT_EQ(d->rcache().cpu_magazines(0, 2).loaded, std::vector<std::uint64_t>{p});
  EXPECT_EQ(alloc(*d, 0, 3, 0xfffff), p);  // 3 rounds to 4: the same class
}

// A loaded magazine with nothing low enough is a miss, even when prev holds
// pfns that would fit.
TEST(IovaRcacheTest, LoadedMissDoesNotLookAtPrev) {
  auto d = make_domain(1);
  std::vector<std::uint64_t> pfns;
  for (int i = 0; i < 128; ++i) {
    pfns.push_back(alloc(*d, 0, 1));  // 0xfffff down to 0xfff80
  }
  for (auto it = pfns.rbegin(); it != pfns.rend(); ++it) {
    release(*d, 0, *it, 1);  // lowest first; 0xfffff is the 128th
  }
  CpuMagazines mags = d->rcache().cpu_magazines(0, 0);
  EXPECT_EQ(mags.loaded, std::vector<std::uint64_t>{0xfffff});
  EXPECT_EQ(mags.prev.size(), 127u);
  EXPECT_EQ(alloc(*d, 0, 1, 0xffffe), 0xfff7fu);  // from the tree, below 0xfff80
  mags = d->rcache().cpu_magazines(0, 0);
  EXPECT_EQ(mags.loaded, std::vector<std::uint64_t>{0xfffff});
  EXPECT_EQ(mags.prev.size(), 127u);
  // Without the limit: loaded gives 0xfffff, then prev is swapped in.
  EXPECT_EQ(alloc(*d, 0, 1), 0xfffffu);
  EXPECT_EQ(alloc(*d, 0, 1), 0xffffeu);
  EXPECT_TRUE(d->check_invariants());
}

// Frees fill loaded, then swap it into prev, then push full magazines to the
// depot (32 per class), then return whole magazines to the tree.
TEST(IovaRcacheTest, DepotFillsThenSpillsToTheTree) {
  auto d = make_domain(1);
  constexpr std::uint64_t kCount = 2 * 127 + 32 * 127 + 5;           // 4323
  const auto pfn_of = [](std::uint64_t k) { return 0x100000 - k; };  // the k-th, from 1
  for (std::uint64_t k = 1; k <= kCount; ++k) {
    ASSERT_EQ(alloc(*d, 0, 1), pfn_of(k));
  }
  for (std::uint64_t k = 1; k <= kCount; ++k) {
    release(*d, 0, pfn_of(k), 1);
  }
  const CpuMagazines mags = d->rcache().cpu_magazines(0, 0);
  ASSERT_EQ(mags.prev.size(), 127u);
  EXPECT_EQ(mags.prev.front(), pfn_of(1));  // the first magazine stays prev
  ASSERT_EQ(mags.loaded.size(), 5u);
  EXPECT_EQ(mags.loaded.front(), pfn_of(4319));
  const auto depot = d->rcache().depot(0);
  ASSERT_EQ(depot.size(), 32u);
  EXPECT_EQ(depot.front().front(), pfn_of(128));
  EXPECT_EQ(depot.back().back(), pfn_of(4191));
  // Frees 4192..4318 overflowed a full depot and went back to the tree.
  EXPECT_FALSE(d->find(pfn_of(4192)));
  EXPECT_FALSE(d->find(pfn_of(4318)));
  EXPECT_TRUE(d->find(pfn_of(4319)));
  EXPECT_EQ(d->rcache().cached_pfn_count(), 32u * 127 + 127 + 5);
  EXPECT_EQ(d->live_count(), 0u);
  EXPECT_TRUE(d->check_invariants());

  // Allocating drains loaded, then swaps in prev, then takes the depot's
  // newest magazine (dropping the empty one).
  for (std::uint64_t k = 4323; k >= 4319; --k) {
    EXPECT_EQ(alloc(*d, 0, 1), pfn_of(k));
  }
  EXPECT_EQ(alloc(*d, 0, 1), pfn_of(127));
  for (int i = 0; i < 126; ++i) {
    alloc(*d, 0, 1);
  }
  EXPECT_EQ(alloc(*d, 0, 1), pfn_of(4191));
  EXPECT_EQ(d->rcache().depot(0).size(), 31u);
  EXPECT_TRUE(d->check_invariants());
}

TEST(IovaRcacheTest, MagazinesArePerCpu) {
  auto d = make_domain(2);
  const std::uint64_t p = alloc(*d, 1, 1);
  release(*d, 1, p, 1);
  EXPECT_EQ(alloc(*d, 0, 1), p - 1);  // CPU 0 cannot see CPU 1's magazine
  EXPECT_EQ(alloc(*d, 1, 1), p);
  ASSERT_TRUE(d->flush_cpu_rcache(1));
  EXPECT_FALSE(d->flush_cpu_rcache(2));
}

// The ladder: cache, tree, flush every CPU's magazines and the depot, tree
// once more, fail.
TEST(IovaRcacheTest, FlushLadder) {
  auto d = make_domain(2, 0x10);
  for (std::uint64_t want = 0x1f; want >= 0x10; --want) {
    ASSERT_EQ(alloc(*d, 1, 1, 0x1f), want);
  }
  for (std::uint64_t pfn = 0x1f; pfn >= 0x10; --pfn) {
    release(*d, 1, pfn, 1);
  }
  Result<std::uint64_t> no_flush = d->alloc_fast(0, 1, 0x1f, false);
  ASSERT_FALSE(no_flush);
  EXPECT_EQ(no_flush.error().code(), Errc::pool_full);
  EXPECT_EQ(d->tree().search_state().max32_alloc_size, 1u);
  EXPECT_EQ(d->rcache().cached_pfn_count(), 16u);
  // With the flush, CPU 1's pfns go back to the tree in magazine order and
  // the retry starts from the top again.
  EXPECT_EQ(alloc(*d, 0, 1, 0x1f, true), 0x1fu);
  EXPECT_EQ(d->rcache().cached_pfn_count(), 0u);
  EXPECT_EQ(d->tree().nodes().size(), 1u);
  // Exhausted for real: the flush cannot help.
  for (int i = 0; i < 15; ++i) {
    alloc(*d, 0, 1, 0x1f);
  }
  Result<std::uint64_t> full = d->alloc_fast(0, 1, 0x1f, true);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code(), Errc::pool_full);
  EXPECT_NE(full.error().message().find("after flushing"), std::string::npos);
  EXPECT_TRUE(d->check_invariants());
}

TEST(IovaRcacheTest, LargeSizesBypassTheCache) {
  auto d = make_domain(1);
  const std::uint64_t p = alloc(*d, 0, 33);
  EXPECT_EQ(p % 64, 0u);  // aligned to 64, 33 long
  EXPECT_EQ(d->find(p)->range.size(), 33u);
  release(*d, 0, p, 33);
  EXPECT_EQ(d->rcache().cached_pfn_count(), 0u);
  EXPECT_FALSE(d->find(p));
  const std::uint64_t q = alloc(*d, 0, 32);
  release(*d, 0, q, 32);
  EXPECT_EQ(d->rcache().cpu_magazines(0, 5).loaded, std::vector<std::uint64_t>{q});
  EXPECT_EQ(alloc(*d, 0, 17), q);  // 17 rounds to 32
}

}  // namespace
}  // namespace swiotlb::iova
