// The capture script's conversion (tools/capture/swiotlb-capture --convert),
// run on canned raw trace_pipe captures: its output must parse as trace v1
// and say what the kernel did.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/trace_parser.h"

namespace swiotlb::sim {
namespace {

using ::testing::HasSubstr;

const std::string kData = SWIOTLB_TEST_DATA;
const std::string kScript = kData + "/../../tools/capture/swiotlb-capture";

// Runs `bash swiotlb-capture ARGS` and returns its standard output; the exit
// status goes to *status.
std::string run_script(const std::string& args, int* status) {
  const std::string command = "bash " + kScript + " " + args + " 2>&1";
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    *status = -1;
    return out;
  }
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) {
    out += buffer.data();
  }
  const int raw = ::pclose(pipe);
  *status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

Trace convert(const std::string& raw_file) {
  int status = -1;
  const std::string text = run_script("--convert " + kData + "/" + raw_file, &status);
  EXPECT_EQ(status, 0) << text;
  Result<Trace> trace = parse_trace(text);
  EXPECT_TRUE(trace) << trace.error().message() << "\n" << text;
  return trace ? std::move(*trace) : Trace{};
}

bool has_comment(const Trace& trace, const std::string& part) {
  for (const TraceComment& c : trace.comments) {
    if (c.text.find(part) != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST(CaptureConvert, Linux61X86) {
  const Trace trace = convert("capture-raw-6.1-x86_64.txt");
  EXPECT_TRUE(trace.kernel_is_6_1());
  ASSERT_TRUE(trace.pool);
  EXPECT_EQ(trace.pool->start, 0x79b31000u);
  EXPECT_EQ(trace.pool->nslabs, 8192u);
  EXPECT_EQ(trace.pool->nareas, 1u);

  // Devices in order of first appearance, masks read from the kernel.
  ASSERT_EQ(trace.devices.size(), 2u);
  EXPECT_EQ(trace.devices[0].id, "0000:00:05.0");
  EXPECT_EQ(trace.devices[0].min_align_mask, 0xfffu);
  EXPECT_EQ(trace.devices[0].seg_boundary_mask, 0xffffffffu);
  EXPECT_EQ(trace.devices[0].dma_mask, ~std::uint64_t{0});
  EXPECT_EQ(trace.devices[0].name, "nvme");
  EXPECT_EQ(trace.devices[1].id, "0000:00:03.0");
  EXPECT_EQ(trace.devices[1].min_align_mask, 0u);

  // The orphan return (first line) and the map that never returned (last)
  // are left out; the map nested in an interrupt comes out first.
  ASSERT_EQ(trace.events.size(), 9u);
  const TraceEvent& first = trace.events[0];
  EXPECT_EQ(first.op, TraceOp::map);
  EXPECT_EQ(first.t_ns, 312001022000u);
  EXPECT_EQ(first.orig, 0x101ab1000u);
  EXPECT_EQ(first.size, 4096u);
  EXPECT_EQ(first.alloc_size, 4096u);
  EXPECT_EQ(first.dir, Direction::from_device);
  EXPECT_EQ(first.tlb, 0x79b31000u);
  EXPECT_EQ(trace.events[1].op, TraceOp::unmap);
  EXPECT_EQ(trace.events[1].attrs, 0x20u);
  EXPECT_EQ(trace.events[2].device, 1u);
  EXPECT_EQ(trace.events[2].tlb, 0x79b32000u);
  EXPECT_EQ(trace.events[3].tlb, 0x79b33c00u);
  EXPECT_EQ(trace.events[4].tlb, ~std::uint64_t{0});  // the kernel failed it
  EXPECT_EQ(trace.events[4].cpu, 1u);
  EXPECT_EQ(trace.events[4].attrs, 0x100u);
  EXPECT_EQ(trace.events[5].op, TraceOp::sync_cpu);
  EXPECT_EQ(trace.events[5].size, 1514u);
  EXPECT_EQ(trace.events[7].op, TraceOp::sync_dev);

  EXPECT_TRUE(has_comment(trace, "dropped 17 events"));
  EXPECT_TRUE(has_comment(trace, "had not returned"));
  EXPECT_TRUE(has_comment(trace, "without their call"));
  EXPECT_TRUE(has_comment(trace, "nareas not in the boot log"));
}

TEST(CaptureConvert, Linux61ReplaysWithTheKernelsSlots) {
  const Trace trace = convert("capture-raw-6.1-x86_64.txt");
  Result<ReplayReport> r = replay_trace(trace, {});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->policy, "linux-6.1");
  EXPECT_EQ(r->unmatched_unmaps, 0u);
  EXPECT_EQ(r->kernel_failed_maps, 1u);
  ASSERT_TRUE(r->slot_agreement);
  // Every map the kernel served got the same slot here; the one it failed
  // (with the pool nearly empty here) is the difference.
  EXPECT_EQ(r->slot_agreement->compared, 4u);
  EXPECT_EQ(r->slot_agreement->matched, 3u);
  EXPECT_EQ(r->slot_agreement->first_mismatch_line, trace.events[4].line);
}

TEST(CaptureConvert, MainlineArm64WithoutBtf) {
  const Trace trace = convert("capture-raw-mainline-arm64.txt");
  EXPECT_FALSE(trace.kernel_is_6_1());
  EXPECT_FALSE(trace.pool);  // not found on that machine: said in a warning
  EXPECT_TRUE(has_comment(trace, "pool geometry not found"));
  ASSERT_EQ(trace.devices.size(), 2u);
  EXPECT_EQ(trace.devices[1].id, "0001:01:00.0");
  EXPECT_EQ(trace.devices[1].min_align_mask, 0xfffu);  // from the nvme driver
  EXPECT_TRUE(has_comment(trace, "inferred from its driver"));
  EXPECT_TRUE(has_comment(trace, "min_align_mask of 1000110000.pcie unknown"));
  ASSERT_EQ(trace.events.size(), 4u);
  EXPECT_FALSE(trace.events[0].has(recorded::kAllocSize));  // mainline has no alloc_size
  EXPECT_EQ(trace.events[1].orig, 0x41c2b4200u);
  EXPECT_EQ(trace.events[2].cpu, 3u);

  ReplayOptions options;
  options.nslabs = 32768;
  options.nareas = 4;
  options.start = 0xfbe00000;
  Result<ReplayReport> r = replay_trace(trace, options);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->policy, "linux");
  EXPECT_EQ(r->unmatched_unmaps, 0u);
  EXPECT_EQ(r->final_used_slots, 0u);
}

TEST(CaptureConvert, HelpAndBadArguments) {
  int status = -1;
  EXPECT_THAT(run_script("--help", &status), HasSubstr("--convert RAWFILE"));
  EXPECT_EQ(status, 0);
  EXPECT_THAT(run_script("--bogus", &status), HasSubstr("unknown argument"));
  EXPECT_NE(status, 0);
  EXPECT_THAT(run_script("--convert /nonexistent.raw", &status), HasSubstr("cannot read"));
  EXPECT_NE(status, 0);
}

}  // namespace
}  // namespace swiotlb::sim
