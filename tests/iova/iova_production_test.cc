// IovaDomain in production mode (IovaChecks::off): no record of handed-out
// IOVAs, the same pfns as checked mode for the same valid calls, and the
// tree's own refusals still in place.
#include <gtest/gtest.h>

#include <random>
#include <utility>
#include <vector>

#include "swiotlb/iova/iova_domain.h"

namespace swiotlb::iova {
namespace {

constexpr std::uint64_t kLimit = 0xfffff;

std::unique_ptr<IovaDomain> make_domain(IovaChecks checks, unsigned cpus = 2) {
  Result<std::unique_ptr<IovaDomain>> d = IovaDomain::create(4096, 1, cpus, checks);
  EXPECT_TRUE(d) << d.error().message();
  return std::move(*d);
}

TEST(IovaProductionTest, ModeIsWhatWasAsked) {
  EXPECT_EQ(make_domain(IovaChecks::on)->checks(), IovaChecks::on);
  EXPECT_EQ(make_domain(IovaChecks::off)->checks(), IovaChecks::off);
  Result<std::unique_ptr<IovaDomain>> by_default = IovaDomain::create(4096, 1, 1);
  ASSERT_TRUE(by_default);
  EXPECT_EQ((*by_default)->checks(), IovaChecks::on) << "checked unless asked otherwise";
}

// A seeded mix of cached and tree calls on several CPUs, all valid, gives
// the same pfns in both modes: production mode drops only the record.
TEST(IovaProductionTest, SamePfnsAsCheckedMode) {
  auto checked = make_domain(IovaChecks::on, 3);
  auto production = make_domain(IovaChecks::off, 3);
  std::mt19937_64 random(0x10FA);
  struct Live {
    std::uint64_t pfn;
    std::uint64_t size;
    bool fast;
  };
  std::vector<Live> live;
  for (int step = 0; step < 20000; ++step) {
    const unsigned cpu = static_cast<unsigned>(random() % 3);
    if (live.empty() || random() % 100 < 55) {
      const std::uint64_t size = 1 + random() % 40;
      const bool fast = random() % 4 != 0;
      std::uint64_t a = 0;
      std::uint64_t b = 0;
      if (fast) {
        Result<std::uint64_t> x = checked->alloc_fast(cpu, size, kLimit, true);
        Result<std::uint64_t> y = production->alloc_fast(cpu, size, kLimit, true);
        ASSERT_EQ(x.has_value(), y.has_value()) << "step " << step;
        if (!x) {
          continue;
        }
        a = *x;
        b = *y;
      } else {
        Result<IovaRange> x = checked->alloc(size, kLimit, true);
        Result<IovaRange> y = production->alloc(size, kLimit, true);
        ASSERT_EQ(x.has_value(), y.has_value()) << "step " << step;
        if (!x) {
          continue;
        }
        a = x->pfn_lo;
        b = y->pfn_lo;
      }
      ASSERT_EQ(a, b) << "step " << step;
      live.push_back({a, size, fast});
    } else {
      const std::size_t at = random() % live.size();
      const Live l = live[at];
      live[at] = live.back();
      live.pop_back();
      // A range from alloc() goes back with free(): production mode would
      // take free_fast's word for its size.
      if (l.fast) {
        ASSERT_TRUE(checked->free_fast(cpu, l.pfn, l.size));
        ASSERT_TRUE(production->free_fast(cpu, l.pfn, l.size));
      } else {
        ASSERT_TRUE(checked->free(l.pfn));
        ASSERT_TRUE(production->free(l.pfn));
      }
    }
  }
  EXPECT_EQ(checked->rcache().cached_pfn_count(), production->rcache().cached_pfn_count());
  EXPECT_EQ(production->live_count(), 0u) << "production mode keeps no record";
  EXPECT_TRUE(checked->check_invariants());
  EXPECT_TRUE(production->check_invariants());
}

// Without the record a free the tree cannot place is still refused; what a
// magazine takes on trust is the caller's word, as in the kernel.
TEST(IovaProductionTest, TreeStillRefusesWhatItDoesNotHold) {
  auto d = make_domain(IovaChecks::off);
  Status freed = d->free(0x1234);
  EXPECT_FALSE(freed);
  const std::uint64_t big = *d->alloc_fast(0, 64, kLimit, true);  // too big for a magazine
  EXPECT_TRUE(d->free_fast(0, big, 64));
  EXPECT_FALSE(d->free_fast(0, big, 64)) << "a second free reaches the tree, which refuses it";
  EXPECT_FALSE(d->free_fast(5, big, 64)) << "an unknown CPU is refused in every mode";
  EXPECT_TRUE(d->check_invariants());
}

// The magazine path hands back the pfn freed last on the same CPU.
TEST(IovaProductionTest, MagazineHandsBackTheLastFreed) {
  auto d = make_domain(IovaChecks::off);
  const std::uint64_t p = *d->alloc_fast(1, 8, kLimit, true);
  const std::uint64_t q = *d->alloc_fast(1, 8, kLimit, true);
  ASSERT_TRUE(d->free_fast(1, p, 8));
  ASSERT_TRUE(d->free_fast(1, q, 8));
  EXPECT_EQ(*d->alloc_fast(1, 8, kLimit, true), q);
  EXPECT_EQ(*d->alloc_fast(1, 8, kLimit, true), p);
  EXPECT_TRUE(d->check_invariants());
}

}  // namespace
}  // namespace swiotlb::iova
