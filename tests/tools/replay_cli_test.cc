// `swiotlb replay`, `swiotlb size` and `swiotlb workload`, run as a user runs
// them: the built binary, its output read through a pipe.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace {

using ::testing::HasSubstr;

const std::string kSample =
    std::string(SWIOTLB_TEST_DATA) + "/linux-6.1-nvme-randrw-256k-qd32.trace";

struct CliRun {
  int status = -1;
  std::string out;  // standard output, with standard error appended when asked
};

CliRun run(const std::string& args, bool with_stderr = false) {
  const std::string command =
      std::string(SWIOTLB_CLI) + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  CliRun result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return result;
  }
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) {
    result.out += buffer.data();
  }
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

TEST(ReplayCli, SampleJsonMatchesEverySlot) {
  const CliRun r = run("replay " + kSample + " --policy linux-6.1 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["policy"], "linux-6.1");
  EXPECT_EQ(j["maps"], 282);
  EXPECT_EQ(j["unmaps"], 282);
  EXPECT_EQ(j["failures"], 0);
  EXPECT_EQ(j["hiwater_slots"], 3970);
  EXPECT_EQ(j["final_used_slots"], 0);
  EXPECT_EQ(j["nslabs"], 8192);
  EXPECT_EQ(j["nareas"], 1);
  EXPECT_EQ(j["bad_lines"], 0);
  EXPECT_EQ(j["slot_agreement"]["matched"], 282);
  EXPECT_EQ(j["slot_agreement"]["compared"], 282);
  EXPECT_TRUE(j["slot_agreement"]["first_mismatch_line"].is_null());
  EXPECT_TRUE(j.contains("largest_free_run_slots"));
}

TEST(ReplayCli, TextReport) {
  const CliRun r = run("replay " + kSample);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("policy linux-6.1"));
  EXPECT_THAT(r.out, HasSubstr("282/282"));
}

TEST(ReplayCli, OtherSizeHasNoAgreement) {
  const CliRun r = run("replay " + kSample + " --nslabs 4096 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["nslabs"], 4096);
  EXPECT_TRUE(j["slot_agreement"].is_null());
  EXPECT_GT(j["failures"].get<int>(), 0);
}

TEST(ReplayCli, DynamicJsonGrowsPools) {
  const CliRun r = run("replay " + kSample + " --dynamic --nslabs 1024 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["dynamic"], true);
  EXPECT_EQ(j["policy"], "linux");
  EXPECT_EQ(j["order"], "kernel");
  EXPECT_EQ(j["nslabs"], 1024);
  EXPECT_EQ(j["max_nslabs"], 16384);
  EXPECT_EQ(j["grow_nslabs"], 2048);
  EXPECT_EQ(j["maps"], 282);
  EXPECT_EQ(j["failures"], 0);
  EXPECT_EQ(j["unmatched_unmaps"], 0);
  EXPECT_EQ(j["final_used_slots"], 0);
  EXPECT_GT(j["pools_grown"].get<int>(), 0);
  EXPECT_EQ(j["pools"].size(), 1 + j["pools_grown"].get<std::size_t>());
  EXPECT_EQ(j["pools_given_back"], 0);
}

TEST(ReplayCli, DynamicOldestWithShrinkText) {
  const CliRun r =
      run("replay " + kSample + " --dynamic --nslabs 1024 --order oldest --shrink-after 4");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("dynamic replay of"));
  EXPECT_THAT(r.out, HasSubstr("search order oldest"));
  EXPECT_THAT(r.out, HasSubstr("given back before event"));
}

// A trace with pool events: pools come and go where it says, and every map
// is compared with the kernel's.
TEST(ReplayCli, DynamicFollowsPoolEvents) {
  const std::string trace = std::string(SWIOTLB_TEST_DATA) + "/linux-6.12-dynamic-synthetic.trace";
  const CliRun text = run("replay " + trace + " --dynamic");
  ASSERT_EQ(text.status, 0) << text.out;
  EXPECT_THAT(text.out, HasSubstr("where the trace's 5 pool event(s) say"));
  EXPECT_THAT(text.out, HasSubstr("slot agreement:    13/13 maps on the kernel's slot"));
  EXPECT_THAT(text.out, HasSubstr("io_tlb_nslabs 1024, io_tlb_used 775, io_tlb_used_hiwater 903, "
                                  "io_tlb_transient_nslabs 0"));
  const CliRun r = run("replay " + trace + " --dynamic --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["follows_pool_events"], true);
  EXPECT_EQ(j["slot_agreement"]["matched"], 13);
  EXPECT_EQ(j["slot_agreement"]["compared"], 13);
  EXPECT_EQ(j["pool_events"], 5);
  EXPECT_EQ(j["pool_events_not_followed"], 0);
}

TEST(ReplayCli, DynamicOptionsNeedDynamic) {
  const CliRun r = run("replay " + kSample + " --grow-nslabs 4096", true);
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.out, HasSubstr("--dynamic"));
}

TEST(ReplayCli, DynamicUnknownOrder) {
  const CliRun r = run("replay " + kSample + " --dynamic --order newest", true);
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.out, HasSubstr("unknown search order"));
}

TEST(ReplayCli, MissingFileIsAnError) {
  const CliRun r = run("replay /nonexistent.trace", true);
  EXPECT_EQ(r.status, 3);  // a file that cannot be opened: a system error
  EXPECT_THAT(r.out, HasSubstr("/nonexistent.trace"));
}

TEST(SizeCli, PrintsASwiotlbLine) {
  const CliRun r = run("size " + kSample);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_THAT(r.out, ::testing::ContainsRegex("(^|\n)swiotlb=[0-9]+,1\n"));
}

TEST(SizeCli, Json) {
  const CliRun r = run("size " + kSample + " --ram 16G --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["recommended_policy"], "linux-6.1");
  EXPECT_THAT(j["swiotlb"].get<std::string>(), HasSubstr("swiotlb="));
  EXPECT_EQ(j["coco_default_bytes"], 1 << 30);
  EXPECT_EQ(j["policies"].size(), 2u);
}

TEST(WorkloadCli, WritesATraceThatReplays) {
  const std::string path = ::testing::TempDir() + "/workload-cli.trace";
  const CliRun w = run("workload --profile nvme --events 2000 --seed 9 -o " + path);
  ASSERT_EQ(w.status, 0) << w.out;
  const CliRun r = run("replay " + path + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["failures"], 0);
  EXPECT_EQ(j["final_used_slots"], 0);
  EXPECT_EQ(j["unmatched_unmaps"], 0);
  std::remove(path.c_str());
}

TEST(WorkloadCli, UnknownProfile) {
  const CliRun r = run("workload --profile scsi", true);
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.out, HasSubstr("unknown profile"));
}

}  // namespace
