// Writing a Trace back out as trace v1 text (docs/trace-format.md).
//
// The output parses back to the same Trace (header, devices, events, pool
// events, the `# state` lines each before the event it preceded; comments
// are written as `#` lines before the events, bad lines are not kept). Fields
// a trace did not record are written as `-`; addresses and masks in hex,
// sizes and counts in decimal, as the capture script writes them.
#pragma once

#include <string>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/ops/trace.h"

namespace swiotlb::ops {

// The `#` header lines: format, kernel, pool, devices, comments.
SWIOTLB_API std::string format_trace_header(const Trace& trace);

// Appends one event line (with its newline) to `out`.
// REQUIRES: event.device < trace.devices.size().
SWIOTLB_API void append_trace_event(std::string& out, const Trace& trace, const TraceEvent& event);

// Appends one `# state` line (with its newline) to `out`.
SWIOTLB_API void append_trace_state(std::string& out, const TraceState& state);

// Appends one pool_add or pool_del line (with its newline) to `out`. A
// t_ns of 0 is written as `-` (not recorded).
SWIOTLB_API void append_pool_event(std::string& out, const TracePoolEvent& event);

// The whole trace as text, pool events and `# state` lines among the events
// where they were.
SWIOTLB_API std::string format_trace(const Trace& trace);

// Writes the whole trace to `path` ("-" for standard output). Fails with
// Errc::system when the file cannot be written.
SWIOTLB_API Status write_trace(const Trace& trace, const std::string& path);

}  // namespace swiotlb::ops
