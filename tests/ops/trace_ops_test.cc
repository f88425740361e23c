// The op vocabulary through trace v1: ops written as a trace and read back
// are the same ops; a recorded trace reads as the ops it says; what trace v1
// cannot carry is refused by name.
#include "swiotlb/ops/trace_ops.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "swiotlb/core/address.h"
#include "swiotlb/ops/trace_parser.h"
#include "swiotlb/ops/trace_writer.h"

namespace swiotlb::ops {
namespace {

using ::testing::HasSubstr;

// Ops -> trace -> text -> trace -> ops.
std::vector<Op> round_trip(const std::vector<Op>& ops) {
  Result<Trace> written = trace_from_ops(ops);
  EXPECT_TRUE(written) << written.error().message();
  if (!written) {
    return {};
  }
  const std::string text = format_trace(*written);
  Result<Trace> read = parse_trace(text);
  EXPECT_TRUE(read) << read.error().message() << "\n" << text;
  if (!read) {
    return {};
  }
  return ops_from_trace(*read);
}

Map nvme_map(std::uint64_t orig, std::uint64_t size) {
  Map m;
  m.orig = orig;
  m.size = size;
  m.min_align_mask = 0xfff;
  m.seg_boundary_mask = 0xffffffff;
  m.dir = Direction::to_device;
  m.cpu = 3;
  return m;
}

TEST(TraceOps, EveryKindTraceV1CarriesComesBack) {
  Map recorded = nvme_map(0x101ab1000, 4096);
  recorded.alloc_size = 8192;
  recorded.alloc_align_mask = 0xfff;
  recorded.attrs = 0x20;
  recorded.recorded_tlb = 0x79b31000;
  Map failed = nvme_map(0x2000, 512);
  failed.recorded_tlb = kInvalidAddress;
  Map other_device;  // no masks: a second device
  other_device.orig = 0x5000;
  other_device.size = 100;
  const std::vector<Op> ops = {
      recorded,
      Sync{0x79b31000, 4096, Direction::to_device, SyncFor::device},
      Tick{1500},
      failed,
      other_device,
      Grow{2048, 2},
      Sync{0x79b31010, 16, Direction::from_device, SyncFor::cpu},
      Tick{7},
      Unmap{0x79b31000, 4096, 0xfff, Direction::to_device, 0x20},
      Unmap{0x6000, 100, 0, Direction::bidirectional, 0},
      Grow{64, 1},
  };
  EXPECT_EQ(round_trip(ops), ops);
}

TEST(TraceOps, TicksMergeAndATrailingTickHasNoLine) {
  const std::vector<Op> ops = {Tick{5}, Tick{0}, Tick{10}, nvme_map(0x1000, 8), Tick{3}};
  const std::vector<Op> expected = {Tick{15}, nvme_map(0x1000, 8)};
  EXPECT_EQ(round_trip(ops), expected);
}

TEST(TraceOps, RandomSequencesComeBack) {
  std::mt19937_64 rng(15);
  for (int run = 0; run < 200; ++run) {
    std::vector<Op> ops;
    const int n = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      const bool last_was_tick = !ops.empty() && std::holds_alternative<Tick>(ops.back());
      switch (rng() % 5) {
        case 0: {
          Map m;
          m.orig = rng();
          m.size = 1 + rng() % 300000;
          m.alloc_size = rng() % 2 == 0 ? 0 : m.size + rng() % 4096;
          m.alloc_align_mask = (std::uint64_t{1} << (rng() % 16)) - 1;
          m.min_align_mask = (std::uint64_t{1} << (rng() % 14)) - 1;
          m.seg_boundary_mask = rng() % 2 == 0 ? ~std::uint64_t{0} : 0xffff;
          m.dir = static_cast<Direction>(rng() % 3);
          m.attrs = static_cast<std::uint32_t>(rng() % 0x400);
          m.cpu = static_cast<std::uint32_t>(rng() % 64);
          if (rng() % 2 == 0) {
            m.recorded_tlb = rng();
          }
          ops.emplace_back(m);
          break;
        }
        case 1:
          ops.emplace_back(Unmap{rng(), 1 + rng() % 65536, (std::uint64_t{1} << (rng() % 14)) - 1,
                                 static_cast<Direction>(rng() % 3),
                                 static_cast<std::uint32_t>(rng() % 0x400)});
          break;
        case 2:
          // A sync names no device masks: it reads back with the first
          // device, so the test makes it come after a map or an unmap.
          ops.emplace_back(Sync{rng(), 1 + rng() % 4096, static_cast<Direction>(rng() % 3),
                                rng() % 2 == 0 ? SyncFor::cpu : SyncFor::device});
          break;
        case 3:
          ops.emplace_back(Grow{1 + rng() % 100000, 1u << (rng() % 4)});
          break;
        default:
          if (!last_was_tick) {
            ops.emplace_back(Tick{1 + rng() % 1'000'000'000});
          }
          break;
      }
    }
    // Normalized as the reader gives them back: a trailing Tick has no line.
    while (!ops.empty() && std::holds_alternative<Tick>(ops.back())) {
      ops.pop_back();
    }
    EXPECT_EQ(round_trip(ops), ops) << "run " << run;
  }
}

TEST(TraceOps, IovaOpsAreRefusedByName) {
  const std::vector<Op> ops = {nvme_map(0x1000, 8), IovaAlloc{0, 4, 0xfffff, false}};
  Result<Trace> written = trace_from_ops(ops);
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().code(), Errc::invalid_argument);
  EXPECT_THAT(written.error().message(), HasSubstr("op 1: iova_alloc is an IOVA op"));
}

TEST(TraceOps, ADirectionTraceV1CannotHoldIsRefused) {
  Map none = nvme_map(0x1000, 8);
  none.dir = Direction::none;
  const std::vector<Op> ops = {Tick{1}, none};
  Result<Trace> written = trace_from_ops(ops);
  ASSERT_FALSE(written);
  EXPECT_THAT(written.error().message(), HasSubstr("op 1: map with direction 3"));
}

TEST(TraceOps, AGrowTraceV1CannotHoldIsRefused) {
  const std::vector<Op> ops = {Grow{64, 3}};
  Result<Trace> written = trace_from_ops(ops);
  ASSERT_FALSE(written);
  EXPECT_THAT(written.error().message(), HasSubstr("a grow of 64 slots in 3 areas"));
  const std::vector<Op> empty = {Grow{0, 1}};
  EXPECT_FALSE(trace_from_ops(empty));
}

TEST(TraceOps, ARecordedTraceReadsAsItsOps) {
  Result<Trace> trace =
      load_trace(std::string(SWIOTLB_TEST_DATA) + "/linux-6.1-nvme-randrw-256k-qd32.trace");
  ASSERT_TRUE(trace) << trace.error().message();
  const std::vector<Op> ops = ops_from_trace(*trace);
  ASSERT_EQ(ops.size(), trace->events.size());  // no time recorded, no pools added
  int maps = 0;
  int unmaps = 0;
  for (const Op& op : ops) {
    if (const Map* m = std::get_if<Map>(&op)) {
      ++maps;
      EXPECT_TRUE(m->recorded_tlb.has_value());
    } else if (std::holds_alternative<Unmap>(op)) {
      ++unmaps;
    }
  }
  EXPECT_EQ(maps, 282);
  EXPECT_EQ(unmaps, 282);
  // The first line: map - 0 0000:00:05.0 0x101ab1000 4096 4096 0x0 2 0x0 0x79b31000,
  // on the NVMe device (min_align_mask=0xfff seg_boundary_mask=0xffffffff).
  Map first = nvme_map(0x101ab1000, 4096);
  first.alloc_size = 4096;
  first.dir = Direction::from_device;
  first.cpu = 0;
  first.recorded_tlb = 0x79b31000;
  EXPECT_EQ(std::get<Map>(ops[0]), first);
  EXPECT_EQ(std::get<Unmap>(ops[1]),
            (Unmap{0x79b31000, 4096, 0xfff, Direction::from_device, 0x20}));
}

TEST(TraceOps, GrownPoolsAreGrowsAndTheKernelsOwnPoolsAreLeftOut) {
  Result<Trace> trace =
      load_trace(std::string(SWIOTLB_TEST_DATA) + "/linux-6.12-dynamic-synthetic.trace");
  ASSERT_TRUE(trace) << trace.error().message();
  std::size_t grown_adds = 0;
  for (const TracePoolEvent& p : trace->pool_events) {
    grown_adds += p.op == TracePoolOp::add && p.kind == TracePoolKind::grown ? 1 : 0;
  }
  // One grown pool added; transient pools added and pools deleted besides.
  ASSERT_EQ(grown_adds, 1u);
  ASSERT_GT(trace->pool_events.size(), grown_adds);
  std::vector<Grow> grows;
  std::size_t events = 0;
  for (const Op& op : ops_from_trace(*trace)) {
    if (const Grow* g = std::get_if<Grow>(&op)) {
      grows.push_back(*g);
    } else if (!std::holds_alternative<Tick>(op)) {
      ++events;
    }
  }
  EXPECT_EQ(events, trace->events.size());
  ASSERT_EQ(grows.size(), 1u);
  for (const TracePoolEvent& p : trace->pool_events) {
    if (p.op == TracePoolOp::add && p.kind == TracePoolKind::grown) {
      EXPECT_EQ(grows[0], (Grow{p.nslabs, p.nareas}));
    }
  }
}

TEST(TraceOps, RecordedTimeReadsAsTicks) {
  const std::string text =
      "# swiotlb-trace v1\n"
      "# device d min_align_mask=0\n"
      "map 100 0 d 0x1000 8 - 0x0 0 0x0 -\n"
      "sync_cpu 100 0 d 0x1000 8 0\n"
      "unmap 250 - d 0x1000 8 0 0x0\n";
  Result<Trace> trace = parse_trace(text);
  ASSERT_TRUE(trace) << trace.error().message();
  const std::vector<Op> ops = ops_from_trace(*trace);
  ASSERT_EQ(ops.size(), 5u);
  EXPECT_EQ(std::get<Tick>(ops[0]), Tick{100});
  EXPECT_TRUE(std::holds_alternative<Map>(ops[1]));
  EXPECT_TRUE(std::holds_alternative<Sync>(ops[2]));
  EXPECT_EQ(std::get<Tick>(ops[3]), Tick{150});
  EXPECT_TRUE(std::holds_alternative<Unmap>(ops[4]));
}

TEST(OpName, NamesEveryKind) {
  EXPECT_EQ(op_name(Map{}), "map");
  EXPECT_EQ(op_name(Unmap{}), "unmap");
  EXPECT_EQ(op_name(Sync{0, 0, Direction::to_device, SyncFor::cpu}), "sync_cpu");
  EXPECT_EQ(op_name(Sync{0, 0, Direction::to_device, SyncFor::device}), "sync_dev");
  EXPECT_EQ(op_name(Grow{}), "grow");
  EXPECT_EQ(op_name(Tick{}), "tick");
  EXPECT_EQ(op_name(IovaReserve{}), "iova_reserve");
  EXPECT_EQ(op_name(IovaAlloc{}), "iova_alloc");
  EXPECT_EQ(op_name(IovaFree{}), "iova_free");
  EXPECT_EQ(not_taken(Grow{}, "a SlotPool").message(), "a SlotPool takes no grow op");
}

}  // namespace
}  // namespace swiotlb::ops
