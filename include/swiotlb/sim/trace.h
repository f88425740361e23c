// The trace records under their sim names. Traces, their records and the
// trace v1 reader and writer live in the ops layer (swiotlb/ops/trace.h),
// below the pools, so that every layer and test reads traces the same way;
// replay, sizing and the workload generator name them as sim:: types.
#pragma once

#include "swiotlb/ops/trace.h"

namespace swiotlb::sim {

namespace recorded = ops::recorded;
using ops::BadLine;
using ops::default_policy_for;
using ops::to_string;
using ops::Trace;
using ops::TraceComment;
using ops::TraceDevice;
using ops::TraceEvent;
using ops::TraceOp;
using ops::TracePool;
using ops::TracePoolEvent;
using ops::TracePoolKind;
using ops::TracePoolOp;
using ops::TraceState;

}  // namespace swiotlb::sim
