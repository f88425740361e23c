// Sizing: the answer serves every map and the next smaller pool does not;
// the kernel's rounding and defaults.
#include "swiotlb/sim/sizing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/report_json.h"
#include "swiotlb/sim/trace_parser.h"
#include "swiotlb/sim/workload.h"

namespace swiotlb::sim {
namespace {

using ::testing::HasSubstr;

const std::string kSample =
    std::string(SWIOTLB_TEST_DATA) + "/linux-6.1-nvme-randrw-256k-qd32.trace";

ReplayReport replay_at(const Trace& trace, const std::string& policy, std::uint64_t nslabs,
                       std::uint32_t nareas) {
  ReplayOptions options;
  options.policy = policy;
  options.nslabs = nslabs;
  options.nareas = nareas;
  Result<ReplayReport> report = replay_trace(trace, options);
  EXPECT_TRUE(report) << report.error().message();
  return report ? *report : ReplayReport{};
}

// The property every answer must have: zero failures at the size, a whole
// number of steps, and failures one step below (unless it is the smallest
// pool there is).
void expect_tight(const Trace& trace, const PolicySize& size) {
  ASSERT_TRUE(size.found) << size.policy;
  EXPECT_EQ(size.nslabs % size.step, 0u);
  const ReplayReport at = replay_at(trace, size.policy, size.nslabs, size.nareas);
  EXPECT_EQ(at.failures + at.would_spin, 0u) << size.policy << " at " << size.nslabs;
  if (size.nslabs > kernel_pool_slots(1, size.nareas)) {
    const std::uint64_t below_size = size.nslabs - size.step;
    const ReplayReport below = replay_at(trace, size.policy, below_size, size.nareas);
    EXPECT_GT(below.failures + below.would_spin, 0u) << size.policy << " at " << below_size;
    EXPECT_EQ(size.below_nslabs, below_size);
    EXPECT_GT(size.below_failures, 0u);
    ASSERT_TRUE(size.first_failure_below);
    EXPECT_EQ(size.first_failure_below->line, below.first_failures.at(0).line);
  }
}

TEST(Sizing, SampleTrace) {
  Result<Trace> trace = load_trace(kSample);
  ASSERT_TRUE(trace) << trace.error().message();
  Result<SizingReport> report = size_pool(*trace, {});
  ASSERT_TRUE(report) << report.error().message();
  ASSERT_EQ(report->sizes.size(), 2u);
  EXPECT_EQ(report->recommended_policy, "linux-6.1");
  for (const PolicySize& size : report->sizes) {
    EXPECT_EQ(size.peak_demand_slots, 3970u) << size.policy;
    EXPECT_GE(size.nslabs, 4096u);
    expect_tight(*trace, size);
  }
  EXPECT_EQ(report->recommended().swiotlb_param(),
            "swiotlb=" + std::to_string(report->recommended().nslabs) + ",1");
  EXPECT_EQ(report->dynamic_peak_slots, 3970u);
  EXPECT_EQ(report->dynamic_peak_bytes, std::uint64_t{8} << 20);  // 7.75 MiB -> 2 chunks
  EXPECT_EQ(report->default_bytes, std::uint64_t{64} << 20);
  EXPECT_FALSE(report->coco_default_bytes);
}

TEST(Sizing, WorkloadsAcrossAreas) {
  for (WorkloadProfile profile : {WorkloadProfile::nvme, WorkloadProfile::network}) {
    WorkloadOptions w;
    w.profile = profile;
    w.events = 20000;
    w.cpus = 4;
    Result<Trace> trace = generate_workload(w);
    ASSERT_TRUE(trace) << trace.error().message();
    Result<SizingReport> report = size_pool(*trace, {});
    ASSERT_TRUE(report) << report.error().message();
    EXPECT_EQ(report->nareas, 4u);
    for (const PolicySize& size : report->sizes) {
      EXPECT_GE(size.nslabs, 512u);  // 128 per area at least
      expect_tight(*trace, size);
    }
  }
}

// 128-slot granularity: the sample needs more than 4096 slots under
// linux-6.1 and fewer than 8192, the two sizes doubling would offer.
TEST(Sizing, SampleTraceToOneSegment) {
  Result<Trace> trace = load_trace(kSample);
  ASSERT_TRUE(trace) << trace.error().message();
  SizingOptions options;
  options.policies = {"linux-6.1"};
  Result<SizingReport> report = size_pool(*trace, options);
  ASSERT_TRUE(report) << report.error().message();
  const PolicySize& size = report->recommended();
  EXPECT_GT(size.nslabs, 4096u);
  EXPECT_LT(size.nslabs, 8192u);
  EXPECT_EQ(size.nslabs % 128, 0u);
  EXPECT_EQ(size.step, 128u);
  expect_tight(*trace, size);
  EXPECT_EQ(size.boot_nslabs, 8192u);  // what a kernel with areas allocates for it
  EXPECT_EQ(size.swiotlb_param(), "swiotlb=" + std::to_string(size.nslabs) + ",1");
}

TEST(Sizing, MarginFlagsAndAreaCounts) {
  Result<Trace> trace = load_trace(kSample);
  ASSERT_TRUE(trace) << trace.error().message();
  SizingOptions options;
  options.policies = {"linux"};
  options.area_counts = {4, 1};
  options.margin_percent = 25;
  options.flags = "force";
  Result<SizingReport> report = size_pool(*trace, options);
  ASSERT_TRUE(report) << report.error().message();
  ASSERT_EQ(report->sizes.size(), 2u);
  EXPECT_EQ(report->nareas, 4u);
  EXPECT_EQ(report->recommended().nareas, 4u);
  for (const PolicySize& size : report->sizes) {
    expect_tight(*trace, size);
    const std::uint64_t advised = (size.nslabs * 125 / 100 + 127) / 128 * 128;
    EXPECT_EQ(size.advised_nslabs, advised);
    EXPECT_EQ(size.swiotlb_param(),
              "swiotlb=" + std::to_string(advised) + "," + std::to_string(size.nareas) + ",force");
  }
}

TEST(Sizing, FlagsFromTheTraceOrTheCommandLine) {
  Result<Trace> trace = parse_trace(
      "# swiotlb-trace v1\n"
      "# cmdline ro quiet swiotlb=8192,force\n"
      "# device d min_align_mask=0\n"
      "map - 0 d 0x1000 2048 - 0 1 0 -\n");
  ASSERT_TRUE(trace) << trace.error().message();
  EXPECT_EQ(recorded_swiotlb_flags(*trace, ""), "force");
  EXPECT_EQ(recorded_swiotlb_flags(*trace, "swiotlb=noforce"), "noforce");
  Result<Trace> plain = load_trace(kSample);
  ASSERT_TRUE(plain);
  EXPECT_EQ(recorded_swiotlb_flags(*plain, ""), "");
  EXPECT_EQ(recorded_swiotlb_flags(*plain, "swiotlb=4096,1,force root=/dev/vda"), "force");
}

TEST(Sizing, CurveCountsEveryFailure) {
  Result<Trace> trace = load_trace(kSample);
  ASSERT_TRUE(trace) << trace.error().message();
  Result<std::vector<CurvePoint>> curve = sizing_curve(*trace, "linux", 1, 3840, 4352, 128);
  ASSERT_TRUE(curve) << curve.error().message();
  ASSERT_EQ(curve->size(), 5u);
  EXPECT_EQ(curve->front().nslabs, 3840u);
  EXPECT_EQ(curve->front().failures, replay_at(*trace, "linux", 3840, 1).failures);
  EXPECT_GT(curve->front().failures, 1u);  // a whole replay, not stopped at the first
  EXPECT_EQ(curve->back().failures, 0u);
}

TEST(Sizing, SmallestPoolIsTheKernelsFloor) {
  Result<Trace> trace = parse_trace(
      "# swiotlb-trace v1\n"
      "# pool p start=0x100000 nslabs=4096 nareas=2\n"
      "# device d min_align_mask=0\n"
      "map - 0 d 0x1000 2048 - 0 1 0 -\n"
      "unmap - 0 d 0x1000 2048 1 0\n");
  ASSERT_TRUE(trace) << trace.error().message();
  Result<SizingReport> report = size_pool(*trace, {});
  ASSERT_TRUE(report) << report.error().message();
  for (const PolicySize& size : report->sizes) {
    EXPECT_EQ(size.nslabs, 256u);
    EXPECT_EQ(size.below_nslabs, 0u);
    EXPECT_EQ(size.swiotlb_param(), "swiotlb=256,2");
  }
}

TEST(Sizing, AMapLargerThanASegmentIsUnservable) {
  Result<Trace> trace = parse_trace(
      "# swiotlb-trace v1\n"
      "# device d min_align_mask=0\n"
      "map - 0 d 0x0 300000 - 0 1 0 -\n");
  ASSERT_TRUE(trace) << trace.error().message();
  Result<SizingReport> report = size_pool(*trace, {});
  ASSERT_TRUE(report) << report.error().message();
  for (const PolicySize& size : report->sizes) {
    EXPECT_FALSE(size.found);
    EXPECT_EQ(size.unservable_maps, 1u);
  }
  EXPECT_TRUE(to_json(*report)["swiotlb"].is_null());
}

TEST(Sizing, NoMapsIsAnError) {
  Result<Trace> trace = parse_trace("# swiotlb-trace v1\n");
  ASSERT_TRUE(trace);
  Result<SizingReport> report = size_pool(*trace, {});
  ASSERT_FALSE(report);
  EXPECT_THAT(report.error().message(), HasSubstr("no map"));
}

TEST(Sizing, OnePolicyOnly) {
  Result<Trace> trace = load_trace(kSample);
  ASSERT_TRUE(trace);
  SizingOptions options;
  options.policies = {"linux"};
  options.ram_bytes = std::uint64_t{16} << 30;
  Result<SizingReport> report = size_pool(*trace, options);
  ASSERT_TRUE(report) << report.error().message();
  ASSERT_EQ(report->sizes.size(), 1u);
  EXPECT_EQ(report->recommended_policy, "linux");
  EXPECT_EQ(report->coco_default_bytes, std::uint64_t{1} << 30);
  const nlohmann::json j = to_json(*report);
  EXPECT_EQ(j["coco_default_bytes"], std::uint64_t{1} << 30);
  // Saved against what the kernel allocates for the advice, not the exact need.
  EXPECT_EQ(j["saved_bytes_vs_coco_default"],
            static_cast<std::int64_t>((std::uint64_t{1} << 30) - report->sizes[0].boot_bytes()));
  EXPECT_EQ(j["policies"][0]["boot_nslabs"], report->sizes[0].boot_nslabs);
}

TEST(Sizing, KernelRounding) {
  EXPECT_EQ(kernel_pool_slots(1, 1), 128u);
  EXPECT_EQ(kernel_pool_slots(129, 1), 256u);
  EXPECT_EQ(kernel_pool_slots(3970, 1), 4096u);
  EXPECT_EQ(kernel_pool_slots(300, 8), 1024u);
  EXPECT_EQ(kernel_pool_slots(4096, 4), 4096u);
}

TEST(Sizing, ConfidentialGuestDefaults) {
  constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
  constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;
  EXPECT_EQ(coco_default_pool_bytes(512 * kMiB, 1), 64 * kMiB);  // 6% is below the floor
  EXPECT_EQ(coco_default_pool_bytes(4 * kGiB, 1), 256 * kMiB);   // 245.8 MiB, rounded up
  EXPECT_EQ(coco_default_pool_bytes(64 * kGiB, 1), kGiB);        // capped
  EXPECT_EQ(coco_default_pool_bytes(2 * kGiB, 1), 128 * kMiB);   // 122.9 MiB, rounded up
}

}  // namespace
}  // namespace swiotlb::sim
