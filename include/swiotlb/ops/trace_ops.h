// Traces as ops: what a trace v1 file (docs/trace-format.md) asks, in the
// op vocabulary (op.h), and ops written back as a trace.
//
// Reading: each map, unmap and sync line is one op, its device's masks
// copied into the op; a `pool_add` of a grown pool is a Grow; the recorded
// time moving on between those lines is a Tick of the difference (the clock
// starts at 0). Transient pools and `pool_del` lines are left out: they
// record what a kernel did by itself, which a target does by itself too.
//
// Writing: one device line per distinct pair of masks the maps and unmaps
// name (`dev0`, `dev1`, ...), a Grow as a `pool_add` of a grown pool named
// `grow<n>`, a Tick as the time on the lines after it (a `pool_add` line
// with a time of 0 says `-`, not recorded). The trace reads back
// to the same ops, with two normalizations: consecutive Ticks read as one,
// and Ticks after the last event line, or of 0 ns, have no line to carry
// them and read as none.
//
// Plain functions; no shared state.
#pragma once

#include <span>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/ops/op.h"
#include "swiotlb/ops/trace.h"

namespace swiotlb::ops {

// The ops of `trace`, in file order.
SWIOTLB_API std::vector<Op> ops_from_trace(const Trace& trace);

// The op one event line says, with its device's masks.
// REQUIRES: event.device < trace.devices.size().
SWIOTLB_API Op op_from_event(const Trace& trace, const TraceEvent& event);

// A trace (no `# pool` line) that reads back as `ops`. Fails with
// Errc::invalid_argument naming the op for an IOVA op (IOVA ops are
// written as IOVA traces: iova/iova_trace.h), a direction other than
// bidirectional, to_device and from_device, a Grow of 0 slots or of an
// area count that is not a power of two, a Tick past 2^64 ns in all, and
// more devices than a trace can name.
SWIOTLB_API Result<Trace> trace_from_ops(std::span<const Op> ops);

}  // namespace swiotlb::ops
