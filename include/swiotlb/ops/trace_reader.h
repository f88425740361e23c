// TraceReader: the trace v1 parser as an incremental reader, for the
// library's own layers (not a consumer's API: it may change with any
// release). parse_trace() drains it into a Trace; the streaming replay
// (sim/replay.h) runs it on a thread of its own and replays its events in
// blocks while it reads on.
//
// Speed. The text is read in one pass over a buffer in which every line ends
// with '\n' (the last line, if unterminated, is read from a small copy that
// adds one), so the inner loops stop on a character class and never test
// for the end of the buffer. A field is scanned once: numbers are converted
// as their characters are classified. Character classes and digit values
// come from tables. Nothing on the path of a well-formed event allocates.
// Lines exactly as the writer writes them take a faster path still, which
// knows where each field must be and what ends it; any other line goes to
// the general path (src/ops/canonical_event_line.h).
//
// Not thread-safe: one thread drives one reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/ops/short_device_ids.h"
#include "swiotlb/ops/trace.h"
#include "swiotlb/ops/trace_parser.h"

namespace swiotlb::ops {

class TraceReader {
 public:
  // `text` must outlive the reader.
  TraceReader(std::string_view text, const ParseOptions& options);

  // Reads every line before the first event: the format line, `# kernel`,
  // `# pool`, devices, comments. REQUIRES: called once, before read_events.
  Status read_header();

  // Appends events to `out` until `out` holds `limit` events, the text ends,
  // or a `# device`, `pool_add` or `pool_del` line was read (the device or
  // pool event is then in header().devices or header().pool_events, so
  // that a consumer can learn of it before the events that follow it).
  // Returns false once the whole text has been read.
  Result<bool> read_events(std::vector<TraceEvent>& out, std::size_t limit);

  // Everything but the events: header, devices, comments, bad lines.
  Trace& header() { return trace_; }

  std::size_t bytes_read() const;
  std::size_t bytes_total() const { return total_bytes_; }

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  bool at_end() const { return cursor_ == end_ && tail_done_; }
  void next_segment();
  std::string_view rest_of_line();
  Status header_line(std::string_view text, bool after_events);
  Status magic(const std::vector<std::string_view>& words);
  Status pool(const std::vector<std::string_view>& words);
  Status device(std::string_view text, const std::vector<std::string_view>& words);
  Status device_key(TraceDevice& device, std::string_view key, std::string_view value) const;
  Status state(const std::vector<std::string_view>& words);
  Status header_number(std::string_view what, std::string_view value, std::uint64_t& out) const;
  bool canonical_line(std::vector<TraceEvent>& out);
  void canonical_lines(std::vector<TraceEvent>& out, std::size_t limit);
  Status event_line(const char* start, std::vector<TraceEvent>& out);
  Status pool_event_line();
  Status pool_add_fields(const std::vector<std::string_view>& words, TracePoolEvent& event);
  bool intern_device(std::string_view id, std::uint16_t& out);

  std::string_view text_;
  const ParseOptions& options_;
  std::size_t total_bytes_;
  // The part of text_ that ends with '\n', then a copy of the rest plus '\n'.
  const char* cursor_;
  const char* end_;
  std::string tail_;
  bool tail_done_;
  std::uint32_t line_ = 0;
  bool seen_magic_ = false;

  std::uint64_t events_read_ = 0;
  // Names of the pools pool_add added and pool_del has not deleted.
  std::unordered_set<std::string, StringHash, std::equal_to<>> live_pools_;

  Trace trace_;
  std::unordered_map<std::string, std::uint16_t, StringHash, std::equal_to<>> device_ids_;
  std::uint16_t last_device_ = 0;
  ShortDeviceIds short_ids_;  // the fast path's first look, before device_ids_
};

}  // namespace swiotlb::ops
