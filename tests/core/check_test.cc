// SWIOTLB_CHECK: evaluated and fatal where checks are on, free where off.
#include "swiotlb/core/check.h"

#include <gtest/gtest.h>

#include "swiotlb/core/error.h"

namespace swiotlb {
namespace {

int evaluations = 0;

bool counted(bool value) {
  ++evaluations;
  return value;
}

TEST(Check, FalseCheckAbortsWithItsReasonWhenEnabled) {
  if (!SWIOTLB_CHECKS_ENABLED) {
    GTEST_SKIP() << "checks are off in this build (SWIOTLB_CHECKS=OFF)";
  }
  EXPECT_DEATH(SWIOTLB_CHECK(counted(false), "a reason that names the invariant"),
               "check failed at .*check_test.cc:[0-9]+: counted\\(false\\) \\(a reason that "
               "names the invariant\\)");
}

TEST(Check, ValueOfAnErrorIsCaughtWhenEnabled) {
  if (!SWIOTLB_CHECKS_ENABLED) {
    GTEST_SKIP() << "checks are off in this build (SWIOTLB_CHECKS=OFF)";
  }
  Result<int> failed = make_error(Errc::invalid_argument, "no value");
  EXPECT_DEATH(static_cast<void>(failed.value()), "value\\(\\) of a Result that holds an error");
}

TEST(Check, ConditionIsEvaluatedOnlyWhenEnabled) {
  evaluations = 0;
  SWIOTLB_CHECK(counted(true), "true");
  EXPECT_EQ(evaluations, SWIOTLB_CHECKS_ENABLED ? 1 : 0);
}

}  // namespace
}  // namespace swiotlb
