// The trace tools' entry header: kernel DMA traces and what can be learnt
// from them.
//
//   #include <swiotlb/trace.h>
//
// gives TraceEvent and the trace format, the parser for the kernel's swiotlb
// and dma tracepoints and the writer (the ops layer's ops/trace.h,
// trace_parser.h and trace_writer.h, under their sim:: names in sim/trace.h,
// sim/trace_parser.h and sim/trace_writer.h), synthetic workloads (sim/workload.h), replay of a
// trace against a pool (sim/replay.h) and pool sizing from a trace
// (sim/sizing.h). Installed when the library is built with
// SWIOTLB_BUILD_SIM (the default for a top-level build).
#pragma once

#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/sizing.h"
#include "swiotlb/sim/trace.h"
#include "swiotlb/sim/trace_parser.h"
#include "swiotlb/sim/trace_writer.h"
#include "swiotlb/sim/workload.h"
