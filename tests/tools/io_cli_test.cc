// `swiotlb io` as a user runs it: JSON with the three baselines, every
// block verified, every slot released; bad options; SIGINT.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "support/cli_run.h"

namespace swiotlb {
namespace {

using testing::run_cli;

// Skips where the machine cannot run the ring on an O_DIRECT file.
bool unavailable(const testing::CliRun& run) {
  return run.status == 2 && (run.out.find("io_uring") != std::string::npos ||
                             run.out.find("refuses O_DIRECT") != std::string::npos);
}

TEST(IoCli, JsonCarriesTheRunAndItsBaselines) {
  const testing::CliRun run =
      run_cli("io --size 8M --bs 4k/75:64k/25 --qd 8 --ios 400 --verify --json", "2>&1");
  if (unavailable(run)) {
    GTEST_SKIP() << run.out;
  }
  ASSERT_EQ(run.status, 0) << run.out;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j["verify_errors"], 0);
  EXPECT_EQ(j["pool_used_after"], 0);
  EXPECT_EQ(j["ios"], 400);
  EXPECT_GT(j["iops"].get<double>(), 0);
  EXPECT_GT(j["mib_per_s"].get<double>(), 0);
  EXPECT_EQ(j["bounced_share"], 1.0);
  for (const char* p : {"p50", "p99", "p999"}) {
    EXPECT_GT(j["latency_us"][p].get<double>(), 0) << p;
  }
  for (const char* b : {"direct", "pread_odirect", "buffered"}) {
    ASSERT_TRUE(j["baselines"].contains(b)) << b;
    EXPECT_EQ(j["baselines"][b]["ios"], 400) << b;
    EXPECT_EQ(j["baselines"][b]["bounced_share"], 0.0) << b;
    EXPECT_TRUE(j["baselines"][b].contains("cpu_ns_per_io")) << b;
  }
  EXPECT_GT(j["ratio_to_direct"].get<double>(), 0);
  EXPECT_EQ(j["final_pass"]["bad"], 0);
  const std::uint64_t blocks =
      (std::uint64_t{8} << 20) / j["file"]["block_size"].get<std::uint64_t>();
  EXPECT_EQ(j["final_pass"]["good"].get<std::uint64_t>(), blocks);
  EXPECT_TRUE(j["file"]["o_direct"].get<bool>());
  EXPECT_EQ(j["file"]["cached_bytes_after_ring"], 0);
}

TEST(IoCli, BadOptionsExitTwoNamingTheWord) {
  testing::CliRun run = run_cli("io --rw sideways --size 1M", "2>&1");
  EXPECT_EQ(run.status, 2);
  EXPECT_NE(run.out.find("sideways"), std::string::npos) << run.out;
  run = run_cli("io --bs 4k/50:8k/40 --size 1M", "2>&1");
  EXPECT_EQ(run.status, 2);
  EXPECT_NE(run.out.find("90%"), std::string::npos) << run.out;
}

TEST(IoCli, SigintReleasesEverySlotAndExits130) {
  const testing::CliRun run = run_cli("io --size 8M --qd 16 --runtime 60 --verify --json",
                                      "2>&1 & pid=$!; sleep 3; "
                                      "kill -INT $pid; wait $pid; echo status=$?");
  if (run.out.find("status=2") != std::string::npos && unavailable({run.out, 2})) {
    GTEST_SKIP() << run.out;
  }
  EXPECT_NE(run.out.find("status=130"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("interrupted after"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("\"pool_used_after\": 0"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("\"verify_errors\": 0"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace swiotlb
