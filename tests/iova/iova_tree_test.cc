// The IOVA tree, against pfn sequences worked out by hand from Linux 6.1's
// __alloc_and_insert_iova_range, __cached_rbnode_*_update and reserve_iova.
#include "swiotlb/iova/iova_tree.h"

#include <gtest/gtest.h>

#include <vector>

namespace swiotlb::iova {
namespace {

constexpr std::uint64_t kLimit32 = 0xfffff;  // DMA_BIT_MASK(32) >> 12

std::uint64_t alloc_pfn(IovaTree& tree, std::uint64_t size, std::uint64_t limit,
                        bool aligned = true) {
  Result<IovaRange> r = tree.alloc(size, limit, aligned);
  EXPECT_TRUE(r) << r.error().message();
  EXPECT_TRUE(tree.check_invariants());
  return r ? r->pfn_lo : 0;
}

void free_pfn(IovaTree& tree, std::uint64_t pfn) {
  Status st = tree.free(pfn);
  EXPECT_TRUE(st) << st.error().message();
  EXPECT_TRUE(tree.check_invariants());
}

TEST(IovaTreeTest, GeometryChecks) {
  EXPECT_TRUE(IovaTree::check_geometry(4096, 1));
  EXPECT_TRUE(IovaTree::check_geometry(1, 1));
  EXPECT_TRUE(IovaTree::check_geometry(512, 0xffff));
  for (std::uint64_t granule : {0ull, 3ull, 3000ull, 8192ull}) {
    Status st = IovaTree::check_geometry(granule, 1);
    ASSERT_FALSE(st) << granule;
    EXPECT_EQ(st.error().code(), Errc::invalid_argument);
    EXPECT_NE(st.error().message().find(std::to_string(granule)), std::string::npos);
  }
  EXPECT_FALSE(IovaTree::check_geometry(4096, 0));
  EXPECT_FALSE(IovaTree::check_geometry(4096, std::uint64_t{1} << 52));
}

TEST(IovaTreeTest, DerivedGeometry) {
  IovaTree tree(4096, 1);
  EXPECT_EQ(tree.shift(), 12u);
  EXPECT_EQ(tree.dma_32bit_pfn(), 0x100000u);
  EXPECT_EQ(tree.max_pfn(), 0xfffffffffffffu);
  const IovaSearchState s = tree.search_state();
  EXPECT_EQ(s.cached_node, (IovaRange{kIovaAnchor, kIovaAnchor}));
  EXPECT_EQ(s.cached32_node, s.cached_node);
  EXPECT_EQ(s.max32_alloc_size, 0x100000u);
  EXPECT_EQ(s.node_count, 0u);
}

// The opening of the kernel trace: top-down below 4 GiB, each size aligned.
TEST(IovaTreeTest, TopDownSizeAligned) {
  IovaTree tree(4096, 1);
  EXPECT_EQ(alloc_pfn(tree, 1, kLimit32), 0xfffffu);
  EXPECT_EQ(alloc_pfn(tree, 1, kLimit32), 0xffffeu);
  EXPECT_EQ(alloc_pfn(tree, 4, kLimit32), 0xffff8u);   // (0xffffe - 4) & ~3
  EXPECT_EQ(alloc_pfn(tree, 16, kLimit32), 0xfffe0u);  // (0xffff8 - 16) & ~15
  EXPECT_EQ(alloc_pfn(tree, 1, kLimit32), 0xfffdfu);
  // Size 3 aligns to 4; unaligned it packs right below.
  EXPECT_EQ(alloc_pfn(tree, 3, kLimit32), 0xfffdcu);  // (0xfffdf - 3) & ~3
  EXPECT_EQ(alloc_pfn(tree, 3, kLimit32, false), 0xfffd9u);
  EXPECT_EQ(alloc_pfn(tree, 8, kLimit32), 0xfffd0u);
  // The gaps alignment left above (0xfffd8) stay unused: the walk goes down.
  EXPECT_EQ(alloc_pfn(tree, 1, kLimit32), 0xfffcfu);
  const IovaSearchState s = tree.search_state();
  EXPECT_EQ(s.cached32_node, (IovaRange{0xfffcf, 0xfffcf}));
  EXPECT_EQ(s.cached_node.pfn_lo, kIovaAnchor);  // no 64-bit allocation yet
}

TEST(IovaTreeTest, AboveFourGigabytesUsesTheOtherCachedNode) {
  IovaTree tree(4096, 1);
  const std::uint64_t limit40 = (std::uint64_t{1} << 28) - 1;  // 40-bit mask
  EXPECT_EQ(alloc_pfn(tree, 8, limit40), limit40 - 7);
  EXPECT_EQ(alloc_pfn(tree, 1, kLimit32), 0xfffffu);
  const IovaSearchState s = tree.search_state();
  EXPECT_EQ(s.cached_node, (IovaRange{limit40 - 7, limit40}));
  EXPECT_EQ(s.cached32_node, (IovaRange{0xfffff, 0xfffff}));
  EXPECT_EQ(alloc_pfn(tree, 8, limit40), limit40 - 15);
}

// A free at or above the cached node moves the cache up to the freed node's
// successor, so the hole is found first; a free below it does not.
TEST(IovaTreeTest, CachedNodeAfterFrees) {
  IovaTree tree(4096, 1);
  for (std::uint64_t want = 100; want >= 97; --want) {
    EXPECT_EQ(alloc_pfn(tree, 1, 100), want);
  }
  free_pfn(tree, 99);
  EXPECT_EQ(tree.search_state().cached32_node, (IovaRange{100, 100}));
  EXPECT_EQ(alloc_pfn(tree, 1, 100), 99u);
  EXPECT_EQ(tree.search_state().cached32_node, (IovaRange{99, 99}));
  free_pfn(tree, 97);  // below the cached node: the cache stays at 99
  EXPECT_EQ(tree.search_state().cached32_node, (IovaRange{99, 99}));
  EXPECT_EQ(alloc_pfn(tree, 1, 100), 97u);  // found walking down from 99
}

// A smaller limit drags the cached node down; a later search with a larger
// limit starts from there and keeps going down, past the free space above.
TEST(IovaTreeTest, CachedNodeSkipsSpaceAboveIt) {
  IovaTree tree(4096, 45);
  EXPECT_EQ(alloc_pfn(tree, 1, 100), 100u);
  EXPECT_EQ(alloc_pfn(tree, 1, 50), 50u);
  EXPECT_EQ(alloc_pfn(tree, 1, 100), 49u);  // not 99
  for (std::uint64_t want = 48; want >= 45; --want) {
    EXPECT_EQ(alloc_pfn(tree, 1, 100), want);
  }
  // Nothing left below the cached node (45 = start_pfn): the retry pass
  // searches from the limit down to just above the cached node.
  EXPECT_EQ(alloc_pfn(tree, 1, 100), 99u);
  EXPECT_EQ(alloc_pfn(tree, 1, 100), 98u);
}

// The retry pass only runs when the first pass started from a node below
// the limit; started from the anchor, a failure is final.
TEST(IovaTreeTest, RetryPassFromTheLimit) {
  IovaTree tree(4096, 1);
  EXPECT_EQ(alloc_pfn(tree, 1, 3), 3u);
  EXPECT_EQ(alloc_pfn(tree, 1, 3), 2u);
  EXPECT_EQ(alloc_pfn(tree, 1, 3), 1u);
  // First pass from node 1 finds nothing; the retry from pfn 10 down does.
  EXPECT_EQ(alloc_pfn(tree, 1, 10), 10u);
  EXPECT_EQ(alloc_pfn(tree, 4, 10), 4u);  // below node 10, aligned: [4, 7]
}

// max32_alloc_size: after a 32-bit search fails for some size, any 32-bit
// search of that size or more fails at once, whatever its limit, until a
// free below 4 GiB.
TEST(IovaTreeTest, ThirtyTwoBitFastFail) {
  IovaTree tree(4096, 1);
  for (int i = 0; i < 3; ++i) {
    alloc_pfn(tree, 1, 3);
  }
  Result<IovaRange> full = tree.alloc(1, 3, true);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code(), Errc::pool_full);
  EXPECT_EQ(tree.search_state().max32_alloc_size, 1u);
  // Pfns 4..10 are free, but the hint knows only sizes, not limits.
  EXPECT_FALSE(tree.alloc(1, 10, true));
  // Above 4 GiB the hint does not apply.
  EXPECT_EQ(alloc_pfn(tree, 1, 0xfffffffff), 0xfffffffffu);
  // A free below 4 GiB clears the hint and moves the 32-bit cache to the
  // freed node's successor, so the next search refills the hole rather
  // than taking pfn 10.
  free_pfn(tree, 2);
  EXPECT_EQ(tree.search_state().max32_alloc_size, 0x100000u);
  EXPECT_EQ(tree.search_state().cached32_node, (IovaRange{3, 3}));
  EXPECT_EQ(alloc_pfn(tree, 1, 10), 2u);
}

TEST(IovaTreeTest, ExhaustionIsAnErrorWithTheNumbers) {
  IovaTree tree(4096, 8);
  EXPECT_EQ(alloc_pfn(tree, 8, 15), 8u);
  Result<IovaRange> r = tree.alloc(1, 15, true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::pool_full);
  EXPECT_NE(r.error().message().find("0xf"), std::string::npos) << r.error().message();
  EXPECT_FALSE(tree.alloc(0, 15, true));
  EXPECT_EQ(tree.alloc(0, 15, true).error().code(), Errc::invalid_argument);
  EXPECT_TRUE(tree.check_invariants());
}

TEST(IovaTreeTest, NeverHandsOutPfnZeroOrBelowStart) {
  IovaTree tree(4096, 1);
  EXPECT_FALSE(tree.alloc(2, 1, false));  // would need pfn 0
  EXPECT_EQ(alloc_pfn(tree, 1, 1), 1u);
  EXPECT_FALSE(tree.alloc(1, 1, true));  // the retry pass finds nothing either
  IovaTree high(4096, 0x100);
  EXPECT_EQ(alloc_pfn(high, 0x100, 0x1ff), 0x100u);
  EXPECT_FALSE(high.alloc(1, 0xff, true));
  EXPECT_FALSE(high.alloc(1, 0x1ff, true));
}

TEST(IovaTreeTest, FindAndFreeErrors) {
  IovaTree tree(4096, 1);
  const std::uint64_t a = alloc_pfn(tree, 4, kLimit32);
  ASSERT_TRUE(tree.reserve(0x10, 0x1f));
  EXPECT_EQ(tree.find(a + 2), (IovaNode{{a, a + 3}, IovaKind::allocated}));
  EXPECT_EQ(tree.find(0x15), (IovaNode{{0x10, 0x1f}, IovaKind::reserved}));
  EXPECT_FALSE(tree.find(0x20));
  EXPECT_FALSE(tree.find(kIovaAnchor));

  Status inside = tree.free(a + 1);
  ASSERT_FALSE(inside);
  EXPECT_EQ(inside.error().code(), Errc::not_mapped);
  EXPECT_NE(inside.error().message().find("allocated range [0xffffc, 0xfffff]"), std::string::npos)
      << inside.error().message();
  Status reserved = tree.free(0x10);
  ASSERT_FALSE(reserved);
  EXPECT_NE(reserved.error().message().find("reserved"), std::string::npos);
  EXPECT_FALSE(tree.free(0x30));
  EXPECT_EQ(tree.nodes().size(), 2u);
  free_pfn(tree, a);
  EXPECT_FALSE(tree.free(a));
}

// reserve_iova's merging: the lowest overlapped range is stretched down to
// the new start, the request moves up past each overlapped range, and only
// what is left above them becomes a node. Ranges are never coalesced.
TEST(IovaTreeTest, ReserveMergesAsTheKernelDoes) {
  IovaTree tree(4096, 1);
  EXPECT_EQ(*tree.reserve(10, 20), (IovaRange{10, 20}));
  EXPECT_EQ(*tree.reserve(5, 12), (IovaRange{5, 20}));   // stretched down
  EXPECT_EQ(*tree.reserve(12, 18), (IovaRange{5, 20}));  // inside: nothing new
  EXPECT_EQ(*tree.reserve(30, 40), (IovaRange{30, 40}));
  EXPECT_EQ(*tree.reserve(15, 35), (IovaRange{21, 40}));  // second node stretched to 21
  EXPECT_EQ(*tree.reserve(0, 50), (IovaRange{41, 50}));   // only the top is new
  EXPECT_EQ(*tree.reserve(21, 22), (IovaRange{21, 40}));
  const std::vector<IovaNode> want = {{{0, 20}, IovaKind::reserved},
                                      {{21, 40}, IovaKind::reserved},
                                      {{41, 50}, IovaKind::reserved}};
  EXPECT_EQ(tree.nodes(), want);
  EXPECT_TRUE(tree.check_invariants());
  // Adjacent, not overlapping: a node of its own.
  EXPECT_EQ(*tree.reserve(51, 60), (IovaRange{51, 60}));
  EXPECT_EQ(tree.nodes().size(), 4u);
}

TEST(IovaTreeTest, ReserveDoesNotMoveTheCachedNodes) {
  IovaTree tree(4096, 1);
  alloc_pfn(tree, 1, 100);
  ASSERT_TRUE(tree.reserve(90, 95));
  EXPECT_EQ(tree.search_state().cached32_node, (IovaRange{100, 100}));
  EXPECT_EQ(alloc_pfn(tree, 4, 100), 96u);  // fits between the reserve and 100
  // 8 aligned granules fit neither there nor at 88 (which would cross the
  // reserve): the walk steps below the reserve.
  EXPECT_EQ(alloc_pfn(tree, 8, 100), 80u);
}

TEST(IovaTreeTest, ReserveErrorsChangeNothing) {
  IovaTree tree(4096, 1);
  const std::uint64_t a = alloc_pfn(tree, 4, 0x100);
  Result<IovaRange> over = tree.reserve(0xf0, 0x100);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code(), Errc::busy);
  EXPECT_NE(over.error().message().find("[0xfc, 0xff]"), std::string::npos)
      << over.error().message();
  Result<IovaRange> inverted = tree.reserve(0x20, 0x10);
  ASSERT_FALSE(inverted);
  EXPECT_EQ(inverted.error().code(), Errc::out_of_range);
  Result<IovaRange> beyond = tree.reserve(0x10, std::uint64_t{1} << 52);
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.error().code(), Errc::out_of_range);
  EXPECT_NE(beyond.error().message().find("0xfffffffffffff"), std::string::npos);
  EXPECT_EQ(tree.nodes(), (std::vector<IovaNode>{{{a, a + 3}, IovaKind::allocated}}));
  // The very top of a 4 KiB domain is fine (the kernel's hole above the
  // last inbound window goes there).
  EXPECT_TRUE(tree.reserve(0x100000000, 0xfffffffffffff));
}

TEST(IovaTreeTest, AllocationsAvoidReservedRanges) {
  IovaTree tree(4096, 1);
  ASSERT_TRUE(tree.reserve(0xfee00, 0xfeeff));
  ASSERT_TRUE(tree.reserve(0xfff00, 0xfffff));
  EXPECT_EQ(alloc_pfn(tree, 32, kLimit32), 0xffee0u);
  EXPECT_EQ(alloc_pfn(tree, 256, kLimit32), 0xffd00u);  // 0xffe00 would touch [0xffee0,..]
  EXPECT_EQ(alloc_pfn(tree, 0x200, kLimit32), 0xffa00u);
  // 0xfe000 would cross the MSI window: the walk steps below it.
  EXPECT_EQ(alloc_pfn(tree, 0x1000, kLimit32), 0xfd000u);
}

}  // namespace
}  // namespace swiotlb::iova
