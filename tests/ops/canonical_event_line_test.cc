// The reader's fast path for event lines in the writer's form
// (src/ops/canonical_event_line.h): it takes every line the writer writes,
// and on any line, written or mutated, the reader gives exactly the events
// and the errors its general path gives.
//
// The general path is reached by writing the same line with tabs between its
// fields: the general path reads a tab as it reads a space, the fast path
// declines any line that holds one.
#include "../../src/ops/canonical_event_line.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "swiotlb/ops/trace_parser.h"
#include "swiotlb/ops/trace_writer.h"

namespace swiotlb::ops {
namespace {

// A draw from `gen` at full size: rapidcheck narrows ranges for its first
// cases, and these properties want every value of a field from the start.
template <class T>
T draw(const rc::Gen<T>& gen) {
  return *rc::gen::resize(rc::kNominalSize, gen);
}

// Device 0 has a 12-byte id (two words apart), device 1 a short one,
// device 2 one longer than the short-id index keeps.
Trace header_trace() {
  Trace trace;
  trace.pool = TracePool{"default", 0x7c000000, 32768, 4, 0};
  for (const char* id : {"0000:00:04.0", "net", "a-device-id-longer-than-sixteen"}) {
    TraceDevice device;
    device.id = id;
    device.min_align_mask = 0xfff;
    trace.devices.push_back(device);
  }
  return trace;
}

// A value of up to 64 bits: mostly of up to 44 bits (13 digits at most), as
// in real traces, sometimes longer, to reach the fast path's length limit
// (15 digits) and the general path's (20).
rc::Gen<std::uint64_t> value_gen() {
  const auto with_bits = [](int lowest_shift) {
    return rc::gen::map(
        rc::gen::pair(rc::gen::arbitrary<std::uint64_t>(), rc::gen::inRange(lowest_shift, 64)),
        [](const std::pair<std::uint64_t, int>& v) { return v.first >> v.second; });
  };
  return rc::gen::weightedOneOf<std::uint64_t>({{9, with_bits(20)}, {1, with_bits(0)}});
}

TraceEvent event_gen() {
  TraceEvent e;
  e.op = draw(rc::gen::element(TraceOp::map, TraceOp::unmap, TraceOp::sync_cpu, TraceOp::sync_dev));
  e.recorded = static_cast<std::uint8_t>(draw(rc::gen::inRange(0, 32)));
  e.t_ns = draw(value_gen());
  e.cpu = static_cast<std::uint32_t>(draw(rc::gen::inRange<std::uint64_t>(0, 1u << 31)) >>
                                     draw(rc::gen::inRange(0, 31)));
  e.device = static_cast<std::uint16_t>(draw(rc::gen::inRange(0, 3)));
  e.orig = draw(value_gen());
  e.size = draw(value_gen());
  // Mostly the size again, as most maps allocate what they map (the fast
  // path takes that case apart), else its own value.
  e.alloc_size =
      draw(rc::gen::weightedOneOf<std::uint64_t>({{1, rc::gen::just(e.size)}, {1, value_gen()}}));
  e.alloc_align_mask = draw(rc::gen::element<std::uint64_t>(0, 0xfff, 0x1fff, 0xffff, 5));
  e.dir = draw(
      rc::gen::element(Direction::bidirectional, Direction::to_device, Direction::from_device));
  e.attrs = draw(rc::gen::element<std::uint32_t>(0, 0x20, 0xffffffff));
  e.tlb = draw(rc::gen::oneOf(value_gen(), rc::gen::just(~std::uint64_t{0})));
  return e;
}

std::string line_of(const Trace& header, const TraceEvent& e) {
  std::string line;
  append_trace_event(line, header, e);
  return line;
}

// The event line as the general path alone reads it.
std::string with_tabs(std::string line) {
  std::replace(line.begin(), line.end(), ' ', '\t');
  return line;
}

// The fast path on `line`, in a buffer with room for its reads.
const char* read_fast(const Trace& header, const std::string& line, TraceEvent& e) {
  const std::string buffer = line + std::string(kCanonicalLineReach, '\n');
  const auto intern = [&](std::string_view id, std::uint16_t& index) {
    for (std::size_t i = 0; i < header.devices.size(); ++i) {
      if (header.devices[i].id == id) {
        index = static_cast<std::uint16_t>(i);
        return true;
      }
    }
    return false;
  };
  const char* next = read_canonical_event_line(buffer.data(), e, intern, hex_pair_values());
  return next == nullptr ? nullptr : line.data() + (next - buffer.data());
}

// A trace of `lines` (each with its '\n'), followed by enough blank lines
// that the reader tries its fast path on every one of them.
std::string trace_text(const Trace& header, const std::vector<std::string>& lines) {
  std::string text = format_trace_header(header);
  for (const std::string& line : lines) {
    text += line;
  }
  return text + std::string(kCanonicalLineReach, '\n');
}

// What a parse gave, in a form to compare: the events, or the error, and the
// lines skipped.
struct Outcome {
  std::vector<std::string> events;  // written back, with their line numbers
  std::string error;
  std::vector<std::string> bad_lines;
  bool operator==(const Outcome&) const = default;
};

std::string describe(const TraceEvent& e) {
  return fmt::format("{} {} {} {} {} {} {} {} {} {} {} {} {}", e.line, static_cast<int>(e.op),
                     e.t_ns, e.cpu, e.device, e.orig, e.size, e.alloc_size, e.alloc_align_mask,
                     static_cast<int>(e.dir), e.attrs, e.tlb, e.recorded);
}

Outcome parse(const std::string& text, bool skip_bad) {
  ParseOptions options;
  options.skip_bad = skip_bad;
  Outcome outcome;
  Result<Trace> trace = parse_trace(text, options);
  if (!trace) {
    outcome.error = trace.error().message();
    return outcome;
  }
  for (const TraceEvent& e : trace->events) {
    outcome.events.push_back(describe(e));
  }
  for (const BadLine& bad : trace->bad_lines) {
    outcome.bad_lines.push_back(fmt::format("{}: {}", bad.line, bad.message));
  }
  return outcome;
}

void expect_same_as_general_path(const Trace& header, const std::vector<std::string>& lines) {
  std::vector<std::string> tabbed;
  for (const std::string& line : lines) {
    // A line made a comment by a mutation is kept as written: comments are
    // compared through the events around them only.
    const bool comment = line.find_first_not_of(" \t") != std::string::npos &&
                         line[line.find_first_not_of(" \t")] == '#';
    tabbed.push_back(comment ? line : with_tabs(line));
  }
  for (const bool skip_bad : {false, true}) {
    const Outcome fast = parse(trace_text(header, lines), skip_bad);
    const Outcome general = parse(trace_text(header, tabbed), skip_bad);
    RC_ASSERT(fast == general);
  }
}

TEST(CanonicalEventLine, TakesWhatTheWriterWrites) {
  const Trace header = header_trace();
  TraceEvent e;
  e.op = TraceOp::map;
  e.t_ns = 123456789012;
  e.cpu = 3;
  e.orig = 0x100000040;
  e.size = 1536;
  e.alloc_size = 1536;
  e.recorded = recorded::kTime | recorded::kCpu | recorded::kAllocSize;
  const std::string line = line_of(header, e);
  ASSERT_EQ(line, "map 123456789012 3 0000:00:04.0 0x100000040 1536 1536 0x0 0 0x0 -\n");
  TraceEvent read;
  EXPECT_EQ(read_fast(header, line, read), line.data() + line.size());
  EXPECT_EQ(describe(read), describe(e));
  EXPECT_EQ(read_fast(header, with_tabs(line), read), nullptr);
}

TEST(CanonicalEventLine, DeclinesWhatItDoesNotKnow) {
  const Trace header = header_trace();
  for (const char* line : {
           "map 1 0 0000:00:04.0 0x10 16 - 0x0 0 0x0 - # comment\n",      // a comment
           "map 1 0 0000:00:04.0 0x10 16 - 0x0 0 0x0 - \n",               // a trailing blank
           "map 1 0 0000:00:04.0 0x10 16 - 0x0 0 0x0 -\r\n",              // CRLF
           "map 1 0 0000:00:04.0 0X10 16 - 0x0 0 0x0 -\n",                // an upper-case 0X
           "map 1 0 0000:00:04.0 16 16 - 0x0 0 0x0 -\n",                  // a decimal address
           "map 1 0 0000:00:04.0 0x10 0x10 - 0x0 0 0x0 -\n",              // a hex size
           "map 0x1 0 0000:00:04.0 0x10 16 - 0x0 0 0x0 -\n",              // a hex time
           "map 1 0 0000:00:04.0 0x10 16 - 0 0 0x0 -\n",                  // a decimal mask
           "unmap 1 0 net 0x10 16 0 0\n",                                 // decimal attrs
           "map 1 0 0000:00:04.0 0x10 16 - 0x0 3 0x0 -\n",                // not a direction
           "map 1 0 0000:00:04.0 0x10 16 - 0x5 0 0x0 -\n",                // not a mask
           "map 1 0 0000:00:04.0 0x10 1234567890123456 - 0x0 0 0x0 -\n",  // 16 digits
           "map 1 0 0000:00:09.0 0x10 16 - 0x0 0 0x0 -\n",                // unknown device
           "map 1 0 0000:00:04.0 0x10 16 - 0x0 0 0x100000000 -\n",        // attrs > u32
           "map 1 0 0000:00:04.0 - 16 - 0x0 0 0x0 -\n",                   // orig must be there
           "map 1 0 0000:00:04.0 0x10 16 - 0x0 0 0x0\n",                  // a field missing
           "unmap 1 0 net 0x10 16 0 0x0 5\n",                             // a field extra
           "pool_del 1 0 extra\n",
       }) {
    TraceEvent read;
    EXPECT_EQ(read_fast(header, line, read), nullptr) << line;
  }
}

// alloc_size is taken as the size's bytes again when it repeats them: only
// when it repeats them all, its space included.
TEST(CanonicalEventLine, ReadsAnAllocSizeNextToItsSize) {
  const Trace header = header_trace();
  for (const char* fields : {"16 16", "16 160", "160 16", "1 1", "1 10", "10 1", "1234567 1234567",
                             "1234567 12345678", "12345678 12345678", "12345678 1234567",
                             "123456789012345 123456789012345", "16 -", "7 07", "07 7"}) {
    const std::string line = fmt::format("map 1 0 0000:00:04.0 0x10 {} 0x0 0 0x0 -\n", fields);
    TraceEvent fast;
    ASSERT_EQ(read_fast(header, line, fast), line.data() + line.size()) << line;
    const Result<Trace> general = parse_trace(trace_text(header, {with_tabs(line)}));
    ASSERT_TRUE(general) << general.error().message();
    ASSERT_EQ(general->events.size(), 1u);
    fast.line = general->events[0].line;
    EXPECT_EQ(describe(fast), describe(general->events[0])) << line;
  }
}

// The tails most lines end with (no mask, a direction, no attributes) are
// read at once; these lines are those tails and their near misses.
TEST(CanonicalEventLine, ReadsPlainTailsAsTheGeneralPathDoes) {
  const Trace header = header_trace();
  std::vector<std::string> lines;
  for (const char* tail :
       {"0x0 0 0x0 -", "0x0 2 0x0 0x5", "0x0 3 0x0 -", "0x0 / 0x0 -", "0x1 1 0x0 -", "0x0 1 0x1 -",
        "0x00 1 0x0 -", "0x0 1 0x00 -", "0x0 1 0x0  -", "0x0 1 0X0 -", "0x0 10 0x0 -", "0x0 1 -"}) {
    lines.push_back(fmt::format("map 1 0 net 0x10 16 16 {}\n", tail));
  }
  for (const char* tail : {"1 0x0", "2 0x0", "3 0x0", ": 0x0", "1 0x00", "1 0x0 ", "1 0x1",
                           "1 0x0\r", "01 0x0", "1 -"}) {
    lines.push_back(fmt::format("unmap 1 0 net 0x10 16 {}\n", tail));
  }
  for (const std::string& line : lines) {
    for (const bool skip_bad : {false, true}) {
      const Outcome fast = parse(trace_text(header, {line}), skip_bad);
      const Outcome general = parse(trace_text(header, {with_tabs(line)}), skip_bad);
      EXPECT_EQ(fast.events, general.events) << line;
      EXPECT_EQ(fast.error, general.error) << line;
      EXPECT_EQ(fast.bad_lines, general.bad_lines) << line;
    }
  }
}

// A '#' ends a field in the general path, so an event naming a device
// whose declared id holds one fails there; the fast path, which reads the
// '#' into the id, must not find that device.
TEST(CanonicalEventLine, FindsNoDeviceThroughAHash) {
  Trace header = header_trace();
  for (const char* id : {"dev#1", "dev", "0000:00:0#.0"}) {
    TraceDevice device;
    device.id = id;
    header.devices.push_back(device);
  }
  for (const char* line :
       {"map 1 0 dev#1 0x10 16 - 0x0 0 0x0 -\n", "unmap 1 0 0000:00:0#.0 0x10 16 0 0x0\n",
        "sync_cpu 1 0 dev#1 0x10 16 0\n"}) {
    for (const bool skip_bad : {false, true}) {
      const Outcome fast = parse(trace_text(header, {line}), skip_bad);
      const Outcome general = parse(trace_text(header, {with_tabs(line)}), skip_bad);
      EXPECT_TRUE(fast.events.empty()) << line;
      EXPECT_EQ(fast.error, general.error) << line;
      EXPECT_EQ(fast.bad_lines, general.bad_lines) << line;
    }
  }
}

// Addresses of every length, odd and even (hex digits are read in pairs),
// either case: up to 15 digits the fast path reads them as the general path
// does, longer ones it declines.
TEST(CanonicalEventLine, ReadsAddressesOfEveryLength) {
  const Trace header = header_trace();
  for (const std::string digits : {"f0e1d2c3b4a59687a", "0123456789abcdefA", "FEDCBA9876543210f"}) {
    for (std::size_t length = 1; length <= digits.size(); ++length) {
      const std::string line =
          fmt::format("unmap 1 0 net 0x{} 16 0 0x0\n", digits.substr(0, length));
      TraceEvent fast;
      const char* end = read_fast(header, line, fast);
      if (length > 15) {
        EXPECT_EQ(end, nullptr) << line;
        continue;
      }
      ASSERT_EQ(end, line.data() + line.size()) << line;
      const Result<Trace> general = parse_trace(trace_text(header, {with_tabs(line)}));
      ASSERT_TRUE(general) << general.error().message();
      ASSERT_EQ(general->events.size(), 1u);
      fast.line = general->events[0].line;
      EXPECT_EQ(describe(fast), describe(general->events[0])) << line;
    }
  }
}

// Whether every number on `line` is short enough for the fast path (15
// digits) and its mask is one the general path takes.
bool within_reach(const TraceEvent& e, const std::string& line) {
  std::size_t start = 0;
  for (int field = 0; start < line.size(); ++field) {
    const std::size_t end = line.find_first_of(" \n", start);
    const std::string_view word(line.data() + start, end - start);
    const std::size_t digits = word.starts_with("0x") ? word.size() - 2 : word.size();
    if (field != 0 && field != 3 && digits > 15) {  // not the op, not the device
      return false;
    }
    start = end + 1;
  }
  return e.op != TraceOp::map || (e.alloc_align_mask & (e.alloc_align_mask + 1)) == 0;
}

RC_GTEST_PROP(CanonicalEventLine, ReadsEveryWrittenLineAsTheGeneralPathDoes, ()) {
  const Trace header = header_trace();
  const TraceEvent e = event_gen();
  const std::string line = line_of(header, e);
  TraceEvent read;
  const char* end = read_fast(header, line, read);
  RC_ASSERT((end != nullptr) == within_reach(e, line));
  RC_ASSERT(end == nullptr || end == line.data() + line.size());
  expect_same_as_general_path(header, {line});
}

// Characters that matter to one path or the other.
constexpr std::string_view kMutations =
    std::string_view("0123456789abcdefABCDEFxXg- \t\r\n#:.\0\xff", 35);

// Values at the edges of what a field takes.
constexpr std::string_view kFieldValues[] = {"-",
                                             "0",
                                             "3",
                                             "0x",
                                             "0X1",
                                             "0x5",
                                             "4294967296",
                                             "0xffffffff",
                                             "00001",
                                             "1234567890123456",
                                             "18446744073709551615",
                                             "18446744073709551616",
                                             "0x10000000000000000",
                                             "",
                                             "net",
                                             "0000:00:09.0"};

// `line` with one of its fields (counted between spaces) replaced.
std::string replace_field(const std::string& line) {
  std::vector<std::size_t> starts = {0};
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == ' ') {
      starts.push_back(i + 1);
    }
  }
  const std::size_t field = draw(rc::gen::inRange<std::size_t>(0, starts.size()));
  const std::size_t start = starts[field];
  const std::size_t end = std::min(line.find_first_of(" \n", start), line.size());
  const std::string_view value =
      kFieldValues[draw(rc::gen::inRange<std::size_t>(0, std::size(kFieldValues)))];
  return line.substr(0, start) + std::string(value) + line.substr(end);
}

std::string mutate(std::string line) {
  const int count = draw(rc::gen::inRange(1, 4));
  for (int i = 0; i < count && !line.empty(); ++i) {
    const std::size_t at = draw(rc::gen::inRange<std::size_t>(0, line.size()));
    const char c = kMutations[draw(rc::gen::inRange<std::size_t>(0, kMutations.size()))];
    switch (draw(rc::gen::inRange(0, 4))) {
      case 0:
        line[at] = c;
        break;
      case 1:
        line.insert(line.begin() + static_cast<std::ptrdiff_t>(at), c);
        break;
      case 2:
        line.erase(at, 1);
        break;
      default:
        line = replace_field(line);
        break;
    }
  }
  return line;
}

RC_GTEST_PROP(CanonicalEventLine, ReadsMutatedLinesAsTheGeneralPathDoes, ()) {
  const Trace header = header_trace();
  // Mutated lines between good ones: the line after each must be read from
  // its start whichever path read the mutated one. Each is skipped or fails
  // the parse (then the test compares the first error only): several
  // traces, each with one mutated line, and one with all of them.
  std::vector<std::string> all = {line_of(header, event_gen())};
  for (int i = 0; i < 50; ++i) {
    const std::string mutated = mutate(line_of(header, event_gen()));
    const std::string after = line_of(header, event_gen());
    expect_same_as_general_path(header, {all.back(), mutated, after});
    all.push_back(mutated);
    all.push_back(after);
  }
  expect_same_as_general_path(header, all);
}

// A line that starts exactly kCanonicalLineReach bytes before the end of a
// buffer of its own size (under AddressSanitizer, a read past the reach is
// an error), long fields included.
RC_GTEST_PROP(CanonicalEventLine, ReadsNothingPastItsReach, ()) {
  const Trace header = header_trace();
  std::string line = mutate(line_of(header, event_gen()));
  const std::size_t run = draw(rc::gen::inRange<std::size_t>(0, 400));
  line.insert(draw(rc::gen::inRange<std::size_t>(0, line.size())), std::string(run, '1'));
  const std::string head = format_trace_header(header);
  const std::size_t size = head.size() + std::max(line.size(), kCanonicalLineReach);
  const std::unique_ptr<char[]> buffer(new char[size]);
  std::memset(buffer.get(), '\n', size);
  std::memcpy(buffer.get(), head.data(), head.size());
  std::memcpy(buffer.get() + head.size(), line.data(), line.size());
  const std::string_view text(buffer.get(), size);
  for (const bool skip_bad : {false, true}) {
    ParseOptions options;
    options.skip_bad = skip_bad;
    Result<Trace> fast = parse_trace(text, options);
    Result<Trace> general = parse_trace(head + with_tabs(line), options);
    RC_ASSERT(static_cast<bool>(fast) == static_cast<bool>(general));
    if (fast) {
      RC_ASSERT(fast->events.size() == general->events.size());
      for (std::size_t i = 0; i < fast->events.size(); ++i) {
        RC_ASSERT(describe(fast->events[i]) == describe(general->events[i]));
      }
    } else {
      RC_ASSERT(fast.error().message() == general.error().message());
    }
  }
}

// A line longer than the reach whose last field, a hex number, runs to the
// '\n' that ends the buffer: the digit reader stops inside the buffer
// whatever the run's length and parity (AddressSanitizer sees any read past
// it), and the line fails as the general path fails it.
TEST(CanonicalEventLine, ReadsNoFurtherThanALongLastField) {
  const Trace header = header_trace();
  const std::string head = format_trace_header(header);
  for (const char* start : {"unmap 1 0 net 0x10 16 0 0x", "map 1 0 net 0x10 16 - 0x0 0 0x0 0x"}) {
    for (std::size_t run = kCanonicalLineReach; run < kCanonicalLineReach + 4; ++run) {
      const std::string line = start + std::string(run, 'a') + "\n";
      const std::unique_ptr<char[]> buffer(new char[head.size() + line.size()]);
      std::memcpy(buffer.get(), head.data(), head.size());
      std::memcpy(buffer.get() + head.size(), line.data(), line.size());
      const Result<Trace> fast =
          parse_trace(std::string_view(buffer.get(), head.size() + line.size()));
      const Result<Trace> general = parse_trace(head + with_tabs(line));
      ASSERT_FALSE(fast);
      ASSERT_FALSE(general);
      EXPECT_EQ(fast.error().message(), general.error().message());
    }
  }
}

}  // namespace
}  // namespace swiotlb::ops
