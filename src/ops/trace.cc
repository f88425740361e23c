// The small questions a Trace answers about itself.
#include "swiotlb/ops/trace.h"

namespace swiotlb::ops {

std::string_view to_string(TraceOp op) {
  switch (op) {
    case TraceOp::map:
      return "map";
    case TraceOp::unmap:
      return "unmap";
    case TraceOp::sync_cpu:
      return "sync_cpu";
    case TraceOp::sync_dev:
      return "sync_dev";
  }
  return "?";
}

std::string_view to_string(TracePoolOp op) {
  return op == TracePoolOp::add ? "pool_add" : "pool_del";
}

std::string_view to_string(TracePoolKind kind) {
  return kind == TracePoolKind::grown ? "grown" : "transient";
}

std::optional<std::uint16_t> Trace::find_device(std::string_view id) const {
  for (std::size_t i = 0; i < devices.size(); ++i) {
    if (devices[i].id == id) {
      return static_cast<std::uint16_t>(i);
    }
  }
  return std::nullopt;
}

bool Trace::has_kernel_addresses() const {
  for (const TraceEvent& event : events) {
    if (event.op == TraceOp::map && event.has(recorded::kTlb)) {
      return true;
    }
  }
  return false;
}

bool Trace::kernel_is_6_1() const {
  // The release is the first word: "6.1.0-56-amd64 debian 6.1.192-2".
  constexpr std::string_view kPrefix = "6.1";
  if (kernel.compare(0, kPrefix.size(), kPrefix) != 0) {
    return false;
  }
  // "6.10" and later are not 6.1.
  return kernel.size() == kPrefix.size() ||
         !(kernel[kPrefix.size()] >= '0' && kernel[kPrefix.size()] <= '9');
}

std::string_view default_policy_for(const Trace& trace) {
  return trace.kernel_is_6_1() ? "linux-6.1" : "linux";
}

}  // namespace swiotlb::ops
