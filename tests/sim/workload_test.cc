// Synthetic workloads: they parse back, replay cleanly (every unmap finds its
// map, nothing is left mapped), and the same seed gives the same trace.
#include "swiotlb/sim/workload.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/trace_parser.h"
#include "swiotlb/sim/trace_writer.h"

namespace swiotlb::sim {
namespace {

constexpr WorkloadProfile kProfiles[] = {WorkloadProfile::nvme, WorkloadProfile::virtio_blk,
                                         WorkloadProfile::network, WorkloadProfile::mixed};

Trace generate(WorkloadProfile profile, std::uint64_t events, std::uint64_t seed,
               std::uint32_t cpus = 4) {
  WorkloadOptions options;
  options.profile = profile;
  options.events = events;
  options.seed = seed;
  options.cpus = cpus;
  Result<Trace> trace = generate_workload(options);
  EXPECT_TRUE(trace) << trace.error().message();
  return trace ? std::move(*trace) : Trace{};
}

TEST(Workload, EveryProfileParsesAndReplaysCleanly) {
  for (WorkloadProfile profile : kProfiles) {
    SCOPED_TRACE(std::string(to_string(profile)));
    const Trace generated = generate(profile, 20000, 7);
    EXPECT_NEAR(static_cast<double>(generated.events.size()), 20000.0, 20.0);
    Result<Trace> parsed = parse_trace(format_trace(generated));
    ASSERT_TRUE(parsed) << parsed.error().message();
    ASSERT_EQ(parsed->events.size(), generated.events.size());
    ASSERT_TRUE(parsed->pool);
    EXPECT_EQ(parsed->pool->nareas, 4u);
    EXPECT_FALSE(parsed->has_kernel_addresses());
    for (const char* policy : {"linux", "linux-6.1"}) {
      ReplayOptions options;
      options.policy = policy;
      Result<ReplayReport> r = replay_trace(*parsed, options);
      ASSERT_TRUE(r) << r.error().message();
      EXPECT_EQ(r->failures, 0u) << policy;
      EXPECT_EQ(r->unmatched_unmaps, 0u) << policy;
      EXPECT_EQ(r->lost_unmaps, 0u) << policy;
      EXPECT_EQ(r->maps, r->unmaps) << policy;
      EXPECT_EQ(r->final_used_slots, 0u) << policy;
      EXPECT_GT(r->hiwater_slots, 0u) << policy;
      EXPECT_FALSE(r->slot_agreement);
    }
  }
}

TEST(Workload, SameSeedSameTrace) {
  for (WorkloadProfile profile : kProfiles) {
    EXPECT_EQ(format_trace(generate(profile, 5000, 42)), format_trace(generate(profile, 5000, 42)));
    EXPECT_NE(format_trace(generate(profile, 5000, 42)), format_trace(generate(profile, 5000, 43)));
  }
}

TEST(Workload, NvmeKeepsItsAlignmentAndSegmentLimit) {
  const Trace trace = generate(WorkloadProfile::nvme, 20000, 3);
  ASSERT_EQ(trace.devices.size(), 1u);
  EXPECT_EQ(trace.devices[0].min_align_mask, 0xfffu);
  for (const TraceEvent& e : trace.events) {
    if (e.op == TraceOp::map) {
      // 256 KiB less a page: the most one mapping can hold with 0xfff kept.
      EXPECT_LE(e.size + (e.orig & 0xfff), 258048u);
    }
  }
}

TEST(Workload, LiveOriginalAddressesAreUnique) {
  const Trace trace = generate(WorkloadProfile::mixed, 30000, 5);
  std::set<std::uint64_t> live;
  for (const TraceEvent& e : trace.events) {
    if (e.op == TraceOp::map) {
      EXPECT_TRUE(live.insert(e.orig).second) << "line " << e.line;
    } else if (e.op == TraceOp::unmap) {
      EXPECT_EQ(live.erase(e.tlb), 1u);
    }
  }
  EXPECT_TRUE(live.empty());
}

TEST(Workload, ProfileNames) {
  for (WorkloadProfile profile : kProfiles) {
    EXPECT_EQ(workload_profile_from_string(to_string(profile)), profile);
  }
  EXPECT_FALSE(workload_profile_from_string("scsi"));
}

TEST(Workload, BadOptions) {
  WorkloadOptions options;
  options.events = 0;
  EXPECT_FALSE(generate_workload(options));
  options.events = 10;
  options.cpus = 3;
  EXPECT_FALSE(generate_workload(options));
  options.cpus = 1024;
  Result<Trace> big = generate_workload(options);
  ASSERT_TRUE(big) << big.error().message();
  EXPECT_EQ(big->pool->nslabs, 131072u);  // 128 slots for each of 1024 areas
}

}  // namespace
}  // namespace swiotlb::sim
