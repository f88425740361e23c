// The IOVA trace format v1 parser and writer, and replay against the trace
// recorded on a Linux 6.1.192 kernel.
#include "swiotlb/iova/iova_trace.h"

#include <gtest/gtest.h>

#include <string>

#include "swiotlb/iova/iova_replay.h"

namespace swiotlb::iova {
namespace {

const std::string kKernelTrace =
    std::string(SWIOTLB_TEST_DATA) + "/iova-linux-6.1-nvme-randrw-64k-qd32.trace";

constexpr std::string_view kSmall =
    "# swiotlb-iova-trace v1\n"
    "# kernel test\n"
    "# domain 7 granule=4096 start_pfn=0x1\n"
    "reserve 7 0xfee00 0xfeeff\n"
    "\n"
    "alloc 0 7 1 0xfffff 0 0xfffff\n"
    "alloc 1 7 3 0xfffff 1 0xffff8\n"
    "free 1 7 0xffff8 3\n"
    "alloc 0 7 64 0x3 0 fail\n";

TEST(IovaTraceTest, ParsesEveryKindOfLine) {
  Result<IovaTrace> trace = parse_iova_trace(kSmall);
  ASSERT_TRUE(trace) << trace.error().message();
  ASSERT_EQ(trace->domains.size(), 1u);
  EXPECT_EQ(trace->domains[0], (IovaTraceDomain{7, 4096, 1, 3}));
  ASSERT_EQ(trace->ops.size(), 5u);
  EXPECT_EQ(trace->ops[0].kind, IovaOpKind::reserve);
  EXPECT_EQ(trace->ops[0].pfn, 0xfee00u);
  EXPECT_EQ(trace->ops[0].pfn_hi, 0xfeeffu);
  EXPECT_EQ(trace->ops[2].cpu, 1u);
  EXPECT_EQ(trace->ops[2].size, 3u);
  EXPECT_TRUE(trace->ops[2].flush);
  EXPECT_EQ(trace->ops[2].result, 0xffff8u);
  EXPECT_EQ(trace->ops[2].line, 7u);
  EXPECT_EQ(trace->ops[3].kind, IovaOpKind::free);
  EXPECT_FALSE(trace->ops[4].result.has_value());
  EXPECT_EQ(trace->max_cpu(), 1u);
}

TEST(IovaTraceTest, WriterRoundTrips) {
  Result<IovaTrace> trace = parse_iova_trace(kSmall);
  ASSERT_TRUE(trace);
  Result<IovaTrace> again = parse_iova_trace(format_iova_trace(*trace));
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->ops.size(), trace->ops.size());
  for (std::size_t i = 0; i < trace->ops.size(); ++i) {
    IovaTraceOp a = trace->ops[i];
    IovaTraceOp b = again->ops[i];
    a.line = b.line = 0;
    EXPECT_EQ(a, b) << "op " << i;
  }
}

struct BadLine {
  std::string text;
  std::string expect;  // in the message
};

class IovaTraceErrorTest : public ::testing::TestWithParam<BadLine> {};

TEST_P(IovaTraceErrorTest, NamesTheLineAndTheField) {
  const std::string text =
      "# swiotlb-iova-trace v1\n# domain 0 granule=4096 start_pfn=0x1\n" + GetParam().text + "\n";
  Result<IovaTrace> trace = parse_iova_trace(text);
  ASSERT_FALSE(trace);
  EXPECT_EQ(trace.error().code(), Errc::parse);
  EXPECT_NE(trace.error().message().find(GetParam().expect), std::string::npos)
      << trace.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Lines, IovaTraceErrorTest,
    ::testing::Values(BadLine{"alloc 0 0 1 0xfffff 2 0xfffff", "line 3: flush '2'"},
                      BadLine{"alloc 0 0 1x 0xfffff 0 0xfffff", "line 3: size '1x'"},
                      BadLine{"alloc 0 0 1 0xfffff 0", "line 3: alloc takes 6 fields"},
                      BadLine{"alloc 0 0 1 0xfffff 0 0xzz", "line 3: result pfn '0xzz'"},
                      BadLine{"free 0 0 0x10", "line 3: free takes 4 fields"},
                      BadLine{"free 0 0 pfn 1", "line 3: pfn 'pfn'"},
                      BadLine{"reserve 0 0x20 0x10", "line 3: pfn_lo 0x20 is above pfn_hi"},
                      BadLine{"reserve 1 0x10 0x20", "line 3: domain 1 is used before"},
                      BadLine{"map 0 0 1", "line 3: unknown op 'map'"},
                      BadLine{"alloc 99999999999 0 1 0xfffff 0 fail", "line 3: cpu"},
                      BadLine{"# domain 0 granule=4096 start_pfn=0x1",
                              "already declared on line 2"},
                      BadLine{"# domain 1 granule=3000 start_pfn=0x1", "granule 3000"},
                      BadLine{"# domain 1 granule=4096 start=0x1", "expected start_pfn="},
                      BadLine{"reserve 0 0x10 0x1000000000000000000", "pfn_hi"}));

TEST(IovaTraceTest, RequiresTheVersionLine) {
  Result<IovaTrace> trace = parse_iova_trace("# swiotlb-trace v1\nalloc 0 0 1 1 0 fail\n");
  ASSERT_FALSE(trace);
  EXPECT_NE(trace.error().message().find("line 1: version"), std::string::npos);
  EXPECT_FALSE(parse_iova_trace(""));
}

TEST(IovaTraceTest, MissingFileIsASystemError) {
  Result<IovaTrace> trace = read_iova_trace("/nonexistent/iova.trace");
  ASSERT_FALSE(trace);
  EXPECT_EQ(trace.error().code(), Errc::system);
}

TEST(IovaReplayTest, SmallTraceAgrees) {
  Result<IovaTrace> trace = parse_iova_trace(kSmall);
  ASSERT_TRUE(trace);
  Result<IovaReplayReport> report = replay_iova_trace(*trace);
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_EQ(report->cpus, 2u);
  EXPECT_EQ(report->compared, 3u);
  EXPECT_EQ(report->matched, 3u);
  EXPECT_FALSE(report->first_mismatch);
  ASSERT_EQ(report->domains.size(), 1u);
  EXPECT_EQ(report->domains[0].peak_live, 2u);
  EXPECT_EQ(report->domains[0].live_at_end, 1u);
  EXPECT_EQ(report->domains[0].cached_at_end, 1u);  // the freed 4-granule IOVA
}

TEST(IovaReplayTest, MismatchIsReportedAndReplayGoesOn) {
  const std::string text =
      "# swiotlb-iova-trace v1\n# domain 0 granule=4096 start_pfn=0x1\n"
      "alloc 0 0 1 0xfffff 0 0x1234\n"  // the kernel would have said 0xfffff
      "alloc 0 0 1 0xfffff 0 0xffffe\n"
      "free 0 0 0x1234 1\n"
      "alloc 0 0 1 0xfffff 0 0xfffff\n";  // our freed 0xfffff comes back from the magazine
  Result<IovaTrace> trace = parse_iova_trace(text);
  ASSERT_TRUE(trace);
  Result<IovaReplayReport> report = replay_iova_trace(*trace);
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_EQ(report->compared, 3u);
  EXPECT_EQ(report->matched, 2u);
  ASSERT_TRUE(report->first_mismatch);
  EXPECT_EQ(report->first_mismatch->line, 3u);
  EXPECT_EQ(report->first_mismatch->expected, 0x1234u);
  EXPECT_EQ(report->first_mismatch->got, 0xfffffu);
  EXPECT_EQ(to_json(*report)["agreement"]["first_mismatch_line"], 3);
}

TEST(IovaReplayTest, FreeOfAPfnTheTraceNeverAllocatedIsAnError) {
  const std::string text =
      "# swiotlb-iova-trace v1\n# domain 0 granule=4096 start_pfn=0x1\n"
      "alloc 0 0 1 0xfffff 0 0xfffff\n"
      "free 0 0 0xffff0 1\n";
  Result<IovaTrace> trace = parse_iova_trace(text);
  ASSERT_TRUE(trace);
  Result<IovaReplayReport> report = replay_iova_trace(*trace);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().message().find("line 4: free of pfn 0xffff0"), std::string::npos)
      << report.error().message();
}

TEST(IovaReplayTest, FreeWithTheWrongSizeIsAnError) {
  const std::string text =
      "# swiotlb-iova-trace v1\n# domain 0 granule=4096 start_pfn=0x1\n"
      "alloc 0 0 4 0xfffff 0 0xffffc\n"
      "free 0 0 0xffffc 8\n";
  Result<IovaReplayReport> report = replay_iova_trace(*parse_iova_trace(text));
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().message().find("line 4:"), std::string::npos);
  EXPECT_NE(report.error().message().find("allocated with 4"), std::string::npos)
      << report.error().message();
}

TEST(IovaReplayTest, TooFewCpusIsAnError) {
  Result<IovaTrace> trace = parse_iova_trace(kSmall);
  ASSERT_TRUE(trace);
  IovaReplayOptions options;
  options.cpus = 1;
  Result<IovaReplayReport> report = replay_iova_trace(*trace, options);
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code(), Errc::invalid_argument);
}

TEST(IovaReplayTest, ReserveOutsideTheDomainNamesTheLine) {
  const std::string text =
      "# swiotlb-iova-trace v1\n# domain 0 granule=4096 start_pfn=0x1\n"
      "reserve 0 0x0 0x10000000000000\n";
  Result<IovaReplayReport> report = replay_iova_trace(*parse_iova_trace(text));
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().message().find("line 3: reserve"), std::string::npos)
      << report.error().message();
}

TEST(IovaReplayTest, KernelTraceAgreesOnEveryAllocation) {
  Result<IovaTrace> trace = read_iova_trace(kKernelTrace);
  ASSERT_TRUE(trace) << trace.error().message();
  EXPECT_EQ(trace->domains.size(), 4u);
  Result<IovaReplayReport> report = replay_iova_trace(*trace);
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_EQ(report->reserves, 21u);
  EXPECT_EQ(report->allocs, 2068u);
  EXPECT_EQ(report->frees, 2062u);
  EXPECT_EQ(report->compared, 2068u);
  EXPECT_EQ(report->matched, 2068u);
  EXPECT_FALSE(report->first_mismatch) << format_replay_report(*report);
  EXPECT_EQ(report->cpus, 1u);
  const nlohmann::json json = to_json(*report);
  EXPECT_EQ(json["agreement"]["matched"], 2068);
  EXPECT_EQ(json["agreement"]["compared"], 2068);
  EXPECT_TRUE(json["agreement"]["first_mismatch_line"].is_null());
  ASSERT_EQ(json["domains"].size(), 4u);
  EXPECT_EQ(json["domains"][1]["id"], 1);
  EXPECT_EQ(json["domains"][1]["live_at_end"], 6);  // 2068 allocated, 2062 freed
  EXPECT_GE(json["domains"][1]["peak_live"], 6);
}

}  // namespace
}  // namespace swiotlb::iova
