// The trace v1 writer under its sim names (the writer is the ops layer's:
// swiotlb/ops/trace_writer.h).
#pragma once

#include "swiotlb/ops/trace_writer.h"
#include "swiotlb/sim/trace.h"

namespace swiotlb::sim {

using ops::append_pool_event;
using ops::append_trace_event;
using ops::append_trace_state;
using ops::format_trace;
using ops::format_trace_header;
using ops::write_trace;

}  // namespace swiotlb::sim
