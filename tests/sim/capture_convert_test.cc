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

Trace convert_path(const std::string& path) {
  int status = -1;
  const std::string text = run_script("--convert " + path, &status);
  EXPECT_EQ(status, 0) << text;
  Result<Trace> trace = parse_trace(text);
  EXPECT_TRUE(trace) << trace.error().message() << "\n" << text;
  return trace ? std::move(*trace) : Trace{};
}

Trace convert(const std::string& raw_file) {
  return convert_path(kData + "/" + raw_file);
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

TEST(CaptureConvert, Linux61PoolStateOfTheAreasItHas) {
  const Trace trace = convert("capture-raw-6.1-x86_64.txt");
  // The probe read 8 areas; the kernel has one, the rest is other memory.
  // 6.1 has no total_used or used_hiwater.
  ASSERT_EQ(trace.states.size(), 1u);
  EXPECT_EQ(trace.states[0].area, 0u);
  EXPECT_EQ(trace.states[0].index, 0u);
  EXPECT_EQ(trace.states[0].used, 0u);
  EXPECT_LT(trace.states[0].line, trace.events[0].line);
}

// A capture that started while the pool was in use: the state says where
// each area's cursor was and how many slots were taken.
void expect_mid_stream_state(const Trace& trace, std::size_t areas, std::uint64_t hiwater) {
  ASSERT_EQ(trace.states.size(), areas + 1);
  const TraceState& pool = trace.states[0];
  EXPECT_FALSE(pool.area);
  EXPECT_EQ(pool.total_used, 3u);
  EXPECT_EQ(pool.used_hiwater, hiwater);
  EXPECT_EQ(trace.states[1].area, 0u);
  EXPECT_EQ(trace.states[1].index, 130u);
  EXPECT_EQ(trace.states[1].used, 2u);
  EXPECT_EQ(trace.states[2].area, 1u);
  EXPECT_EQ(trace.states[2].index, 12u);
  EXPECT_EQ(trace.states[2].used, 1u);
  for (const TraceState& s : trace.states) {
    EXPECT_LT(s.line, trace.events[0].line);
  }
}

void expect_replayed_from_state(const ReplayReport& r, std::uint64_t areas) {
  EXPECT_EQ(r.unmatched_unmaps, 0u);
  EXPECT_EQ(r.pool_state.earlier_mappings, 2u);
  EXPECT_EQ(r.pool_state.earlier_slots, 3u);
  EXPECT_EQ(r.pool_state.cursors_set, areas);
  EXPECT_EQ(r.pool_state.state_values_differing, 0u);
  ASSERT_TRUE(r.slot_agreement) << r.slot_agreement_unavailable;
  EXPECT_EQ(r.slot_agreement->matched, 3u);
  EXPECT_EQ(r.slot_agreement->compared, 3u);
  EXPECT_EQ(r.final_used_slots, 0u);
}

TEST(CaptureConvert, Linux66MidStreamWithPoolState) {
  const Trace trace = convert("capture-raw-6.6-x86_64.txt");
  ASSERT_TRUE(trace.pool);
  EXPECT_EQ(trace.pool->nareas, 2u);
  expect_mid_stream_state(trace, 2, 57);
  ASSERT_EQ(trace.events.size(), 8u);
  EXPECT_TRUE(trace.events[0].has(recorded::kAllocSize));  // 6.6 still passes alloc_size
  EXPECT_EQ(trace.devices[1].id, "virtio1");
  EXPECT_EQ(trace.devices[1].min_align_mask, 0u);  // no dma_parms: read as a fault

  // Two unmaps name mappings made before the capture began: replay holds
  // their slots from the start, which adds up to the recorded total_used,
  // and starts each area where the kernel's cursor was.
  Result<ReplayReport> r = replay_trace(trace, {});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->policy, "linux");
  expect_replayed_from_state(*r, 2);
}

TEST(CaptureConvert, Linux612MidStreamWithPoolState) {
  const Trace trace = convert("capture-raw-6.12-x86_64.txt");
  ASSERT_TRUE(trace.pool);
  EXPECT_EQ(trace.pool->nareas, 4u);
  expect_mid_stream_state(trace, 4, 130);
  EXPECT_EQ(trace.states[4].area, 3u);
  EXPECT_EQ(trace.states[4].index, 4095u);
  ASSERT_EQ(trace.events.size(), 8u);
  EXPECT_FALSE(trace.events[0].has(recorded::kAllocSize));
  Result<ReplayReport> r = replay_trace(trace, {});
  ASSERT_TRUE(r) << r.error().message();
  expect_replayed_from_state(*r, 4);
}

TEST(CaptureConvert, StateThatDoesNotMatchThePoolIsLeftOut) {
  // The probe's offsets were wrong: it read a nareas that is not the pool's.
  const std::string raw = ::testing::TempDir() + "capture-wrong-layout.raw";
  {
    std::FILE* f = std::fopen(raw.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(
        "#swiotlb-capture kernel 6.6.58-amd64\n"
        "#swiotlb-capture pool default start=0xbbe00000 nslabs=8192 nareas=2\n"
        "  fio-1 [000] ..... 1.000001: stlb_state: (swiotlb_tbl_map_single+0x0/0x2b0) "
        "nareas=3221225472 a0_index=1 a0_used=1\n",
        f);
    std::fclose(f);
  }
  const Trace trace = convert_path(raw);
  EXPECT_TRUE(trace.states.empty());
  EXPECT_TRUE(has_comment(trace, "names 3221225472 areas, the pool 2: left out"));
}

TEST(CaptureConvert, StateLinesParse) {
  const std::string head =
      "# swiotlb-trace v1\n# pool default start=0x1000000 nslabs=1024 nareas=2\n"
      "# device d min_align_mask=0x0\n";
  Result<Trace> good = parse_trace(head +
                                   "# state total_used=7 used_hiwater=0x20 future_key=1\n"
                                   "# state area=1 index=5 used=7\n"
                                   "map - - d 0x5000 4096 - - 1 - 0x1000000\n"
                                   "# state area=0 index=2\n");
  ASSERT_TRUE(good) << good.error().message();
  ASSERT_EQ(good->states.size(), 3u);
  EXPECT_EQ(good->states[0].used_hiwater, 0x20u);
  EXPECT_FALSE(good->states[0].area);
  EXPECT_EQ(good->states[1].area, 1u);
  EXPECT_EQ(good->states[1].used, 7u);
  EXPECT_EQ(good->states[2].line, 7u);  // after an event: kept with its line
  EXPECT_FALSE(good->states[2].used);
  EXPECT_TRUE(good->comments.empty());

  const auto error_of = [&](const std::string& line) {
    Result<Trace> t = parse_trace(head + line + "\n");
    return t ? std::string("parsed") : t.error().message();
  };
  EXPECT_THAT(error_of("# state area=0 index=lots"),
              HasSubstr("field 'index': 'lots' is not a number"));
  EXPECT_THAT(error_of("# state area=0 index"), HasSubstr("'index' in '# state' is not key=value"));
  EXPECT_THAT(error_of("# state index=3"), HasSubstr("field 'area' is missing"));
  EXPECT_THAT(error_of("# state area=0 total_used=3"), HasSubstr("one or the other"));
  EXPECT_THAT(error_of("# state area=0x100000000 index=1"), HasSubstr("out of range"));
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
