// ExchangedTranslator: runs of exchanged pool pages over a fixed base
// translation, added and removed while it is read; and the hypervisor
// model taking frames back.
#include "swiotlb/dma/exchanged_translator.h"

#include <gtest/gtest.h>

#include "swiotlb/core/constants.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kPool = 0x7f0000000000;  // a pool's first page
constexpr std::uint64_t kPoolBytes = 4 * kPageSize;
constexpr std::uint64_t kRunMfn = 0x100;

PhysAddr page(std::uint64_t base, std::uint64_t n) {
  return PhysAddr(base + n * kPageSize);
}

TEST(ExchangedTranslator, APoolMovesIntoItsRunAndBackOut) {
  ExchangedTranslator t(nullptr, 4);
  EXPECT_EQ(t.to_machine(page(kPool, 1) + 5), kPool + kPageSize + 5) << "identity before";
  EXPECT_FALSE(t.contiguous(PhysAddr(kPool), kPoolBytes) &&
               t.to_machine(PhysAddr(kPool)) + kPoolBytes <= 0xffffffff);

  ASSERT_TRUE(t.add_run(PhysAddr(kPool), kPoolBytes, kRunMfn));
  EXPECT_TRUE(t.contiguous(PhysAddr(kPool), kPoolBytes));
  EXPECT_EQ(t.to_machine(PhysAddr(kPool)), kRunMfn << kPageShift);
  EXPECT_EQ(t.to_machine(page(kPool, 3) + 7), ((kRunMfn + 3) << kPageShift) + 7);
  EXPECT_EQ(t.to_pseudo(((kRunMfn + 2) << kPageShift) + 9).value(), page(kPool, 2).value() + 9);
  // The frames the pool gave up belong to nobody now.
  EXPECT_EQ(t.to_pseudo(kPool + kPageSize).value(), kInvalidAddress);
  // The page whose own frame the run took has no frame left.
  EXPECT_EQ(t.to_machine(PhysAddr((kRunMfn + 1) << kPageShift)), kInvalidAddress);
  EXPECT_FALSE(t.contiguous(PhysAddr(kPool - kPageSize), 2 * kPageSize)) << "straddles the run";
  ASSERT_EQ(t.runs().size(), 1u);

  auto run = t.remove_run(PhysAddr(kPool));
  ASSERT_TRUE(run) << run.error().message();
  EXPECT_EQ(run->first_mfn, kRunMfn);
  EXPECT_EQ(run->bytes, kPoolBytes);
  EXPECT_EQ(t.to_machine(PhysAddr(kPool)), kPool);
  EXPECT_EQ(t.to_machine(PhysAddr(kRunMfn << kPageShift)), kRunMfn << kPageShift);
  EXPECT_TRUE(t.runs().empty());
  EXPECT_EQ(t.remove_run(PhysAddr(kPool)).error().code(), Errc::not_mapped);
}

TEST(ExchangedTranslator, RefusesRunsThatOverlapOrTakeAFrameInUse) {
  FrameTranslator::Builder builder;
  constexpr std::uint64_t kForeignPfn = 0x5000;
  ASSERT_TRUE(builder.map(kForeignPfn, kRunMfn + 8));  // a foreign page at machine frame 0x108
  ExchangedTranslator t(builder.build(), 2);

  EXPECT_EQ(t.add_run(PhysAddr(kPool + 1), kPoolBytes, kRunMfn).error().code(),
            Errc::invalid_argument)
      << "not whole pages";
  auto taken = t.add_run(PhysAddr(kPool), kPoolBytes, kRunMfn + 6);
  ASSERT_FALSE(taken);
  EXPECT_NE(taken.error().message().find("belongs to pfn 0x5000"), std::string::npos)
      << taken.error().message();
  EXPECT_TRUE(t.runs().empty());

  ASSERT_TRUE(t.add_run(PhysAddr(kPool), kPoolBytes, kRunMfn));
  EXPECT_FALSE(t.add_run(page(kPool, 2), kPoolBytes, kRunMfn + 16)) << "pages overlap";
  EXPECT_FALSE(t.add_run(page(kPool, 8), kPoolBytes, kRunMfn + 2)) << "frames overlap";
  ASSERT_TRUE(t.add_run(page(kPool, 8), kPoolBytes, kRunMfn + 16));
  EXPECT_EQ(t.add_run(page(kPool, 16), kPoolBytes, kRunMfn + 32).error().code(), Errc::out_of_range)
      << "two runs at most";
}

TEST(ExchangedTranslator, AForeignPageMovedIntoARunGivesItsFrameUp) {
  // The pool's second page was a foreign mapping; the run replaces it, and
  // a later run may then take the frame it had.
  FrameTranslator::Builder builder;
  ASSERT_TRUE(builder.map((kPool >> kPageShift) + 1, 0x900));
  ExchangedTranslator t(builder.build(), 4);
  EXPECT_TRUE(t.foreign(PhysAddr(kPool), kPoolBytes));
  ASSERT_TRUE(t.add_run(PhysAddr(kPool), kPoolBytes, kRunMfn));
  EXPECT_FALSE(t.foreign(PhysAddr(kPool), kPoolBytes)) << "exchanged pages are the guest's own";
  EXPECT_EQ(t.to_pseudo(0x900ULL << kPageShift).value(), kInvalidAddress);
  EXPECT_TRUE(t.add_run(page(kPool, 64), kPageSize, 0x900));
}

TEST(FrameExchange, FramesGivenBackAreHandedOutAgain) {
  FrameExchange hypervisor(kRunMfn, 256);
  auto a = hypervisor.exchange(64, ~std::uint64_t{0}, 64);
  auto b = hypervisor.exchange(64, ~std::uint64_t{0}, 64);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, kRunMfn);
  EXPECT_EQ(*b, kRunMfn + 64);
  EXPECT_EQ(hypervisor.free_frames(), 128u);
  ASSERT_TRUE(hypervisor.give_back(*a, 64));
  EXPECT_FALSE(hypervisor.give_back(*a + 32, 64)) << "half of them are free already";
  ASSERT_TRUE(hypervisor.give_back(*b, 64));
  EXPECT_EQ(hypervisor.free_frames(), 256u);
  // Merged again: one run of all the frames.
  auto all = hypervisor.exchange(256, ~std::uint64_t{0}, 64);
  ASSERT_TRUE(all) << all.error().message();
  EXPECT_EQ(*all, kRunMfn);
}

}  // namespace
}  // namespace swiotlb
