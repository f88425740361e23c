// Replay series: occupancy agrees with replay_trace at every point that can
// be checked, failures and fragmentation are counted, the peak's slot map
// holds the peak's slots.
#include "swiotlb/sim/replay_series.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>

#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/trace_parser.h"

namespace swiotlb::sim {
namespace {

const std::string kSample =
    std::string(SWIOTLB_TEST_DATA) + "/linux-6.1-nvme-randrw-256k-qd32.trace";

TEST(ReplaySeries, SampleAtTheTracesPool) {
  Result<Trace> trace = load_trace(kSample);
  ASSERT_TRUE(trace) << trace.error().message();
  Result<ReplaySeries> series = replay_series(*trace, {});
  ASSERT_TRUE(series) << series.error().message();
  ASSERT_EQ(series->used.size(), trace->events.size());
  Result<ReplayReport> replay = replay_trace(*trace, {});
  ASSERT_TRUE(replay);
  EXPECT_EQ(series->peak_slots, replay->hiwater_slots);
  EXPECT_EQ(*std::max_element(series->used.begin(), series->used.end()), series->peak_slots);
  EXPECT_EQ(series->used.back(), replay->final_used_slots);
  EXPECT_EQ(series->failures, 0u);
  // The kernel served every map where this pool did, slot for slot.
  ASSERT_EQ(series->kernel_used.size(), series->used.size());
  EXPECT_EQ(series->kernel_used, series->used);
  // The peak's map holds exactly the peak's slots.
  const auto held = static_cast<std::uint64_t>(std::count_if(
      series->owner_at_peak.begin(), series->owner_at_peak.end(), [](auto o) { return o != 0; }));
  EXPECT_EQ(held, series->peak_slots);
  ASSERT_EQ(series->devices.size(), trace->devices.size());
  EXPECT_EQ(series->devices[0].maps, replay->maps);
  EXPECT_EQ(series->devices[0].peak_slots, series->peak_slots);
  ASSERT_FALSE(series->fragmentation.empty());
  EXPECT_EQ(series->fragmentation.back().event, trace->events.size() - 1);
  EXPECT_EQ(series->fragmentation.back().largest_free_run, series->nslabs - series->used.back());
}

TEST(ReplaySeries, SmallPoolFailsAndFragments) {
  Result<Trace> trace = load_trace(kSample);
  ASSERT_TRUE(trace) << trace.error().message();
  SeriesOptions options;
  options.policy = "linux";
  options.nslabs = 3840;
  options.fragmentation_samples = 50;
  Result<ReplaySeries> series = replay_series(*trace, options);
  ASSERT_TRUE(series) << series.error().message();
  ReplayOptions replay_options;
  replay_options.policy = "linux";
  replay_options.nslabs = 3840;
  Result<ReplayReport> replay = replay_trace(*trace, replay_options);
  ASSERT_TRUE(replay);
  EXPECT_GT(series->failures, 0u);
  EXPECT_EQ(series->failures, replay->failures + replay->would_spin);
  EXPECT_EQ(series->failed_events.size(), series->failures);
  EXPECT_EQ(series->devices[0].failures, series->failures);
  EXPECT_LE(series->peak_slots, 3840u);
  EXPECT_GE(series->fragmentation.size(), 50u);
  const bool fragmented = std::any_of(series->fragmentation.begin(), series->fragmentation.end(),
                                      [](const FragmentationSample& s) { return s.free_runs > 1; });
  EXPECT_TRUE(fragmented);
}

TEST(ReplaySeries, NoPoolIsAnError) {
  Result<Trace> trace = parse_trace(
      "# swiotlb-trace v1\n"
      "# device d min_align_mask=0\n"
      "map - 0 d 0x1000 2048 - 0 1 0 -\n");
  ASSERT_TRUE(trace);
  EXPECT_FALSE(replay_series(*trace, {}));
}

}  // namespace
}  // namespace swiotlb::sim
