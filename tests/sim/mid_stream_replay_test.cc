// Replay of a trace that starts mid-stream: the recorded 6.1 trace cut at a
// busy point, with the pool's state at the cut worked out from the kernel's
// own answers in the trace (not from a replay), must still get every
// kernel slot after the cut; a state that does not add up leaves maps out
// and says why; the parsed and streamed replays agree.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>

#include "swiotlb/core/address.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/report_json.h"
#include "swiotlb/sim/trace_parser.h"
#include "swiotlb/sim/trace_writer.h"

namespace swiotlb::sim {
namespace {

using ::testing::HasSubstr;

const std::string kSample =
    std::string(SWIOTLB_TEST_DATA) + "/linux-6.1-nvme-randrw-256k-qd32.trace";

// The slots of one of the kernel's mappings, from its map event: 6.1 keeps
// orig's low bits (under min_align_mask, within a slot) in the bounce
// address, and takes nr_slots(offset + alloc_size) slots from there.
struct KernelRun {
  std::uint64_t first_slot = 0;
  std::uint64_t nslots = 0;
};

KernelRun run_of(const Trace& trace, const TraceEvent& map) {
  const std::uint64_t offset = map.tlb & (kSlotSize - 1);
  const std::uint64_t bytes = map.has(recorded::kAllocSize) ? map.alloc_size : map.size;
  return {(map.tlb - trace.pool->start) >> kSlotShift,
          (offset + bytes + kSlotSize - 1) >> kSlotShift};
}

// The sample cut before event `cut`: the events from there on, and `# state`
// lines with the kernel's cursor and slots in use at that point.
struct Cut {
  Trace trace;
  std::uint64_t live_mappings = 0;
  std::uint64_t live_slots = 0;
};

Cut cut_sample(const Trace& whole, std::size_t cut, std::int64_t used_error = 0) {
  std::map<std::uint64_t, KernelRun> live;  // by bounce address
  std::uint64_t cursor = 0;
  for (std::size_t i = 0; i < cut; ++i) {
    const TraceEvent& e = whole.events[i];
    if (e.op == TraceOp::map && e.tlb != kInvalidAddress) {
      const KernelRun run = run_of(whole, e);
      live[e.tlb] = run;
      cursor = run.first_slot + run.nslots;  // the pool has one area
    } else if (e.op == TraceOp::unmap) {
      live.erase(e.tlb);
    }
  }
  Cut out;
  out.trace.kernel = whole.kernel;
  out.trace.pool = whole.pool;
  out.trace.devices = whole.devices;
  out.trace.events.assign(whole.events.begin() + static_cast<std::ptrdiff_t>(cut),
                          whole.events.end());
  out.live_mappings = live.size();
  for (const auto& [tlb, run] : live) {
    out.live_slots += run.nslots;
  }
  const std::uint32_t line = out.trace.events.front().line;
  TraceState pool;
  pool.line = line - 2;
  pool.total_used =
      static_cast<std::uint64_t>(static_cast<std::int64_t>(out.live_slots) + used_error);
  pool.used_hiwater = 4096;  // history: not checked
  TraceState area;
  area.line = line - 1;
  area.area = 0;
  area.index = cursor >= whole.pool->nslabs ? 0 : cursor;
  area.used = pool.total_used;
  out.trace.states = {pool, area};
  return out;
}

// The busiest point of the sample's first half: the most live mappings.
std::size_t busiest_cut(const Trace& whole) {
  std::size_t best = 1;
  std::int64_t live = 0;
  std::int64_t most = 0;
  for (std::size_t i = 0; i < whole.events.size() / 2; ++i) {
    const TraceEvent& e = whole.events[i];
    live += e.op == TraceOp::map && e.tlb != kInvalidAddress ? 1 : 0;
    live -= e.op == TraceOp::unmap ? 1 : 0;
    if (live > most) {
      most = live;
      best = i + 1;
    }
  }
  return best;
}

Trace load_sample() {
  Result<Trace> trace = load_trace(kSample);
  EXPECT_TRUE(trace) << trace.error().message();
  return trace ? std::move(*trace) : Trace{};
}

std::uint64_t maps_in(const Trace& trace) {
  std::uint64_t maps = 0;
  for (const TraceEvent& e : trace.events) {
    maps += e.op == TraceOp::map ? 1 : 0;
  }
  return maps;
}

TEST(MidStreamReplay, CutSampleGetsEveryKernelSlotAfterTheCut) {
  const Trace whole = load_sample();
  ASSERT_TRUE(whole.pool);
  const std::size_t at = busiest_cut(whole);
  const Cut cut = cut_sample(whole, at);
  ASSERT_GT(cut.live_mappings, 3u) << "the cut should fall where mappings are live";

  Result<ReplayReport> r = replay_trace(cut.trace, {});
  ASSERT_TRUE(r) << r.error().message();
  const PoolStateReport& p = r->pool_state;
  EXPECT_TRUE(p.state_recorded);
  EXPECT_EQ(p.earlier_mappings, cut.live_mappings);
  EXPECT_EQ(p.earlier_slots, cut.live_slots);
  EXPECT_EQ(p.earlier_not_placed, 0u);
  EXPECT_EQ(p.cursors_set, 1u);
  EXPECT_EQ(p.state_values_checked, 2u);  // total_used and the area's used
  EXPECT_EQ(p.state_values_differing, 0u);
  ASSERT_TRUE(p.known_from_line);
  EXPECT_TRUE(p.unknown_reason.empty());
  EXPECT_EQ(r->unmatched_unmaps, 0u);
  EXPECT_EQ(r->final_used_slots, 0u);
  ASSERT_TRUE(r->slot_agreement) << r->slot_agreement_unavailable;
  EXPECT_EQ(r->slot_agreement->compared, maps_in(cut.trace));
  EXPECT_EQ(r->slot_agreement->matched, r->slot_agreement->compared);
  EXPECT_EQ(r->slot_agreement->left_out, 0u);
}

TEST(MidStreamReplay, WithoutTheStateTheCursorIsWrongAndTheReplayDiffers) {
  // The same cut with no `# state` lines: the replay assumes an empty pool,
  // as it always did; the kernel's slots then differ (this is what the
  // state is for) and nothing is inferred.
  const Trace whole = load_sample();
  Cut cut = cut_sample(whole, busiest_cut(whole));
  cut.trace.states.clear();
  Result<ReplayReport> r = replay_trace(cut.trace, {});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_FALSE(r->pool_state.state_recorded);
  EXPECT_EQ(r->pool_state.earlier_mappings, 0u);
  EXPECT_EQ(r->unmatched_unmaps, cut.live_mappings);
  ASSERT_TRUE(r->slot_agreement);
  EXPECT_LT(r->slot_agreement->matched, r->slot_agreement->compared);
}

TEST(MidStreamReplay, StateThatDoesNotAddUpLeavesMapsOutAndSaysWhy) {
  // The kernel held 5 slots more than the trace's unmaps account for: a
  // mapping made before the capture was never unmapped in it.
  const Trace whole = load_sample();
  const Cut cut = cut_sample(whole, busiest_cut(whole), 5);
  Result<ReplayReport> r = replay_trace(cut.trace, {});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->pool_state.state_values_differing, 2u);
  ASSERT_TRUE(r->pool_state.first_differing_line);
  EXPECT_FALSE(r->pool_state.known_from_line);
  EXPECT_FALSE(r->slot_agreement);
  EXPECT_THAT(r->slot_agreement_unavailable, HasSubstr("never unmapped"));
  EXPECT_THAT(r->pool_state.unknown_reason,
              HasSubstr(std::to_string(cut.live_slots + 5) + " slots where the replay holds " +
                        std::to_string(cut.live_slots)));
  const auto json = to_json(*r);
  EXPECT_EQ(json["pool_state"]["known_from_line"], nullptr);
  EXPECT_EQ(json["pool_state"]["earlier_mappings"], cut.live_mappings);
  EXPECT_THAT(json["pool_state"]["left_out_reason"].get<std::string>(),
              HasSubstr("never unmapped"));
}

TEST(MidStreamReplay, AreaWithoutACursorLeavesMapsOut) {
  const Trace whole = load_sample();
  Cut cut = cut_sample(whole, busiest_cut(whole));
  cut.trace.states.pop_back();  // only the pool's line: no area cursor
  Result<ReplayReport> r = replay_trace(cut.trace, {});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_FALSE(r->slot_agreement);
  EXPECT_THAT(r->slot_agreement_unavailable, HasSubstr("search cursor of 1 of the 1 areas"));
}

TEST(MidStreamReplay, StreamedReplayFindsTheSameStateAsTheParsedOne) {
  const Trace whole = load_sample();
  const Cut cut = cut_sample(whole, busiest_cut(whole));
  std::string text = format_trace(cut.trace);
  // Past the streaming threshold (1 MiB) with comment lines after the
  // events, so that the text is replayed as it is read, in two passes.
  const std::string pad = "# padding to make the trace long enough to stream\n";
  while (text.size() < (std::size_t{1} << 21)) {
    text += pad;
  }
  Result<ReplayReport> streamed = replay_trace_text(text, {}, {});
  ASSERT_TRUE(streamed) << streamed.error().message();
  Result<ReplayReport> parsed = replay_trace(cut.trace, {});
  ASSERT_TRUE(parsed);
  EXPECT_EQ(streamed->pool_state.earlier_mappings, parsed->pool_state.earlier_mappings);
  EXPECT_EQ(streamed->pool_state.earlier_slots, parsed->pool_state.earlier_slots);
  ASSERT_TRUE(streamed->slot_agreement) << streamed->slot_agreement_unavailable;
  EXPECT_EQ(streamed->slot_agreement->matched, parsed->slot_agreement->matched);
  EXPECT_EQ(streamed->slot_agreement->compared, parsed->slot_agreement->compared);
  EXPECT_EQ(streamed->unmatched_unmaps, 0u);
}

TEST(MidStreamReplay, StateLinesSurviveWritingAndReading) {
  const Trace whole = load_sample();
  const Cut cut = cut_sample(whole, busiest_cut(whole));
  Result<Trace> back = parse_trace(format_trace(cut.trace));
  ASSERT_TRUE(back) << back.error().message();
  ASSERT_EQ(back->states.size(), 2u);
  EXPECT_EQ(back->states[0].total_used, cut.trace.states[0].total_used);
  EXPECT_EQ(back->states[0].used_hiwater, 4096u);
  EXPECT_EQ(back->states[1].area, 0u);
  EXPECT_EQ(back->states[1].index, cut.trace.states[1].index);
  EXPECT_EQ(back->states[1].used, cut.trace.states[1].used);
  EXPECT_LT(back->states[1].line, back->events.front().line);
}

}  // namespace
}  // namespace swiotlb::sim
