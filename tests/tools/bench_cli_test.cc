// Runs the built `swiotlb bench` as a script would and checks the shape of
// what it prints: the JSON keys, a ratio that is a positive number, the
// filter honoured. Never its speed: timings belong to benchmarks, not tests.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/cli_run.h"

namespace {

using ::testing::HasSubstr;

using swiotlb::testing::CliRun;
using swiotlb::testing::run_cli;

// The rows `swiotlb bench --json <args>` prints. A test failure, and no
// rows, when it exits with an error or prints anything but a JSON array.
nlohmann::json bench_rows(const std::string& args) {
  const CliRun run = run_cli("bench --json " + args, "2>/dev/null");
  EXPECT_EQ(run.status, 0) << run.out;
  nlohmann::json j = nlohmann::json::parse(run.out, nullptr, false);
  EXPECT_TRUE(j.is_array()) << run.out;
  return j.is_array() ? j : nlohmann::json::array();
}

TEST(BenchCommand, JsonListsFilteredCasesWithTheirBaseline) {
  const CliRun run =
      run_cli("bench --json --filter 'map_unmap.*4096' --min-time 0.01", "2>/dev/null");
  ASSERT_EQ(run.status, 0) << run.out;
  const nlohmann::json j = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << run.out;
  ASSERT_TRUE(j.is_array());
  ASSERT_FALSE(j.empty());
  for (const nlohmann::json& row : j) {
    for (const char* key :
         {"name", "bytes", "threads", "policy", "ns_per_op", "cpu_ns_per_op", "baseline",
          "baseline_ns_per_op", "baseline_cpu_ns_per_op", "ratio", "cpu_ratio", "copy"}) {
      EXPECT_TRUE(row.contains(key)) << key << " missing in " << row.dump();
    }
    EXPECT_THAT(row.at("name").get<std::string>(), HasSubstr("4096"));
    EXPECT_EQ(row.at("bytes"), 4096);
    EXPECT_EQ(row.at("copy"), true);
    EXPECT_GE(row.at("threads").get<int>(), 1);
    EXPECT_GT(row.at("ns_per_op").get<double>(), 0);
    EXPECT_GT(row.at("baseline_ns_per_op").get<double>(), 0);
    EXPECT_GT(row.at("ratio").get<double>(), 0);
  }
}

TEST(BenchCommand, RunsTheDefaultAndEveryKernelPolicy) {
  const nlohmann::json j = bench_rows("--filter '^map_unmap/.*/512$' --min-time 0.001");
  ASSERT_FALSE(j.empty());
  std::vector<std::string> policies;
  for (const nlohmann::json& row : j) {
    policies.push_back(row.at("policy").get<std::string>());
  }
  EXPECT_THAT(policies, ::testing::UnorderedElementsAre("fast", "linux", "linux-6.1"));
}

TEST(BenchCommand, TextIsATableWithAHeader) {
  const CliRun run =
      run_cli("bench --filter 'map_unmap/linux/512' --min-time 0.001", "2>/dev/null");
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_THAT(run.out, HasSubstr("baseline ns/op"));
  EXPECT_THAT(run.out, HasSubstr("ratio"));
  EXPECT_THAT(run.out, HasSubstr("map_unmap/linux/512"));
}

TEST(BenchCommand, SearchRowIsTheSearchAloneAgainstLinux) {
  const CliRun run =
      run_cli("bench --json --filter 'search/fast/4096/occ0/t1' --min-time 0.001", "2>/dev/null");
  ASSERT_EQ(run.status, 0) << run.out;
  const nlohmann::json j = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << run.out;
  ASSERT_TRUE(j.is_array());
  // t1 is also the start of t16 and the like, on a machine with that many CPUs.
  const nlohmann::json* one_thread = nullptr;
  for (const nlohmann::json& row : j) {
    EXPECT_THAT(row.at("name").get<std::string>(), HasSubstr("search/fast/4096/occ0/t1"));
    if (row.at("name") == "search/fast/4096/occ0/t1") {
      one_thread = &row;
    }
  }
  ASSERT_NE(one_thread, nullptr) << run.out;
  const nlohmann::json& row = *one_thread;
  EXPECT_EQ(row.at("policy"), "fast");
  EXPECT_EQ(row.at("bytes"), 4096);
  EXPECT_EQ(row.at("threads"), 1);
  EXPECT_EQ(row.at("copy"), false);
  EXPECT_EQ(row.at("baseline"), "linux");
  EXPECT_NEAR(row.at("occupancy").get<double>(), 0, 1e-9);
  // An empty pool always has a run of two slots.
  EXPECT_DOUBLE_EQ(row.at("found").get<double>(), 1);
  EXPECT_GT(row.at("ns_per_op").get<double>(), 0);
  EXPECT_GT(row.at("baseline_ns_per_op").get<double>(), 0);
  EXPECT_GT(row.at("ratio").get<double>(), 0);
}

TEST(BenchCommand, SearchRowsMeasureTheOccupancyTheyAskFor) {
  const nlohmann::json j = bench_rows("--filter '^search/linux/65536/occ90/t2$' --min-time 0.001");
  ASSERT_EQ(j.size(), 1u) << j.dump();
  const nlohmann::json& row = j.front();
  EXPECT_EQ(row.at("threads"), 2);
  EXPECT_NEAR(row.at("occupancy").get<double>(), 0.9, 0.01);
  EXPECT_GE(row.at("found").get<double>(), 0);
  EXPECT_LE(row.at("found").get<double>(), 1);
  // The linux policy is its own baseline.
  EXPECT_DOUBLE_EQ(row.at("ratio").get<double>(), 1);
}

TEST(BenchCommand, SearchTableHasItsOwnHeader) {
  const CliRun run =
      run_cli("bench --filter 'map_unmap/linux/512|search/fast/4096/occ0/t1' --min-time 0.001",
              "2>/dev/null");
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_THAT(run.out, HasSubstr("map_unmap/linux/512"));
  EXPECT_THAT(run.out, HasSubstr("linux ns/op"));
  EXPECT_THAT(run.out, HasSubstr("occ%"));
  EXPECT_THAT(run.out, HasSubstr("search/fast/4096/occ0/t1"));
  EXPECT_THAT(run.out, ::testing::Not(HasSubstr("search/linux/")));
}

TEST(BenchCommand, LookupRowIsRcuAgainstTheKernelsListWalk) {
  const CliRun run =
      run_cli("bench --json --filter 'lookup/rcu/16/t1' --min-time 0.001", "2>/dev/null");
  ASSERT_EQ(run.status, 0) << run.out;
  const nlohmann::json j = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << run.out;
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 1u) << run.out;
  const nlohmann::json& row = j.front();
  for (const char* key :
       {"name", "pools", "threads", "scheme", "misses", "ns_per_op", "baseline",
        "baseline_ns_per_op", "ratio", "rwlock_ns_per_op", "rwlock_ratio", "copy"}) {
    EXPECT_TRUE(row.contains(key)) << key << " missing in " << row.dump();
  }
  EXPECT_EQ(row.at("name"), "lookup/rcu/16/t1");
  EXPECT_EQ(row.at("scheme"), "rcu");
  EXPECT_EQ(row.at("pools"), 16);
  EXPECT_EQ(row.at("threads"), 1);
  EXPECT_EQ(row.at("baseline"), "linear");
  EXPECT_EQ(row.at("copy"), false);
  // About a tenth of the addresses are in no pool.
  EXPECT_GT(row.at("misses").get<double>(), 0.05);
  EXPECT_LT(row.at("misses").get<double>(), 0.15);
  EXPECT_GT(row.at("ns_per_op").get<double>(), 0);
  EXPECT_GT(row.at("baseline_ns_per_op").get<double>(), 0);
  EXPECT_GT(row.at("ratio").get<double>(), 0);
  EXPECT_GT(row.at("rwlock_ns_per_op").get<double>(), 0);
  EXPECT_GT(row.at("rwlock_ratio").get<double>(), 0);
}

TEST(BenchCommand, LookupBaselineIsItsOwnRatioAndHasItsOwnTable) {
  const CliRun run =
      run_cli("bench --filter 'search/fast/4096/occ0/t1$|lookup/linear/1/t2' --min-time 0.001",
              "2>/dev/null");
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_THAT(run.out, HasSubstr("search/fast/4096/occ0/t1"));
  EXPECT_THAT(run.out, HasSubstr("linear ns/op"));
  EXPECT_THAT(run.out, HasSubstr("rwlock ns/op"));
  EXPECT_THAT(run.out, HasSubstr("lookup/linear/1/t2"));
  EXPECT_THAT(run.out, ::testing::Not(HasSubstr("lookup/rcu/")));
  EXPECT_THAT(run.out, ::testing::Not(HasSubstr("lookup/rwlock/")));

  const CliRun json =
      run_cli("bench --json --filter '^lookup/linear/1/t2$' --min-time 0.001", "2>/dev/null");
  ASSERT_EQ(json.status, 0) << json.out;
  const nlohmann::json j = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << json.out;
  ASSERT_EQ(j.size(), 1u) << json.out;
  EXPECT_EQ(j.front().at("threads"), 2);
  EXPECT_DOUBLE_EQ(j.front().at("ratio").get<double>(), 1);
}

TEST(BenchCommand, FilterThatMatchesNothingNamesTheCases) {
  const CliRun run = run_cli("bench --filter 'no-such-case'", "2>&1 >/dev/null");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.out, HasSubstr("no-such-case"));
  EXPECT_THAT(run.out, HasSubstr("map_unmap/linux/4096"));
  EXPECT_THAT(run.out, HasSubstr("search/{linux,linux-6.1,fast}/{4096,65536}/occ{0,50,90}/t{1,2"));
  EXPECT_THAT(run.out, HasSubstr("lookup/{rcu,linear,rwlock}/{1,16,256}/t{1,2}"));
}

TEST(BenchCommand, SearchFilterThatMatchesNothingIsAnError) {
  const CliRun run =
      run_cli("bench --json --filter 'search/fast/4096/occ42' --min-time 0.001", "2>&1 >/dev/null");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.out, HasSubstr("swiotlb: error: "));
  EXPECT_THAT(run.out, HasSubstr("matches no case"));
}

TEST(BenchCommand, InvalidFilterIsAnError) {
  const CliRun run = run_cli("bench --filter '(' --min-time 0.001", "2>&1 >/dev/null");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.out, HasSubstr("is not supported (no groups"));
}

TEST(BenchCommand, CheckedReadAndColdRowsSitBesideTheProductionOne) {
  const CliRun run = run_cli(
      "bench --json --filter "
      "'^map_unmap/fast/512$|^map_unmap_checked/fast/512$|^map_unmap_cold/fast/512$|"
      "^map_unmap_read/fast/512$' "
      "--min-time 0.001",
      "2>/dev/null");
  ASSERT_EQ(run.status, 0) << run.out;
  const nlohmann::json j = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << run.out;
  std::vector<std::string> names;
  for (const nlohmann::json& row : j) {
    names.push_back(row.at("name").get<std::string>());
    EXPECT_GT(row.at("cpu_ns_per_op").get<double>(), 0);
    EXPECT_GT(row.at("baseline_cpu_ns_per_op").get<double>(), 0);
  }
  EXPECT_THAT(names, ::testing::ElementsAre("map_unmap/fast/512", "map_unmap_checked/fast/512",
                                            "map_unmap_read/fast/512", "map_unmap_cold/fast/512"));
  EXPECT_EQ(j.at(0).at("baseline"), "memcpy");
  EXPECT_EQ(j.at(2).at("baseline"), "memcpy there and back");
  EXPECT_EQ(j.at(3).at("baseline"), "memcpy, rotating");
}

TEST(BenchCommand, BounceCopyRowsTimeTheLibrarysCopyAgainstMemcpy) {
  const nlohmann::json j = bench_rows("--filter '^bounce_copy/' --min-time 0.001");
  ASSERT_FALSE(j.empty());
  std::vector<std::string> names;
  for (const nlohmann::json& row : j) {
    names.push_back(row.at("name").get<std::string>());
    EXPECT_EQ(row.at("baseline"), "memcpy");
    EXPECT_TRUE(row.at("copy").get<bool>());
    EXPECT_GT(row.at("cpu_ns_per_op").get<double>(), 0);
    EXPECT_GT(row.at("baseline_cpu_ns_per_op").get<double>(), 0);
  }
  EXPECT_THAT(names, ::testing::ElementsAre("bounce_copy/512", "bounce_copy/4096",
                                            "bounce_copy/65536", "bounce_copy/262144"));
}

TEST(BenchCommand, ScalingRowHasItsSpeedupAndTheCeiling) {
  const nlohmann::json j = bench_rows("--filter '^scaling/fast/4096/t2$' --min-time 0.001");
  ASSERT_EQ(j.size(), 1u) << j.dump();
  const nlohmann::json& row = j.front();
  EXPECT_EQ(row.at("threads"), 2);
  EXPECT_EQ(row.at("baseline"), "1 thread");
  for (const char* key : {"ns_per_op", "cpu_ns_per_op", "baseline_ns_per_op", "speedup",
                          "ceiling_speedup", "efficiency", "cpu_ratio"}) {
    EXPECT_GT(row.at(key).get<double>(), 0) << key;
  }
  EXPECT_NEAR(row.at("efficiency").get<double>(),
              row.at("speedup").get<double>() / row.at("ceiling_speedup").get<double>(), 1e-9);
}

// The replay row is timed in as many rounds as asked, each with its
// baseline, and gives both CPU times beside the wall times.
TEST(BenchCommand, ReplayRowGivesTheMedianOfItsRoundsWithCpuTimes) {
  const nlohmann::json j = bench_rows("--filter '^replay' --rounds 1");
  ASSERT_EQ(j.size(), 1u) << j.dump();
  const nlohmann::json& row = j.front();
  EXPECT_EQ(row.at("name"), "replay/mixed/1000000");
  EXPECT_EQ(row.at("rounds"), 1);
  EXPECT_EQ(row.at("baseline"), "replay of the parsed trace");
  for (const char* key :
       {"ns_per_op", "cpu_ns_per_op", "baseline_ns_per_op", "baseline_cpu_ns_per_op", "ratio",
        "cpu_ratio", "events_per_s", "events_per_cpu_s"}) {
    EXPECT_GT(row.at(key).get<double>(), 0) << key;
  }
  EXPECT_NEAR(row.at("events_per_cpu_s").get<double>() * row.at("cpu_ns_per_op").get<double>(), 1e9,
              1e9 * 1e-3)
      << row.dump();
}

TEST(BenchCommand, RoundsBelowOneAreAnError) {
  const CliRun run = run_cli("bench --filter '^replay' --rounds 0", "2>&1 >/dev/null");
  EXPECT_NE(run.status, 0);
  EXPECT_THAT(run.out, HasSubstr("--rounds"));
}

}  // namespace
