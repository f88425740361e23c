// parse_trace and load_trace: a TraceReader drained into a Trace.
#include "swiotlb/ops/trace_parser.h"

#include <limits>
#include <memory>

#include "swiotlb/ops/mapped_file.h"
#include "swiotlb/ops/trace_reader.h"

namespace swiotlb::ops {
namespace {

// Event lines are rarely shorter than this: the events vector is sized from
// it once, so that it seldom grows (each growth copies every event so far).
constexpr std::size_t kShortestTypicalLine = 40;

}  // namespace

Result<Trace> parse_trace(std::string_view text, const ParseOptions& options) {
  TraceReader reader(text, options);
  if (Status ok = reader.read_header(); !ok) {
    return ok.error();
  }
  std::vector<TraceEvent> events;
  events.reserve(text.size() / kShortestTypicalLine + 16);
  for (;;) {
    Result<bool> more = reader.read_events(events, std::numeric_limits<std::size_t>::max());
    if (!more) {
      return std::move(more).error();
    }
    if (!*more) {
      break;
    }
  }
  Trace trace = std::move(reader.header());
  trace.events = std::move(events);
  return trace;
}

Result<Trace> load_trace(const std::string& path, const ParseOptions& options) {
  Result<std::unique_ptr<MappedFile>> file = MappedFile::open(path);
  if (!file) {
    return std::move(file).error();
  }
  Result<Trace> trace = parse_trace((*file)->text(), options);
  if (!trace) {
    return make_error(trace.error().code(), "{}: {}", path, trace.error().message());
  }
  return trace;
}

}  // namespace swiotlb::ops
