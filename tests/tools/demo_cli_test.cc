// Runs the built `swiotlb demo` as a user would and checks its verdict and
// what its statistics say about the pools it used.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "support/cli_run.h"

namespace {

using swiotlb::testing::CliRun;
using swiotlb::testing::run_cli;

TEST(DemoCommand, SmallPoolThatGrowsServesEveryTransfer) {
  const CliRun run =
      run_cli("demo --cmdline 'swiotlb=128,force' --grow --transfers 300 --json", "2>/dev/null");
  ASSERT_EQ(run.status, 0) << run.out;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j.at("ok"), true);
  EXPECT_EQ(j.at("bad_bytes"), 0);
  EXPECT_EQ(j.at("map_failures"), 0);
  const nlohmann::json& growth = j.at("pool").at("growth");
  EXPECT_EQ(growth.at("enabled"), true);
  // 256 slots cannot hold 32 transfers of up to 256 KiB: the pool grew, or
  // transient pools took what it could not.
  EXPECT_GT(growth.at("grow_events").get<int>() + growth.at("transient_nslabs_total").get<int>(),
            0);
  EXPECT_EQ(j.at("pool").at("used"), 0);
  EXPECT_EQ(growth.at("transient_nslabs"), 0);  // every transient pool freed at its unmap
}

TEST(DemoCommand, WithoutGrowthTheSamePoolRefusesMaps) {
  const CliRun run =
      run_cli("demo --cmdline 'swiotlb=128,force' --transfers 300 --json", "2>/dev/null");
  const nlohmann::json j = nlohmann::json::parse(run.out);
  EXPECT_GT(j.at("map_failures").get<int>(), 0);
  EXPECT_EQ(j.at("pool").at("growth").at("grow_events"), 0);
}

TEST(DemoCommand, SharedWindowThatGrowsRefusesNothing) {
  const CliRun run =
      run_cli("demo --shared --grow --cmdline 'swiotlb=128' --transfers 400 --json", "2>/dev/null");
  ASSERT_EQ(run.status, 0) << run.out;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j.at("ok"), true);
  EXPECT_EQ(j.at("bad_bytes"), 0);
  EXPECT_EQ(j.at("map_failures"), 0);
  EXPECT_EQ(j.at("transfers"), 400);
  EXPECT_GT(j.at("device_bytes_checked").get<std::uint64_t>(), 0u);
  EXPECT_GT(j.at("host_bytes_checked").get<std::uint64_t>(), 0u);
  const nlohmann::json& growth = j.at("pool").at("growth");
  EXPECT_GT(growth.at("grow_events").get<int>() + growth.at("transient_nslabs_total").get<int>(),
            0);
  // Every pool past the first reached the device process as a window of
  // its own, and none was refused.
  const nlohmann::json& windows = j.at("windows");
  EXPECT_GE(windows.at("announced").get<int>(), 2);
  EXPECT_EQ(windows.at("refused"), 0);
  EXPECT_EQ(j.at("pool").at("used"), 0);
}

}  // namespace
