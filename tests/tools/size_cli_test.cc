// `swiotlb size` as a user runs it: 128-slot answers that `swiotlb replay`
// confirms, the margin, the flags kept, and which map fails one step below.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "support/cli_run.h"

namespace {

using ::swiotlb::testing::run_cli;
using ::testing::HasSubstr;

const std::string kSample =
    std::string(SWIOTLB_TEST_DATA) + "/linux-6.1-nvme-randrw-256k-qd32.trace";

// Failed maps of a whole replay of the sample at `nslabs` slots.
std::uint64_t failures_at(std::uint64_t nslabs) {
  const auto r =
      run_cli("replay " + kSample + " --policy linux-6.1 --json --nslabs " + std::to_string(nslabs),
              "2>/dev/null");
  EXPECT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_discarded()
             ? 0
             : j["failures"].get<std::uint64_t>() + j["would_spin"].get<std::uint64_t>();
}

TEST(SizeCli, AnswerToOneSegmentThatReplayConfirms) {
  const auto r = run_cli("size " + kSample + " --policy linux-6.1 --margin 0", "2>/dev/null");
  ASSERT_EQ(r.status, 0) << r.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("\nswiotlb=([0-9]+),1\n"))) << r.out;
  const std::uint64_t n = std::stoull(m[1].str());
  EXPECT_GT(n, 4096u);
  EXPECT_LT(n, 8192u);
  EXPECT_EQ(n % 128, 0u);
  EXPECT_EQ(failures_at(n), 0u) << "at " << n;
  EXPECT_GT(failures_at(n - 128), 0u) << "at " << n - 128;
  // The step below names its failing map, with the device.
  EXPECT_THAT(r.out,
              HasSubstr("one step below, " + std::to_string(n - 128) + " slots, fails at line"));
  EXPECT_THAT(r.out, HasSubstr("by 0000:00:05.0 nvme"));
}

TEST(SizeCli, MarginAndAreaCountsInJson) {
  const auto r =
      run_cli("size " + kSample + " --policy linux --nareas 2 --nareas 1 --margin 25% --json",
              "2>/dev/null");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["policies"].size(), 2u);
  EXPECT_EQ(j["nareas"], 2);
  for (const nlohmann::json& p : j["policies"]) {
    const std::uint64_t n = p["nslabs"];
    EXPECT_EQ(p["margin_percent"], 25);
    EXPECT_EQ(p["advised_nslabs"], (n * 125 / 100 + 127) / 128 * 128);
  }
  EXPECT_THAT(j["swiotlb"].get<std::string>(), ::testing::EndsWith(",2"));
}

TEST(SizeCli, KeepsTheForceFlag) {
  const auto r =
      run_cli("size " + kSample + " --cmdline 'quiet swiotlb=8192,force'", "2>/dev/null");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_THAT(r.out, ::testing::ContainsRegex("\nswiotlb=[0-9]+,1,force\n"));
}

TEST(SizeCli, BadMarginIsAUsageError) {
  const auto r = run_cli("size " + kSample + " --margin lots", "2>&1");
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.out, HasSubstr("--margin 'lots'"));
}

}  // namespace
