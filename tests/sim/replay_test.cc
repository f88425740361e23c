// Replay: the recorded 6.1 kernel trace slot for slot, small hand-made
// traces whose every answer is worked out by hand, and the bookkeeping of
// the odd cases (kernel failures, unmatched and lost unmaps).
#include "swiotlb/sim/replay.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "swiotlb/sim/report_json.h"
#include "swiotlb/sim/trace_parser.h"
#include "swiotlb/sim/trace_writer.h"
#include "swiotlb/sim/workload.h"

namespace swiotlb::sim {
namespace {

using ::testing::HasSubstr;

const std::string kSample =
    std::string(SWIOTLB_TEST_DATA) + "/linux-6.1-nvme-randrw-256k-qd32.trace";

Trace parse_or_die(const std::string& text) {
  Result<Trace> trace = parse_trace(text);
  EXPECT_TRUE(trace) << trace.error().message();
  return trace ? std::move(*trace) : Trace{};
}

ReplayReport replay_or_die(const Trace& trace, const ReplayOptions& options = {}) {
  Result<ReplayReport> report = replay_trace(trace, options);
  EXPECT_TRUE(report) << report.error().message();
  return report ? std::move(*report) : ReplayReport{};
}

TEST(Replay, SampleTraceGetsEveryKernelSlot) {
  Result<Trace> trace = load_trace(kSample);
  ASSERT_TRUE(trace) << trace.error().message();
  const ReplayReport r = replay_or_die(*trace);
  EXPECT_EQ(r.policy, "linux-6.1");  // from the `# kernel` line
  EXPECT_EQ(r.nslabs, 8192u);
  EXPECT_EQ(r.nareas, 1u);
  EXPECT_EQ(r.maps, 282u);
  EXPECT_EQ(r.unmaps, 282u);
  EXPECT_EQ(r.failures, 0u);
  EXPECT_EQ(r.would_spin, 0u);
  EXPECT_EQ(r.unmatched_unmaps, 0u);
  EXPECT_EQ(r.hiwater_slots, 3970u);
  EXPECT_EQ(r.final_used_slots, 0u);
  EXPECT_EQ(r.largest_free_run_slots, 128u);
  ASSERT_TRUE(r.slot_agreement);
  EXPECT_EQ(r.slot_agreement->matched, 282u);
  EXPECT_EQ(r.slot_agreement->compared, 282u);
  EXPECT_FALSE(r.slot_agreement->first_mismatch_line);
}

TEST(Replay, SampleTraceThroughTheFileReader) {
  Result<ReplayReport> r = replay_trace_file(kSample, {}, {});
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_TRUE(r->slot_agreement);
  EXPECT_EQ(r->slot_agreement->matched, 282u);
  EXPECT_EQ(r->hiwater_slots, 3970u);
}

TEST(Replay, SampleTraceUnderTheMainlinePolicy) {
  Result<Trace> trace = load_trace(kSample);
  ASSERT_TRUE(trace) << trace.error().message();
  ReplayOptions options;
  options.policy = "linux";
  const ReplayReport r = replay_or_die(*trace, options);
  EXPECT_EQ(r.policy, "linux");
  EXPECT_EQ(r.failures, 0u);
  EXPECT_EQ(r.final_used_slots, 0u);
  ASSERT_TRUE(r.slot_agreement);
  EXPECT_EQ(r.slot_agreement->compared, 282u);
}

TEST(Replay, OtherGeometryHasNoSlotAgreement) {
  Result<Trace> trace = load_trace(kSample);
  ASSERT_TRUE(trace) << trace.error().message();
  ReplayOptions options;
  options.nslabs = 16384;
  const ReplayReport r = replay_or_die(*trace, options);
  EXPECT_EQ(r.nslabs, 16384u);
  EXPECT_FALSE(r.slot_agreement);
  EXPECT_THAT(r.slot_agreement_unavailable, HasSubstr("geometry"));
  EXPECT_TRUE(to_json(r)["slot_agreement"].is_null());
}

// A pool of two segments at 0x100000 (mainline policy). Worked by hand:
//  line 8: 512 bytes, no masks: stride 1, slot 0 -> 0x100000; cursor 1.
//  line 9: a page, no masks: page-aligned, slot 1 is not, slot 2 -> 0x101000
//          (2 slots); cursor 4.
//  line 10: nvme keeps orig's low 12 bits: offset 0x200 in the slot, and the
//          slot's bit 11 must equal orig's (0): slot 4 (0x102000) -> 0x102200.
//  line 13: 300000 bytes need 147 slots, more than a segment: fails, as it
//          did in the kernel.
//  line 14: an address nobody mapped.
constexpr const char* kHandMade =
    "# swiotlb-trace v1\n"
    "# kernel 6.6.0-test\n"
    "# pool default start=0x100000 nslabs=256 nareas=1\n"
    "# device d0 min_align_mask=0x0\n"
    "# device nvme min_align_mask=0xfff seg_boundary_mask=0xffffffff name=nvme\n"
    "# events:\n"
    "\n"
    "map - 0 d0 0x5000 512 - 0x0 1 0x0 0x100000\n"
    "map - 0 d0 0x6000 4096 - 0x0 1 0x0 0x101000\n"
    "map - 0 nvme 0x7200 1024 - 0x0 2 0x0 0x102200\n"
    "unmap - 0 d0 0x100000 512 1 0x0\n"
    "unmap - 0 nvme 0x102200 1024 2 0x0\n"
    "map - 1 d0 0x9000 300000 - 0x0 1 0x0 0xffffffffffffffff\n"
    "unmap - 0 d0 0xdead000 64 1 0x0\n"
    "unmap - 0 d0 0x101000 4096 1 0x0\n";

TEST(Replay, HandMadeTraceGolden) {
  const ReplayReport r = replay_or_die(parse_or_die(kHandMade));
  EXPECT_EQ(r.policy, "linux");
  EXPECT_EQ(r.maps, 4u);
  EXPECT_EQ(r.unmaps, 4u);
  EXPECT_EQ(r.failures, 1u);
  ASSERT_EQ(r.first_failures.size(), 1u);
  EXPECT_EQ(r.first_failures[0].line, 13u);
  EXPECT_EQ(r.first_failures[0].size, 300000u);
  EXPECT_EQ(r.first_failures[0].reason, Errc::pool_full);
  EXPECT_EQ(r.kernel_failed_maps, 1u);
  EXPECT_EQ(r.kernel_failed_also_here, 1u);
  EXPECT_EQ(r.unmatched_unmaps, 1u);
  EXPECT_THAT(r.first_unmatched_lines, ::testing::ElementsAre(14u));
  EXPECT_EQ(r.hiwater_slots, 4u);
  EXPECT_EQ(r.final_used_slots, 0u);
  EXPECT_EQ(r.largest_free_run_slots, 128u);
  ASSERT_TRUE(r.slot_agreement);
  EXPECT_EQ(r.slot_agreement->compared, 4u);
  EXPECT_EQ(r.slot_agreement->matched, 4u);
}

TEST(Replay, FirstMismatchLineIsReported) {
  // The kernel put line 10's mapping one slot further on (its unmap says so too).
  std::string text = kHandMade;
  for (std::size_t at; (at = text.find("0x102200")) != std::string::npos;) {
    text.replace(at, 8, "0x102a00");
  }
  const ReplayReport r = replay_or_die(parse_or_die(text));
  ASSERT_TRUE(r.slot_agreement);
  EXPECT_EQ(r.slot_agreement->matched, 3u);
  EXPECT_EQ(r.slot_agreement->compared, 4u);
  EXPECT_EQ(r.slot_agreement->first_mismatch_line, 10u);
  // The unmap names the kernel's address, which still finds our mapping.
  EXPECT_EQ(r.final_used_slots, 0u);
}

TEST(Replay, MapsTheKernelFailedButThisPoolServesAreGivenBack) {
  const ReplayReport r =
      replay_or_die(parse_or_die("# swiotlb-trace v1\n"
                                 "# pool p start=0x100000 nslabs=128 nareas=1\n"
                                 "# device d min_align_mask=0\n"
                                 "map - 0 d 0x5000 2048 - 0 1 0 0xffffffffffffffff\n"));
  EXPECT_EQ(r.kernel_failed_maps, 1u);
  EXPECT_EQ(r.kernel_failed_also_here, 0u);
  EXPECT_EQ(r.failures, 0u);
  EXPECT_EQ(r.hiwater_slots, 1u);
  EXPECT_EQ(r.final_used_slots, 0u);
  ASSERT_TRUE(r.slot_agreement);
  EXPECT_EQ(r.slot_agreement->matched, 0u);
  EXPECT_EQ(r.slot_agreement->first_mismatch_line, 4u);
}

TEST(Replay, AMapAtALiveAddressMeansALostUnmap) {
  const ReplayReport r =
      replay_or_die(parse_or_die("# swiotlb-trace v1\n"
                                 "# pool p start=0x100000 nslabs=128 nareas=1\n"
                                 "# device d min_align_mask=0\n"
                                 "map - 0 d 0x5000 2048 - 0 1 0 0x100000\n"
                                 "map - 0 d 0x6000 2048 - 0 1 0 0x100000\n"
                                 "unmap - 0 d 0x100000 2048 1 0\n"));
  EXPECT_EQ(r.lost_unmaps, 1u);
  EXPECT_EQ(r.unmatched_unmaps, 0u);
  EXPECT_EQ(r.final_used_slots, 0u);
}

TEST(Replay, UnmapsOfMapsThatFailedHere) {
  ReplayOptions options;
  options.nslabs = 128;
  const ReplayReport r = replay_or_die(parse_or_die("# swiotlb-trace v1\n"
                                                    "# device d min_align_mask=0\n"
                                                    "map - 0 d 0x0 262144 - 0 1 0 -\n"
                                                    "map - 0 d 0x40000 2048 - 0 1 0 -\n"
                                                    "unmap - 0 d 0x40000 2048 1 0\n"
                                                    "unmap - 0 d 0x0 262144 1 0\n"),
                                       options);
  EXPECT_EQ(r.failures, 1u);
  EXPECT_EQ(r.first_failures.at(0).line, 4u);
  EXPECT_EQ(r.unmaps_of_failed_maps, 1u);
  EXPECT_EQ(r.unmatched_unmaps, 0u);
  EXPECT_EQ(r.final_used_slots, 0u);
  EXPECT_FALSE(r.slot_agreement);
  EXPECT_THAT(r.slot_agreement_unavailable, HasSubstr("geometry"));
}

TEST(Replay, StopAtFirstFailure) {
  ReplayOptions options;
  options.nslabs = 128;
  options.stop_at_first_failure = true;
  const ReplayReport r = replay_or_die(parse_or_die("# swiotlb-trace v1\n"
                                                    "# device d min_align_mask=0\n"
                                                    "map - 0 d 0x0 262144 - 0 1 0 -\n"
                                                    "map - 0 d 0x40000 2048 - 0 1 0 -\n"
                                                    "map - 0 d 0x80000 2048 - 0 1 0 -\n"),
                                       options);
  EXPECT_EQ(r.maps, 2u);
  EXPECT_EQ(r.failures, 1u);
  EXPECT_TRUE(r.stopped_early);
}

TEST(Replay, NoPoolLineNeedsASize) {
  Result<ReplayReport> r =
      replay_trace(parse_or_die("# swiotlb-trace v1\n# device d min_align_mask=0\n"), {});
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("--nslabs"));
}

TEST(Replay, ImpossibleGeometryAndUnknownPolicyAreErrors) {
  const Trace trace = parse_or_die(kHandMade);
  ReplayOptions options;
  options.nslabs = 100;
  EXPECT_FALSE(replay_trace(trace, options));
  options = {};
  options.policy = "no-such-policy";
  EXPECT_FALSE(replay_trace(trace, options));
}

TEST(Replay, SixOneSpinIsCountedApart) {
  // 6.1 starts at an index aligned to the stride and steps by 1 while a
  // slot's kept address bits differ from orig's. Here (min_align_mask
  // 0x1fff, orig bits 11-12 set) only slots 3 mod 4 match and the stride is
  // 4; lines 6-9 leave those slots all taken and the cursor at 1, so the
  // search starts at 4, falls onto the 3-mod-4 grid and never comes back to
  // 4: the kernel would spin with the area locked.
  const Trace trace = parse_or_die(
      "# swiotlb-trace v1\n"
      "# kernel 6.1.0\n"
      "# pool p start=0x100000 nslabs=128 nareas=1\n"
      "# device d0 min_align_mask=0x0\n"
      "# device d min_align_mask=0x1fff\n"
      "map - 0 d0 0x10000 4096 4096 0 1 0 -\n"
      "map - 0 d0 0x20000 258048 258048 0 1 0 -\n"
      "unmap - 0 d0 0x10000 4096 1 0\n"
      "map - 0 d0 0x70000 2048 2048 0 1 0 -\n"
      "map - 0 d 0x1800 2048 2048 0 1 0 -\n");
  const ReplayReport r = replay_or_die(trace);
  EXPECT_EQ(r.policy, "linux-6.1");
  EXPECT_EQ(r.maps, 4u);
  EXPECT_EQ(r.would_spin, 1u);
  EXPECT_EQ(r.failures, 0u);
  ASSERT_EQ(r.first_failures.size(), 1u);
  EXPECT_EQ(r.first_failures[0].line, 10u);
  EXPECT_EQ(r.first_failures[0].reason, Errc::search_would_spin);
  // The mainline search bounds itself: a plain failure.
  ReplayOptions mainline;
  mainline.policy = "linux";
  const ReplayReport m = replay_or_die(trace, mainline);
  EXPECT_EQ(m.would_spin, 0u);
}

TEST(Replay, StreamingMatchesTheParsedReplay) {
  WorkloadOptions w;
  w.profile = WorkloadProfile::mixed;
  w.events = 60000;  // well over a megabyte of text: the streaming path
  Result<Trace> generated = generate_workload(w);
  ASSERT_TRUE(generated) << generated.error().message();
  const std::string text = format_trace(*generated);
  ASSERT_GT(text.size(), std::size_t{1} << 20);
  const ReplayReport whole = replay_or_die(parse_or_die(text));
  Result<ReplayReport> streamed = replay_trace_text(text, {}, {});
  ASSERT_TRUE(streamed) << streamed.error().message();
  EXPECT_EQ(to_json(*streamed).dump(), to_json(whole).dump());
}

TEST(Replay, StreamingReportsParseErrorsWithTheirLine) {
  WorkloadOptions w;
  w.events = 60000;
  Result<Trace> generated = generate_workload(w);
  ASSERT_TRUE(generated);
  std::string text = format_trace(*generated);
  text += "unmap - 0 nobody 0x1 1 1 0\n";
  Result<ReplayReport> r = replay_trace_text(text, {}, {});
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("unknown device 'nobody'"));
  ParseOptions skip;
  skip.skip_bad = true;
  Result<ReplayReport> skipped = replay_trace_text(text, skip, {});
  ASSERT_TRUE(skipped) << skipped.error().message();
  EXPECT_EQ(skipped->bad_lines, 1u);
  ASSERT_EQ(skipped->first_bad_lines.size(), 1u);
}

TEST(Replay, ProgressIsReported) {
  WorkloadOptions w;
  w.events = 200000;
  Result<Trace> generated = generate_workload(w);
  ASSERT_TRUE(generated);
  std::uint64_t calls = 0;
  double last = 0;
  ReplayOptions options;
  options.progress = [&](const ReplayProgress& p) {
    ++calls;
    EXPECT_GE(p.fraction, last);
    last = p.fraction;
  };
  ASSERT_TRUE(replay_trace(*generated, options));
  EXPECT_GE(calls, 3u);
  EXPECT_DOUBLE_EQ(last, 1.0);
}

TEST(ReplayJson, HasTheDocumentedKeys) {
  const ReplayReport r = replay_or_die(parse_or_die(kHandMade));
  const nlohmann::json j = to_json(r);
  for (const char* key : {"maps", "unmaps", "failures", "hiwater_slots", "final_used_slots",
                          "largest_free_run_slots", "slot_agreement", "policy", "nslabs", "nareas",
                          "bad_lines", "would_spin", "first_failures"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["slot_agreement"]["matched"], 4);
  EXPECT_EQ(j["slot_agreement"]["compared"], 4);
  EXPECT_TRUE(j["slot_agreement"]["first_mismatch_line"].is_null());
  EXPECT_EQ(j["first_failures"][0]["line"], 13);
}

}  // namespace
}  // namespace swiotlb::sim
