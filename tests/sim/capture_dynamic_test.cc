// The capture script's conversion of a raw capture from a kernel whose pools
// grow (tests/data/capture-raw-6.12-dynamic-x86_64.txt: the events of the
// synthetic dynamic trace, as its probes log them): the pools it made become
// pool events, and the converted trace replays with every map on the
// kernel's slot.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "swiotlb/sim/dynamic_replay.h"
#include "swiotlb/sim/trace_parser.h"

namespace swiotlb::sim {
namespace {

const std::string kData = SWIOTLB_TEST_DATA;
const std::string kScript = kData + "/../../tools/capture/swiotlb-capture";

// The script's --convert output for a raw capture in tests/data.
std::string converted(const std::string& raw_file) {
  const std::string command = "bash " + kScript + " --convert " + kData + "/" + raw_file;
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run " << command;
    return out;
  }
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) {
    out += buffer.data();
  }
  const int status = ::pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  return out;
}

TEST(CaptureDynamic, PoolsBecomePoolEvents) {
  const std::string text = converted("capture-raw-6.12-dynamic-x86_64.txt");
  Result<Trace> trace = parse_trace(text);
  ASSERT_TRUE(trace) << trace.error().message() << "\n" << text;
  ASSERT_EQ(trace->pool_events.size(), 5u) << text;
  // The worker's pool (made outside any map) and two transient pools, each
  // deleted at its mapping's unmap; the pool the no-fit map got and freed at
  // once (0x140010000) is no event.
  const TracePoolEvent& t1 = trace->pool_events[0];
  EXPECT_EQ(t1.op, TracePoolOp::add);
  EXPECT_EQ(t1.kind, TracePoolKind::transient);
  EXPECT_EQ(t1.name, "transient1");
  EXPECT_EQ(t1.start, 0x140000000u);
  EXPECT_EQ(t1.nslabs, 2u);
  EXPECT_EQ(t1.before_event, 4u);  // just before the map it serves
  const TracePoolEvent& grown = trace->pool_events[1];
  EXPECT_EQ(grown.kind, TracePoolKind::grown);
  EXPECT_EQ(grown.name, "grown1");
  EXPECT_EQ(grown.start, 0x2000000u);
  EXPECT_EQ(grown.nslabs, 512u);
  EXPECT_EQ(grown.nareas, 4u);
  EXPECT_EQ(grown.cpu, 2u);
  EXPECT_EQ(grown.before_event, 6u);
  EXPECT_EQ(trace->pool_events[2].op, TracePoolOp::del);
  EXPECT_EQ(trace->pool_events[2].name, "transient1");
  EXPECT_EQ(trace->pool_events[3].start, 0x140040000u);
  EXPECT_EQ(trace->pool_events[4].name, "transient2");
  EXPECT_EQ(text.find("0x140010000"), std::string::npos);
}

TEST(CaptureDynamic, ConvertedTraceReplaysOnTheKernelsSlots) {
  Result<DynamicReplayReport> report =
      replay_dynamic_text(converted("capture-raw-6.12-dynamic-x86_64.txt"), {}, {});
  ASSERT_TRUE(report) << report.error().message();
  ASSERT_TRUE(report->slot_agreement);
  EXPECT_EQ(report->slot_agreement->compared, 13u);
  EXPECT_EQ(report->slot_agreement->matched, 13u);
  EXPECT_EQ(report->pool_events_not_followed, 0u);
  EXPECT_EQ(report->hiwater_slots, 903u);
  EXPECT_EQ(report->final_used_slots, 775u);
}

}  // namespace
}  // namespace swiotlb::sim
