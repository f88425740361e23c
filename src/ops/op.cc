// Names of ops, and the error for an op a target does not take.
#include "swiotlb/ops/op.h"

#include "swiotlb/core/error_format.h"

namespace swiotlb::ops {
namespace {

struct Namer {
  std::string_view operator()(const Map&) const { return "map"; }
  std::string_view operator()(const Unmap&) const { return "unmap"; }
  std::string_view operator()(const Sync& s) const {
    return s.to == SyncFor::cpu ? "sync_cpu" : "sync_dev";
  }
  std::string_view operator()(const Grow&) const { return "grow"; }
  std::string_view operator()(const Tick&) const { return "tick"; }
  std::string_view operator()(const IovaReserve&) const { return "iova_reserve"; }
  std::string_view operator()(const IovaAlloc&) const { return "iova_alloc"; }
  std::string_view operator()(const IovaFree&) const { return "iova_free"; }
};

}  // namespace

std::string_view op_name(const Op& op) {
  return std::visit(Namer{}, op);
}

Error not_taken(const Op& op, std::string_view target) {
  return make_error(Errc::invalid_argument, "{} takes no {} op", target, op_name(op));
}

Status require_claimed_size(const Unmap& unmap, std::string_view target) {
  if (unmap.size != 0) {
    return {};
  }
  return make_error(Errc::invalid_argument,
                    "an unmap of {:#x} without its size: {} unmaps against the size and "
                    "direction of the map",
                    unmap.addr, target);
}

}  // namespace swiotlb::ops
