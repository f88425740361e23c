// The incremental trace v1 reader under its sim name, for the streaming
// replay (the reader is the ops layer's: swiotlb/ops/trace_reader.h).
#pragma once

#include "swiotlb/ops/trace_reader.h"
#include "swiotlb/sim/trace_parser.h"

namespace swiotlb::sim {

using ops::TraceReader;

}  // namespace swiotlb::sim
