// swiotlb_tlb: an IoTlb made from a `swiotlb=` string and a region kind.
#include <cstring>
#include <string>

#include "capi_internal.h"
#include "swiotlb/core/config.h"
#include "swiotlb/platform/cpu.h"
#include "swiotlb/platform/region.h"
#include "swiotlb/platform/region_spec.h"

namespace swiotlb::capi {
namespace {

// The region a C caller asked for, on top of what the `swiotlb=` string set
// (its addr= gives a fixed address to an anonymous window).
swiotlb_status apply_region(const swiotlb_region& region, IoTlbOptions& options) {
  RegionSpec spec = options.region.value_or(RegionSpec{});
  switch (region.kind) {
    case SWIOTLB_REGION_ANONYMOUS:
      spec.kind = RegionKind::anonymous;
      break;
    case SWIOTLB_REGION_MEMFD:
      spec.kind = RegionKind::memfd;
      break;
    case SWIOTLB_REGION_FILE:
      if (region.path == nullptr || region.path[0] == '\0') {
        return fail(SWIOTLB_E_INVALID_ARGUMENT,
                    "swiotlb_tlb_create: a SWIOTLB_REGION_FILE region needs a path");
      }
      spec.kind = RegionKind::file;
      spec.path = region.path;
      spec.offset = region.offset;
      spec.create = true;
      break;
    case SWIOTLB_REGION_FIXED:
      if (region.address == 0) {
        return fail(SWIOTLB_E_INVALID_ARGUMENT,
                    "swiotlb_tlb_create: a SWIOTLB_REGION_FIXED region needs an address");
      }
      spec.kind = RegionKind::anonymous;
      break;
    default:
      return fail(SWIOTLB_E_INVALID_ARGUMENT,
                  "swiotlb_tlb_create: region kind " +
                      std::to_string(static_cast<int>(region.kind)) +
                      " is none of anonymous (0), memfd (1), file (2), fixed (3)");
  }
  if (region.address != 0) {
    spec.fixed_address = PhysAddr(region.address);
  }
  options.region = spec;
  return SWIOTLB_OK;
}

}  // namespace
}  // namespace swiotlb::capi

using swiotlb::capi::fail;
using swiotlb::capi::guarded;
using swiotlb::capi::null_argument;

extern "C" {

swiotlb_status swiotlb_tlb_create(const char* swiotlb_param, const swiotlb_region* region,
                                  swiotlb_tlb** out) {
  return guarded("swiotlb_tlb_create", [&] {
    if (out == nullptr) {
      return null_argument("swiotlb_tlb_create", "out");
    }
    const unsigned cpus = swiotlb::cpu_count();
    swiotlb::SwiotlbConfig config = swiotlb::default_swiotlb_config(cpus);
    if (swiotlb_param != nullptr && swiotlb_param[0] != '\0') {
      auto parsed = swiotlb::parse_swiotlb_config(swiotlb_param, cpus);
      if (!parsed) {
        return fail(parsed.error());
      }
      config = std::move(*parsed);
    }
    auto options = swiotlb::IoTlbOptions::from_config(config);
    if (!options) {
      return fail(options.error());
    }
    if (region != nullptr) {
      if (auto status = swiotlb::capi::apply_region(*region, *options); status != SWIOTLB_OK) {
        return status;
      }
    }
    auto tlb = swiotlb::IoTlb::create(*options);
    if (!tlb) {
      return fail(tlb.error());
    }
    auto handle = std::make_unique<swiotlb_tlb>();
    handle->tlb = std::move(*tlb);
    *out = handle.release();
    return SWIOTLB_OK;
  });
}

swiotlb_status swiotlb_tlb_destroy(swiotlb_tlb* tlb) {
  return guarded("swiotlb_tlb_destroy", [&] {
    if (tlb == nullptr) {
      return SWIOTLB_OK;
    }
    if (const std::uint64_t devices = tlb->devices.load(); devices != 0) {
      return fail(SWIOTLB_E_BUSY, "swiotlb_tlb_destroy: " + std::to_string(devices) +
                                      " device(s) made on this tlb are still alive; "
                                      "swiotlb_device_destroy them first");
    }
    delete tlb;
    return SWIOTLB_OK;
  });
}

swiotlb_status swiotlb_tlb_window(const swiotlb_tlb* tlb, uint64_t* start, uint64_t* end) {
  return guarded("swiotlb_tlb_window", [&] {
    if (tlb == nullptr || start == nullptr || end == nullptr) {
      return null_argument("swiotlb_tlb_window", tlb == nullptr ? "tlb" : "start or end");
    }
    *start = tlb->tlb->start().value();
    *end = tlb->tlb->end().value();
    return SWIOTLB_OK;
  });
}

swiotlb_status swiotlb_tlb_region_fd(const swiotlb_tlb* tlb, int* fd) {
  return guarded("swiotlb_tlb_region_fd", [&] {
    if (tlb == nullptr || fd == nullptr) {
      return null_argument("swiotlb_tlb_region_fd", tlb == nullptr ? "tlb" : "fd");
    }
    const swiotlb::Region* region = tlb->tlb->region();
    const int region_fd = region != nullptr ? region->fd() : -1;
    if (region_fd < 0) {
      return fail(SWIOTLB_E_INVALID_ARGUMENT,
                  "swiotlb_tlb_region_fd: the window is anonymous memory and has no descriptor "
                  "(create the tlb with SWIOTLB_REGION_MEMFD or SWIOTLB_REGION_FILE)");
    }
    *fd = region_fd;
    return SWIOTLB_OK;
  });
}

}  // extern "C"
