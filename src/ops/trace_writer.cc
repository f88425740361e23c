// Trace v1 text from a Trace. The inverse of the parser: what it writes, the
// parser reads back to the same header and events.
#include "swiotlb/ops/trace_writer.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <iterator>
#include <optional>
#include <string_view>

namespace swiotlb::ops {
namespace {

// Writes `value` in decimal, or `-` when the field was not recorded.
void put_decimal(std::string& out, bool was_recorded, std::uint64_t value) {
  if (was_recorded) {
    fmt::format_to(std::back_inserter(out), " {}", value);
  } else {
    out += " -";
  }
}

void put_hex(std::string& out, bool was_recorded, std::uint64_t value) {
  if (was_recorded) {
    fmt::format_to(std::back_inserter(out), " {:#x}", value);
  } else {
    out += " -";
  }
}

void append_device(std::string& out, const TraceDevice& device) {
  fmt::format_to(std::back_inserter(out), "# device {} min_align_mask={:#x}", device.id,
                 device.min_align_mask);
  if (device.seg_boundary_mask != ~std::uint64_t{0}) {
    fmt::format_to(std::back_inserter(out), " seg_boundary_mask={:#x}", device.seg_boundary_mask);
  }
  if (device.dma_mask) {
    fmt::format_to(std::back_inserter(out), " dma_mask={:#x}", *device.dma_mask);
  }
  if (!device.name.empty()) {
    fmt::format_to(std::back_inserter(out), " name={}", device.name);
  }
  out += '\n';
}

}  // namespace

std::string format_trace_header(const Trace& trace) {
  std::string out = "# swiotlb-trace v1\n";
  if (!trace.kernel.empty()) {
    fmt::format_to(std::back_inserter(out), "# kernel {}\n", trace.kernel);
  }
  if (trace.pool) {
    fmt::format_to(std::back_inserter(out), "# pool {} start={:#x} nslabs={} nareas={}\n",
                   trace.pool->name, trace.pool->start, trace.pool->nslabs, trace.pool->nareas);
  }
  for (const TraceDevice& device : trace.devices) {
    append_device(out, device);
  }
  for (const TraceComment& comment : trace.comments) {
    fmt::format_to(std::back_inserter(out), "# {}\n", comment.text);
  }
  return out;
}

void append_trace_event(std::string& out, const Trace& trace, const TraceEvent& e) {
  out += to_string(e.op);
  put_decimal(out, e.has(recorded::kTime), e.t_ns);
  put_decimal(out, e.has(recorded::kCpu), e.cpu);
  out += ' ';
  out += trace.devices[e.device].id;
  const auto dir = static_cast<unsigned>(e.dir);
  switch (e.op) {
    case TraceOp::map:
      fmt::format_to(std::back_inserter(out), " {:#x} {}", e.orig, e.size);
      put_decimal(out, e.has(recorded::kAllocSize), e.alloc_size);
      fmt::format_to(std::back_inserter(out), " {:#x} {} {:#x}", e.alloc_align_mask, dir, e.attrs);
      put_hex(out, e.has(recorded::kTlb), e.tlb);
      break;
    case TraceOp::unmap:
      fmt::format_to(std::back_inserter(out), " {:#x}", e.tlb);
      put_decimal(out, e.has(recorded::kSize), e.size);
      fmt::format_to(std::back_inserter(out), " {} {:#x}", dir, e.attrs);
      break;
    case TraceOp::sync_cpu:
    case TraceOp::sync_dev:
      fmt::format_to(std::back_inserter(out), " {:#x} {} {}", e.tlb, e.size, dir);
      break;
  }
  out += '\n';
}

void append_trace_state(std::string& out, const TraceState& state) {
  out += "# state";
  const auto put = [&out](std::string_view key, const std::optional<std::uint64_t>& value) {
    if (value) {
      fmt::format_to(std::back_inserter(out), " {}={}", key, *value);
    }
  };
  if (state.area) {
    fmt::format_to(std::back_inserter(out), " area={}", *state.area);
  }
  put("index", state.index);
  put("used", state.used);
  put("total_used", state.total_used);
  put("used_hiwater", state.used_hiwater);
  out += '\n';
}

void append_pool_event(std::string& out, const TracePoolEvent& e) {
  out += to_string(e.op);
  put_decimal(out, e.t_ns != 0, e.t_ns);
  put_decimal(out, e.cpu.has_value(), e.cpu.value_or(0));
  out += ' ';
  out += e.name;
  if (e.op == TracePoolOp::add) {
    fmt::format_to(std::back_inserter(out), " {} {:#x} {} {}", to_string(e.kind), e.start, e.nslabs,
                   e.nareas);
  }
  out += '\n';
}

std::string format_trace(const Trace& trace) {
  std::string out = format_trace_header(trace);
  // About 64 bytes a line; one reservation instead of many regrowths.
  out.reserve(out.size() + trace.events.size() * 64);
  // Pool events by their place among the events; each `# state` line just
  // before the event that followed it.
  auto pool_event = trace.pool_events.begin();
  auto state = trace.states.begin();
  for (std::size_t i = 0; i <= trace.events.size(); ++i) {
    for (; pool_event != trace.pool_events.end() && pool_event->before_event <= i; ++pool_event) {
      append_pool_event(out, *pool_event);
    }
    if (i == trace.events.size()) {
      break;
    }
    const TraceEvent& event = trace.events[i];
    for (; state != trace.states.end() && state->line < event.line; ++state) {
      append_trace_state(out, *state);
    }
    append_trace_event(out, trace, event);
  }
  for (; state != trace.states.end(); ++state) {
    append_trace_state(out, *state);
  }
  return out;
}

Status write_trace(const Trace& trace, const std::string& path) {
  const bool to_stdout = path == "-";
  std::FILE* file = to_stdout ? stdout : std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    return make_error(Errc::system, "cannot create {}: {}", path, errno_text(errno));
  }
  const std::string text = format_trace(trace);
  const bool wrote = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  const bool closed = to_stdout ? std::fflush(file) == 0 : std::fclose(file) == 0;
  if (!wrote || !closed) {
    return make_error(Errc::system, "cannot write {}: {}", path, errno_text(errno));
  }
  return {};
}

}  // namespace swiotlb::ops
