// Reading trace v1 files (docs/trace-format.md) into a Trace.
//
// The parser works on one memory buffer (a whole file, mapped or read in one
// go): it reads each field once, classifying characters and converting
// numbers from tables, and interns device ids, so that an event costs no
// allocation and no stream. A million events parse in well under a tenth of
// a second.
//
// Failure modes. A line that does not parse is an Errc::parse error whose
// message names the line number and the field ("line 12: field
// 'mapping_size': '4k' is not a number"). With ParseOptions::skip_bad such a
// line is counted in Trace::bad_line_count instead (the first few are kept in
// Trace::bad_lines) and the parse goes on. Header errors (a missing or wrong
// `# swiotlb-trace v1` line, a malformed `# pool` or `# device` line) are
// never skipped: without them no event can be read correctly.
//
// What the parser does not check: whether an unmap names an address that was
// mapped. That is a property of the event sequence, which replay judges
// (ReplayReport::unmatched_unmaps).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/ops/trace.h"

namespace swiotlb::ops {

struct ParseOptions {
  // Count and skip event lines that do not parse instead of failing.
  bool skip_bad = false;
  // How many skipped lines keep their message in Trace::bad_lines.
  std::size_t bad_lines_kept = 10;
};

// Parses a whole trace held in memory. `text` need not end with a newline.
SWIOTLB_API Result<Trace> parse_trace(std::string_view text, const ParseOptions& options = {});

// Reads and parses the file at `path` (mapped into memory, not copied).
// Fails with Errc::system when the file cannot be opened or read.
SWIOTLB_API Result<Trace> load_trace(const std::string& path, const ParseOptions& options = {});

}  // namespace swiotlb::ops
