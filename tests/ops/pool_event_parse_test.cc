// Pool events in trace v1 (pool_add, pool_del): what the parser reads, where
// it puts them among the events, the writer's round trip, and the message
// for each kind of bad line (each names the line and the field).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "swiotlb/ops/trace_parser.h"
#include "swiotlb/ops/trace_writer.h"

namespace swiotlb::ops {
namespace {

using ::testing::HasSubstr;

constexpr const char* kHeader =
    "# swiotlb-trace v1\n"
    "# kernel 6.12.117\n"
    "# pool default start=0x1000000 nslabs=512 nareas=4\n"
    "# device d min_align_mask=0xfff\n";

// Lines 1-4 are the header; the first line after it is line 5.
std::string with_header(const std::string& lines) {
  return std::string(kHeader) + lines;
}

std::string message_for(const std::string& lines, const ParseOptions& options = {}) {
  Result<Trace> trace = parse_trace(with_header(lines), options);
  EXPECT_FALSE(trace) << "parsed without error:\n" << lines;
  return trace ? std::string() : trace.error().message();
}

TEST(PoolEvents, ReadsAddAndDelAmongTheEvents) {
  Result<Trace> trace =
      parse_trace(with_header("map 10 0 d 0x10000000 4096 - 0x0 2 0x0 0x1000000\n"
                              "pool_add 20 - p1 grown 0x2000000 512 4   # the worker's pool\n"
                              "  pool_add\t30 3 t1 transient 0x140000000 2 1\n"
                              "map 30 3 d 0x10002000 4096 - 0x0 2 0x0 0x140000000\n"
                              "unmap 40 3 d 0x140000000 4096 2 0x0\n"
                              "pool_del 40 3 t1\n"));
  ASSERT_TRUE(trace) << trace.error().message();
  ASSERT_EQ(trace->events.size(), 3u);
  ASSERT_EQ(trace->pool_events.size(), 3u);
  const TracePoolEvent& grown = trace->pool_events[0];
  EXPECT_EQ(grown.op, TracePoolOp::add);
  EXPECT_EQ(grown.kind, TracePoolKind::grown);
  EXPECT_EQ(grown.name, "p1");
  EXPECT_EQ(grown.t_ns, 20u);
  EXPECT_FALSE(grown.cpu);
  EXPECT_EQ(grown.start, 0x2000000u);
  EXPECT_EQ(grown.nslabs, 512u);
  EXPECT_EQ(grown.nareas, 4u);
  EXPECT_EQ(grown.before_event, 1u);
  EXPECT_EQ(grown.line, 6u);
  const TracePoolEvent& transient = trace->pool_events[1];
  EXPECT_EQ(transient.kind, TracePoolKind::transient);
  EXPECT_EQ(transient.cpu, 3u);
  EXPECT_EQ(transient.before_event, 1u);
  const TracePoolEvent& del = trace->pool_events[2];
  EXPECT_EQ(del.op, TracePoolOp::del);
  EXPECT_EQ(del.name, "t1");
  EXPECT_EQ(del.before_event, 3u);
  EXPECT_EQ(del.line, 10u);
}

TEST(PoolEvents, TheWriterPutsThemBackWhereTheyWere) {
  const std::string lines =
      "pool_add 5 - p1 grown 0x2000000 512 4\n"
      "map 10 0 d 0x10000000 4096 - 0x0 2 0x0 0x2000000\n"
      "pool_add 20 1 t1 transient 0x140000000 2 1\n"
      "map 20 1 d 0x10002000 4096 - 0x0 2 0x0 0x140000000\n"
      "unmap 30 1 d 0x140000000 4096 2 0x0\n"
      "pool_del 30 1 t1\n";
  Result<Trace> trace = parse_trace(with_header(lines));
  ASSERT_TRUE(trace) << trace.error().message();
  const std::string written = format_trace(*trace);
  EXPECT_THAT(written, HasSubstr(lines));
  Result<Trace> again = parse_trace(written);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(format_trace(*again), written);
}

TEST(PoolEvents, OldTracesHaveNone) {
  Result<Trace> trace = parse_trace(with_header("map - 0 d 0x10000000 4096 - 0x0 2 0x0 -\n"));
  ASSERT_TRUE(trace) << trace.error().message();
  EXPECT_TRUE(trace->pool_events.empty());
}

TEST(PoolEvents, BadLinesNameTheField) {
  EXPECT_EQ(message_for("pool_add 1 0 p1 grown 0x2000000 512\n"),
            "line 5: field 'nareas' is missing (a pool_add line has 8 fields)");
  EXPECT_EQ(message_for("pool_add 1 0 p1 grown 0x2000000 512 4 9\n"),
            "line 5: extra field 9 '9' (a pool_add line has 8 fields)");
  EXPECT_EQ(message_for("pool_del 1 0\n"),
            "line 5: field 'name' is missing (a pool_del line has 4 fields)");
  EXPECT_EQ(message_for("pool_add 1 0 p1 grown 0x2000000 512 4\npool_del 1 0 p1 x\n"),
            "line 6: extra field 5 'x' (a pool_del line has 4 fields)");
  EXPECT_EQ(message_for("pool_add 1 0 p1 huge 0x2000000 512 4\n"),
            "line 5: field 'kind': 'huge' is not a pool kind (grown, transient)");
  EXPECT_EQ(message_for("pool_add 1 0 p1 grown 0x2000000 5x2 4\n"),
            "line 5: field 'nslabs': '5x2' is not a number");
  EXPECT_EQ(message_for("pool_add 1 0 p1 grown - 512 4\n"),
            "line 5: field 'start' must be recorded ('-' is not allowed)");
  EXPECT_EQ(message_for("pool_add 1 0 p1 grown 0x2000000 0 4\n"),
            "line 5: field 'nslabs': a pool of 0 slots");
  EXPECT_EQ(message_for("pool_add 1 0 p1 grown 0x2000000 512 3\n"),
            "line 5: field 'nareas': 3 is not a power of two");
  EXPECT_EQ(message_for("pool_add 1 0 t1 transient 0x140000000 2 2\n"),
            "line 5: field 'nareas': a transient pool has 1 area, not 2");
  EXPECT_EQ(message_for("pool_add 1x 0 p1 grown 0x2000000 512 4\n"),
            "line 5: field 't_ns': '1x' is not a number");
  EXPECT_EQ(message_for("pool_del 1 0x100000000 p1\n"),
            "line 5: field 'cpu': 0x100000000 is too large for the field");
  EXPECT_EQ(message_for("pool_add 1 0 p1 grown 0xfffffffffffff000 512 4\n"),
            "line 5: field 'nslabs': 512 slots at 0xfffffffffffff000 pass the end of memory");
}

TEST(PoolEvents, NamesMustMatchLivePools) {
  EXPECT_EQ(message_for("pool_del 1 0 p9\n"),
            "line 5: field 'name': no pool 'p9' to delete (no pool_add named it, or it was "
            "deleted already)");
  EXPECT_EQ(message_for("pool_add 1 0 p1 grown 0x2000000 512 4\n"
                        "pool_add 2 0 p1 grown 0x3000000 512 4\n"),
            "line 6: field 'name': pool 'p1' is already there (delete it first)");
  EXPECT_EQ(message_for("pool_del 1 0 default\n"),
            "line 5: field 'name': 'default' is the default pool, never deleted");
  EXPECT_EQ(message_for("pool_add 1 0 default grown 0x2000000 512 4\n"),
            "line 5: field 'name': pool 'default' is already there (delete it first)");
  // A name may come back once its pool was deleted.
  Result<Trace> trace =
      parse_trace(with_header("pool_add 1 0 t grown 0x2000000 128 1\n"
                              "pool_del 2 0 t\n"
                              "pool_add 3 0 t grown 0x2000000 128 1\n"));
  EXPECT_TRUE(trace) << trace.error().message();
}

TEST(PoolEvents, AreNeverSkipped) {
  ParseOptions skip;
  skip.skip_bad = true;
  EXPECT_THAT(message_for("pool_add 1 0 p1 grown 0x2000000 512\n", skip),
              HasSubstr("field 'nareas' is missing"));
}

// A word that only starts like a pool event is an unknown op, as before.
TEST(PoolEvents, OtherWordsAreUnknownOps) {
  EXPECT_THAT(message_for("pool_addx 1 0 p1 grown 0x2000000 512 4\n"),
              HasSubstr("unknown op 'pool_addx'"));
  EXPECT_THAT(message_for("p\n"), HasSubstr("unknown op 'p'"));
}

}  // namespace
}  // namespace swiotlb::ops
