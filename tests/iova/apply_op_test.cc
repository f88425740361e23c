// apply(op, IovaDomain): the IOVA ops do what the domain's own calls do, a
// trace line reads as its op, and the ops a domain does not take are
// refused with nothing changed.
#include "swiotlb/iova/apply_op.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

namespace swiotlb::ops {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<iova::IovaDomain> make_domain() {
  auto domain = iova::IovaDomain::create(4096, 1, 2);
  EXPECT_TRUE(domain) << domain.error().message();
  return domain ? std::move(*domain) : nullptr;
}

TEST(ApplyOnIovaDomain, ReserveAllocAndFreeAreTheDomainsOwn) {
  std::unique_ptr<iova::IovaDomain> domain = make_domain();
  ASSERT_TRUE(domain);
  ASSERT_TRUE(apply(IovaReserve{0xff000, 0xfffff}, *domain));
  // Top-down below the reserved range, size-aligned.
  Applied pfn = apply(IovaAlloc{1, 4, 0xfffff, false}, *domain);
  ASSERT_TRUE(pfn) << pfn.error().message();
  EXPECT_EQ(*pfn, 0xfeffcu);
  EXPECT_EQ(domain->live_count(), 1u);
  // A free of another size is refused, the IOVA kept.
  Applied wrong = apply(IovaFree{1, *pfn, 8}, *domain);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), Errc::mapping_mismatch);
  ASSERT_TRUE(apply(IovaFree{1, *pfn, 4}, *domain));
  EXPECT_EQ(domain->live_count(), 0u);
  Applied bad_cpu = apply(IovaAlloc{7, 4, 0xfffff, false}, *domain);
  ASSERT_FALSE(bad_cpu);
  EXPECT_EQ(bad_cpu.error().code(), Errc::invalid_argument);
  EXPECT_TRUE(domain->check_invariants());
}

TEST(ApplyOnIovaDomain, TraceLinesReadAsTheirOps) {
  iova::IovaTraceOp reserve;
  reserve.kind = iova::IovaOpKind::reserve;
  reserve.pfn = 10;
  reserve.pfn_hi = 20;
  EXPECT_EQ(std::get<IovaReserve>(op_from_iova(reserve)), (IovaReserve{10, 20}));
  iova::IovaTraceOp alloc;
  alloc.kind = iova::IovaOpKind::alloc;
  alloc.cpu = 3;
  alloc.size = 8;
  alloc.limit_pfn = 0xfffff;
  alloc.flush = true;
  EXPECT_EQ(std::get<IovaAlloc>(op_from_iova(alloc)), (IovaAlloc{3, 8, 0xfffff, true}));
  iova::IovaTraceOp free_op;
  free_op.kind = iova::IovaOpKind::free;
  free_op.cpu = 2;
  free_op.pfn = 0x1234;
  free_op.size = 8;
  EXPECT_EQ(std::get<IovaFree>(op_from_iova(free_op)), (IovaFree{2, 0x1234, 8}));
}

TEST(ApplyOnIovaDomain, TimeChangesNothingAndBounceOpsAreRefused) {
  std::unique_ptr<iova::IovaDomain> domain = make_domain();
  ASSERT_TRUE(domain);
  EXPECT_TRUE(apply(Tick{5}, *domain));
  for (const Op& op : {Op(Map{}), Op(Unmap{}), Op(Sync{}), Op(Grow{64, 1})}) {
    Applied refused = apply(op, *domain);
    ASSERT_FALSE(refused) << op_name(op);
    EXPECT_THAT(refused.error().message(), HasSubstr("an IovaDomain takes no"));
  }
  EXPECT_EQ(domain->live_count(), 0u);
}

}  // namespace
}  // namespace swiotlb::ops
