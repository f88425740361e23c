// IovaDomain's contract beyond the kernel: bad input is an error value with
// the numbers, and nothing is corrupted by it.
#include "swiotlb/iova/iova_domain.h"

#include <gtest/gtest.h>

namespace swiotlb::iova {
namespace {

std::unique_ptr<IovaDomain> make_domain(unsigned cpus = 2) {
  Result<std::unique_ptr<IovaDomain>> d = IovaDomain::create(4096, 1, cpus);
  EXPECT_TRUE(d) << d.error().message();
  return std::move(*d);
}

void expect_error(const Status& st, Errc code, std::string_view text) {
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), code) << st.error().message();
  EXPECT_NE(st.error().message().find(text), std::string::npos) << st.error().message();
}

template <class T>
void expect_error(const Result<T>& r, Errc code, std::string_view text) {
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), code) << r.error().message();
  EXPECT_NE(r.error().message().find(text), std::string::npos) << r.error().message();
}

TEST(IovaDomainTest, CreateRefusesBadGeometry) {
  expect_error(IovaDomain::create(3000, 1, 1), Errc::invalid_argument, "3000");
  expect_error(IovaDomain::create(8192, 1, 1), Errc::invalid_argument, "8192");
  expect_error(IovaDomain::create(4096, 0, 1), Errc::invalid_argument, "start_pfn 0x0");
  expect_error(IovaDomain::create(4096, 1, 0), Errc::invalid_argument, "CPU");
  Result<std::unique_ptr<IovaDomain>> small = IovaDomain::create(512, 8, 3);
  ASSERT_TRUE(small);
  EXPECT_EQ((*small)->shift(), 9u);
  EXPECT_EQ((*small)->dma_32bit_pfn(), 0x800000u);
  EXPECT_EQ((*small)->cpu_count(), 3u);
}

TEST(IovaDomainTest, FreeOfAnIovaNeverAllocated) {
  auto d = make_domain();
  const std::uint64_t p = *d->alloc_fast(0, 4, 0xfffff, true);
  expect_error(d->free_fast(0, 0x1234, 1), Errc::not_mapped, "0x1234");
  expect_error(d->free_fast(0, p + 1, 4), Errc::not_mapped, "no IOVA handed out starts there");
  expect_error(d->free(0x1234), Errc::not_mapped, "0x1234");
  EXPECT_EQ(d->live_count(), 1u);
  EXPECT_EQ(d->rcache().cached_pfn_count(), 0u);
  EXPECT_TRUE(d->check_invariants());
}

TEST(IovaDomainTest, FreeWithTheWrongSize) {
  auto d = make_domain();
  const std::uint64_t p = *d->alloc_fast(0, 3, 0xfffff, true);  // 4 granules
  expect_error(d->free_fast(0, p, 8), Errc::mapping_mismatch, "allocated with 4");
  expect_error(d->free_fast(0, p, 2), Errc::mapping_mismatch, "with 2 granule(s)");
  EXPECT_TRUE(d->free_fast(0, p, 3));  // the size asked for
  const std::uint64_t q = *d->alloc_fast(0, 3, 0xfffff, true);
  EXPECT_EQ(q, p);
  EXPECT_TRUE(d->free_fast(0, q, 4));  // or the size given
  EXPECT_TRUE(d->check_invariants());
}

TEST(IovaDomainTest, DoubleFreeIsRefused) {
  auto d = make_domain();
  const std::uint64_t p = *d->alloc_fast(1, 1, 0xfffff, true);
  ASSERT_TRUE(d->free_fast(1, p, 1));
  expect_error(d->free_fast(1, p, 1), Errc::not_mapped, "no IOVA handed out");
  expect_error(d->free_fast(0, p, 1), Errc::not_mapped, "no IOVA handed out");
  expect_error(d->free(p), Errc::not_mapped, "no IOVA handed out");
  EXPECT_EQ(d->rcache().cached_pfn_count(), 1u);  // parked once, not twice
  EXPECT_TRUE(d->check_invariants());
  EXPECT_EQ(*d->alloc_fast(1, 1, 0xfffff, true), p);
  EXPECT_EQ(*d->alloc_fast(1, 1, 0xfffff, true), p - 1);
}

TEST(IovaDomainTest, BadCpuOrSize) {
  auto d = make_domain(2);
  expect_error(d->alloc_fast(2, 1, 0xfffff, true), Errc::invalid_argument, "CPU 2");
  expect_error(d->alloc_fast(0, 0, 0xfffff, true), Errc::invalid_argument, "size 0");
  const std::uint64_t p = *d->alloc_fast(0, 1, 0xfffff, true);
  expect_error(d->free_fast(5, p, 1), Errc::invalid_argument, "CPU 5");
  expect_error(d->free_fast(0, p, 0), Errc::invalid_argument, "size 0");
  EXPECT_EQ(d->live_count(), 1u);
  EXPECT_TRUE(d->check_invariants());
}

TEST(IovaDomainTest, ReserveOverAnIovaInUseOrParkedIsRefused) {
  auto d = make_domain();
  const std::uint64_t live = *d->alloc_fast(0, 1, 0xfffff, true);
  const std::uint64_t parked = *d->alloc_fast(0, 1, 0xfffff, true);
  ASSERT_TRUE(d->free_fast(0, parked, 1));
  expect_error(d->reserve(live, live), Errc::busy, "overlaps the allocated range");
  expect_error(d->reserve(parked - 4, parked), Errc::busy, "overlaps the allocated range");
  expect_error(d->reserve(0x10, 0x10000000000000), Errc::out_of_range, "outside the domain");
  d->flush_rcaches();
  EXPECT_TRUE(d->reserve(parked - 4, parked));
  EXPECT_EQ(d->find(parked)->kind, IovaKind::reserved);
  EXPECT_TRUE(d->check_invariants());
}

TEST(IovaDomainTest, TreeCallsTrackOwnershipToo) {
  auto d = make_domain();
  Result<IovaRange> r = d->alloc(3, 0xfffff, false);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (IovaRange{0xffffd, 0xfffff}));
  EXPECT_EQ(d->live_count(), 1u);
  // Freed through the cache with its own size: 3 is not a class size, so it
  // goes back to the tree rather than into a magazine of 4s.
  ASSERT_TRUE(d->free_fast(0, r->pfn_lo, 3));
  EXPECT_EQ(d->rcache().cached_pfn_count(), 0u);
  EXPECT_FALSE(d->find(0xffffd));
  Result<IovaRange> s = d->alloc(2, 0xfffff, true);
  ASSERT_TRUE(s);
  ASSERT_TRUE(d->free(s->pfn_lo));
  EXPECT_EQ(d->live_count(), 0u);
  EXPECT_TRUE(d->check_invariants());
}

TEST(IovaDomainTest, ExhaustionLeavesTheDomainIntact) {
  Result<std::unique_ptr<IovaDomain>> made = IovaDomain::create(4096, 0x100, 1);
  ASSERT_TRUE(made);
  IovaDomain& d = **made;
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(d.alloc_fast(0, 16, 0x1ff, true));
  }
  Result<std::uint64_t> r = d.alloc_fast(0, 1, 0x1ff, true);
  expect_error(r, Errc::pool_full, "0x1ff");
  EXPECT_NE(r.error().message().find("16 IOVA(s) live"), std::string::npos);
  EXPECT_EQ(d.live_count(), 16u);
  EXPECT_TRUE(d.check_invariants());
}

TEST(IovaDomainTest, HugeLimitIsClamped) {
  Result<std::unique_ptr<IovaDomain>> made = IovaDomain::create(1, 1, 1);
  ASSERT_TRUE(made);
  Result<std::uint64_t> p = (*made)->alloc_fast(0, 1, kIovaAnchor, true);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(*p, kIovaAnchor - 1);
  EXPECT_TRUE((*made)->check_invariants());
}

}  // namespace
}  // namespace swiotlb::iova
