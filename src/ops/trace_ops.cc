// Traces read as ops and ops written as traces (trace_ops.h).
#include "swiotlb/ops/trace_ops.h"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "swiotlb/core/error_format.h"

namespace swiotlb::ops {

Op op_from_event(const Trace& trace, const TraceEvent& e) {
  const TraceDevice& device = trace.devices[e.device];
  switch (e.op) {
    case TraceOp::map: {
      Map m;
      m.orig = e.orig;
      m.size = e.size;
      m.alloc_size = e.has(recorded::kAllocSize) ? e.alloc_size : 0;
      m.alloc_align_mask = e.alloc_align_mask;
      m.min_align_mask = device.min_align_mask;
      m.seg_boundary_mask = device.seg_boundary_mask;
      m.dir = e.dir;
      m.attrs = e.attrs;
      m.cpu = e.cpu;
      if (e.has(recorded::kTlb)) {
        m.recorded_tlb = e.tlb;
      }
      return m;
    }
    case TraceOp::unmap:
      return Unmap{e.tlb, e.size, device.min_align_mask, e.dir, e.attrs};
    case TraceOp::sync_cpu:
      return Sync{e.tlb, e.size, e.dir, SyncFor::cpu};
    case TraceOp::sync_dev:
      return Sync{e.tlb, e.size, e.dir, SyncFor::device};
  }
  return Tick{};  // not reached: every TraceOp is handled above
}

std::vector<Op> ops_from_trace(const Trace& trace) {
  std::vector<Op> ops;
  ops.reserve(trace.events.size() + trace.pool_events.size());
  std::uint64_t clock = 0;
  auto pool_event = trace.pool_events.begin();
  for (std::size_t i = 0; i <= trace.events.size(); ++i) {
    for (; pool_event != trace.pool_events.end() && pool_event->before_event <= i; ++pool_event) {
      if (pool_event->op == TracePoolOp::add && pool_event->kind == TracePoolKind::grown) {
        if (pool_event->t_ns > clock) {
          ops.emplace_back(Tick{pool_event->t_ns - clock});
          clock = pool_event->t_ns;
        }
        ops.emplace_back(Grow{pool_event->nslabs, pool_event->nareas});
      }
    }
    if (i == trace.events.size()) {
      break;
    }
    const TraceEvent& e = trace.events[i];
    if (e.has(recorded::kTime) && e.t_ns > clock) {
      ops.emplace_back(Tick{e.t_ns - clock});
      clock = e.t_ns;
    }
    ops.push_back(op_from_event(trace, e));
  }
  return ops;
}

namespace {

// Builds the trace op by op.
class TraceBuilder {
 public:
  Status add(const Op& op) {
    return std::visit(
        [this](const auto& o) -> Status {
          if constexpr (requires { o.dir; }) {
            if (o.dir != Direction::bidirectional && o.dir != Direction::to_device &&
                o.dir != Direction::from_device) {
              return make_error(Errc::invalid_argument,
                                "op {}: {} with direction {}, which trace v1 has no value for",
                                index_, op_name(Op(o)), static_cast<unsigned>(o.dir));
            }
          }
          return put(o);
        },
        op);
  }
  Trace take() { return std::move(trace_); }

 private:
  Status put(const Map& m) {
    Result<std::uint16_t> dev = device(m.min_align_mask, m.seg_boundary_mask, true);
    if (!dev) {
      return dev.error();
    }
    TraceEvent e = event(TraceOp::map, *dev);
    e.orig = m.orig;
    e.size = m.size;
    if (m.alloc_size != 0) {
      e.alloc_size = m.alloc_size;
      e.recorded |= recorded::kAllocSize;
    }
    e.alloc_align_mask = m.alloc_align_mask;
    e.dir = m.dir;
    e.attrs = m.attrs;
    e.cpu = m.cpu;
    if (m.recorded_tlb) {
      e.tlb = *m.recorded_tlb;
      e.recorded |= recorded::kTlb;
    }
    trace_.events.push_back(e);
    return {};
  }
  Status put(const Unmap& u) {
    Result<std::uint16_t> dev = device(u.min_align_mask, ~std::uint64_t{0}, false);
    if (!dev) {
      return dev.error();
    }
    TraceEvent e = event(TraceOp::unmap, *dev);
    e.tlb = u.addr;
    e.size = u.size;
    e.recorded |= recorded::kSize;
    e.dir = u.dir;
    e.attrs = u.attrs;
    trace_.events.push_back(e);
    return {};
  }
  Status put(const Sync& s) {
    Result<std::uint16_t> dev =
        trace_.devices.empty() ? device(0, ~std::uint64_t{0}, false) : Result<std::uint16_t>(0);
    if (!dev) {
      return dev.error();
    }
    TraceEvent e = event(s.to == SyncFor::cpu ? TraceOp::sync_cpu : TraceOp::sync_dev, *dev);
    e.tlb = s.addr;
    e.size = s.size;
    e.dir = s.dir;
    trace_.events.push_back(e);
    return {};
  }
  Status put(const Grow& g) {
    if (g.nslabs == 0 || g.nareas == 0 || (g.nareas & (g.nareas - 1)) != 0) {
      return make_error(Errc::invalid_argument,
                        "op {}: a grow of {} slots in {} areas cannot be written (slots above 0, "
                        "areas a power of two)",
                        index_, g.nslabs, g.nareas);
    }
    TracePoolEvent p;
    p.op = TracePoolOp::add;
    p.name = "grow" + std::to_string(grows_++);
    p.t_ns = clock_;
    p.kind = TracePoolKind::grown;
    p.nslabs = g.nslabs;
    p.nareas = g.nareas;
    p.before_event = trace_.events.size();
    trace_.pool_events.push_back(std::move(p));
    ++index_;
    return {};
  }
  Status put(const Tick& t) {
    if (clock_ + t.ns < clock_) {
      return make_error(Errc::invalid_argument, "op {}: a tick of {} ns passes 2^64 ns", index_,
                        t.ns);
    }
    clock_ += t.ns;
    ++index_;
    return {};
  }
  template <typename IovaOp>
  Status put(const IovaOp& op) {
    return make_error(Errc::invalid_argument,
                      "op {}: {} is an IOVA op, which trace v1 has no line for (IOVA traces "
                      "carry IOVA ops)",
                      index_, op_name(Op(op)));
  }

  TraceEvent event(TraceOp op, std::uint16_t device) {
    TraceEvent e;
    e.op = op;
    e.device = device;
    e.t_ns = clock_;
    e.recorded = recorded::kTime | recorded::kCpu;
    // Lines as the writer lays them out: the header, then one a record.
    e.line = static_cast<std::uint32_t>(++index_);
    return e;
  }

  // The device with these masks, made on first use. An unmap takes any
  // device with its min_align_mask (the boundary is the map's business); a
  // sync names no mask and takes the first device.
  Result<std::uint16_t> device(std::uint64_t min_align_mask, std::uint64_t seg_boundary_mask,
                               bool exact) {
    for (std::size_t i = 0; i < trace_.devices.size(); ++i) {
      const TraceDevice& d = trace_.devices[i];
      if (d.min_align_mask == min_align_mask &&
          (!exact || d.seg_boundary_mask == seg_boundary_mask)) {
        return static_cast<std::uint16_t>(i);
      }
    }
    if (trace_.devices.size() > std::numeric_limits<std::uint16_t>::max()) {
      return make_error(Errc::invalid_argument, "op {}: more than {} distinct devices", index_,
                        std::numeric_limits<std::uint16_t>::max() + 1);
    }
    TraceDevice d;
    d.id = "dev" + std::to_string(trace_.devices.size());
    d.min_align_mask = min_align_mask;
    d.seg_boundary_mask = seg_boundary_mask;
    trace_.devices.push_back(std::move(d));
    return static_cast<std::uint16_t>(trace_.devices.size() - 1);
  }

  Trace trace_;
  std::uint64_t clock_ = 0;
  std::uint64_t grows_ = 0;
  std::uint64_t index_ = 0;
};

}  // namespace

Result<Trace> trace_from_ops(std::span<const Op> ops) {
  TraceBuilder builder;
  for (const Op& op : ops) {
    if (Status ok = builder.add(op); !ok) {
      return ok.error();
    }
  }
  return builder.take();
}

}  // namespace swiotlb::ops
