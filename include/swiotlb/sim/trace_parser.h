// The trace v1 parser under its sim names (the parser is the ops layer's:
// swiotlb/ops/trace_parser.h).
#pragma once

#include "swiotlb/ops/trace_parser.h"
#include "swiotlb/sim/trace.h"

namespace swiotlb::sim {

using ops::load_trace;
using ops::parse_trace;
using ops::ParseOptions;

}  // namespace swiotlb::sim
