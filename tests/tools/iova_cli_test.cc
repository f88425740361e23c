// Runs the built `swiotlb iova` and `swiotlb iova replay` as a user would,
// through the shell, and checks what they print and how they exit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "support/cli_run.h"

namespace {

using ::testing::HasSubstr;

swiotlb::testing::CliRun run_iova_cli(const std::string& args,
                                      const std::string& redirect = "2>/dev/null") {
  return swiotlb::testing::run_cli(args, redirect);
}

const std::string kIproc =
    "--dma-ranges 0x80000000-0xffffffff,0x800000000-0xfffffffff,0x8000000000-0xbfffffffff "
    "--mask-bits 48";

TEST(IovaCommand, IprocText) {
  const swiotlb::testing::CliRun run = run_iova_cli("iova " + kIproc);
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_EQ(run.out,
            "reserved_regions:\n"
            "0x0000000000000000 0x000000007fffffff reserved\n"
            "0x00000000fee00000 0x00000000feefffff msi\n"
            "0x0000000100000000 0x00000007ffffffff reserved\n"
            "0x0000001000000000 0x0000007fffffffff reserved\n"
            "0x000000c000000000 0x0000ffffffffffff reserved\n"
            "valid_ranges:\n"
            "0x0000000080000000 0x00000000fedfffff\n"
            "0x00000000fef00000 0x00000000ffffffff\n"
            "0x0000000800000000 0x0000000fffffffff\n"
            "0x0000008000000000 0x000000bfffffffff\n");
}

TEST(IovaCommand, IprocJson) {
  const swiotlb::testing::CliRun run = run_iova_cli("iova " + kIproc + " --no-msi --json");
  ASSERT_EQ(run.status, 0) << run.out;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  ASSERT_EQ(j.at("reserved_regions").size(), 4u);
  EXPECT_EQ(j["reserved_regions"][0], (nlohmann::json{{"start", "0x0000000000000000"},
                                                      {"end", "0x000000007fffffff"},
                                                      {"type", "reserved"}}));
  EXPECT_EQ(j["reserved_regions"][3]["start"], "0x000000c000000000");
  EXPECT_EQ(j["reserved_regions"][3]["end"], "0x0000ffffffffffff");
  ASSERT_EQ(j.at("valid_ranges").size(), 3u);
  EXPECT_EQ(j["valid_ranges"][0],
            (nlohmann::json{{"start", "0x0000000080000000"}, {"end", "0x00000000ffffffff"}}));
  EXPECT_EQ(j["valid_ranges"][2]["end"], "0x000000bfffffffff");
}

TEST(IovaCommand, OverlappingRangesAreAnError) {
  const swiotlb::testing::CliRun run =
      run_iova_cli("iova --dma-ranges 0x80000000-0x1ffffffff,0x100000000-0x2ffffffff", "2>&1");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.out, HasSubstr("swiotlb: error: inbound windows [0x80000000, 0x1ffffffff] and "
                                 "[0x100000000, 0x2ffffffff] overlap"));
}

TEST(IovaCommand, BadNumbersAreErrors) {
  swiotlb::testing::CliRun run = run_iova_cli("iova --dma-ranges 0x80000000-0xzz", "2>&1");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.out, HasSubstr("swiotlb: error:"));
  EXPECT_THAT(run.out, HasSubstr("0xzz"));
  run = run_iova_cli("iova --mask-bits 65", "2>&1");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.out, HasSubstr("--mask-bits 65"));
}

TEST(IovaReplayCommand, KernelTraceAgrees) {
  const swiotlb::testing::CliRun run =
      run_iova_cli(std::string("iova replay '") + SWIOTLB_TEST_DATA +
                   "/iova-linux-6.1-nvme-randrw-64k-qd32.trace' --json");
  ASSERT_EQ(run.status, 0) << run.out;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j.at("allocs"), 2068);
  EXPECT_EQ(j.at("frees"), 2062);
  EXPECT_EQ(j.at("reserves"), 21);
  EXPECT_EQ(j.at("agreement").at("matched"), 2068);
  EXPECT_EQ(j.at("agreement").at("compared"), 2068);
  EXPECT_TRUE(j.at("agreement").at("first_mismatch_line").is_null());
  ASSERT_EQ(j.at("domains").size(), 4u);
  EXPECT_EQ(j["domains"][1]["id"], 1);
  EXPECT_GE(j["domains"][1]["peak_live"], 6);
}

TEST(IovaReplayCommand, TextAndErrors) {
  swiotlb::testing::CliRun run =
      run_iova_cli(std::string("iova replay '") + SWIOTLB_TEST_DATA +
                   "/iova-linux-6.1-nvme-randrw-64k-qd32.trace' --cpus 4");
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_THAT(run.out, HasSubstr("agreement 2068/2068"));
  EXPECT_THAT(run.out, HasSubstr("cpus 4"));
  run = run_iova_cli("iova replay /nonexistent/iova.trace", "2>&1");
  EXPECT_EQ(run.status, 3);  // a file that cannot be opened: a system error
  EXPECT_THAT(run.out, HasSubstr("swiotlb: error: cannot open IOVA trace"));
}

}  // namespace
