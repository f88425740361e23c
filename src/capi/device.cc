// swiotlb_device: a Device bound to a swiotlb_tlb.
#include <string>

#include "capi_internal.h"

using swiotlb::capi::fail;
using swiotlb::capi::guarded;
using swiotlb::capi::null_argument;

extern "C" {

swiotlb_status swiotlb_device_config_init(swiotlb_device_config* config) {
  if (config == nullptr) {
    return null_argument("swiotlb_device_config_init", "config");
  }
  *config = swiotlb_device_config{};
  config->coherent = 1;
  return SWIOTLB_OK;
}

swiotlb_status swiotlb_device_create(swiotlb_tlb* tlb, const swiotlb_device_config* config,
                                     swiotlb_device** out) {
  return guarded("swiotlb_device_create", [&] {
    if (tlb == nullptr || config == nullptr || out == nullptr) {
      return null_argument("swiotlb_device_create",
                           tlb == nullptr ? "tlb" : (config == nullptr ? "config" : "out"));
    }
    swiotlb::DeviceConfig cfg;
    if (config->name != nullptr) {
      cfg.name = config->name;
    }
    const std::uint64_t all = ~std::uint64_t{0};
    cfg.dma_mask = config->dma_mask != 0 ? config->dma_mask : all;
    cfg.coherent_dma_mask =
        config->coherent_dma_mask != 0 ? config->coherent_dma_mask : cfg.dma_mask;
    cfg.min_align_mask = config->min_align_mask;
    cfg.seg_boundary_mask = config->seg_boundary_mask != 0 ? config->seg_boundary_mask : all;
    if (config->max_segment_size != 0) {
      cfg.max_segment_size = config->max_segment_size;
    }
    cfg.coherent = config->coherent != 0;
    if (config->window_only != 0) {
      // The window at its own address, and no other memory.
      const swiotlb::IoTlb& io_tlb = *tlb->tlb;
      auto window = swiotlb::DmaRangeMap::create({{io_tlb.start().value(), io_tlb.start().value(),
                                                   io_tlb.end().value() - io_tlb.start().value()}});
      if (!window) {
        return fail(window.error());
      }
      cfg.dma_ranges = std::move(*window);
    }
    if (!cfg.coherent && config->cache_hook != nullptr) {
      cfg.cache_hook = [hook = config->cache_hook, context = config->cache_context](
                           swiotlb::CacheOp op, swiotlb::PhysAddr addr, std::uint64_t size,
                           swiotlb::Direction dir) {
        hook(context,
             op == swiotlb::CacheOp::for_device ? SWIOTLB_CACHE_FOR_DEVICE : SWIOTLB_CACHE_FOR_CPU,
             addr.value(), size, static_cast<swiotlb_direction>(dir));
      };
    }
    auto device = swiotlb::Device::create(std::move(cfg), tlb->tlb.get());
    if (!device) {
      return fail(device.error());
    }
    auto handle = std::make_unique<swiotlb_device>();
    handle->device = std::move(*device);
    handle->tlb = tlb;
    tlb->devices.fetch_add(1);
    *out = handle.release();
    return SWIOTLB_OK;
  });
}

swiotlb_status swiotlb_device_destroy(swiotlb_device* dev) {
  return guarded("swiotlb_device_destroy", [&] {
    if (dev == nullptr) {
      return SWIOTLB_OK;
    }
    if (auto closed = dev->device->close(); !closed) {
      return fail(closed.error());
    }
    dev->tlb->devices.fetch_sub(1);
    delete dev;
    return SWIOTLB_OK;
  });
}

swiotlb_status swiotlb_max_mapping_size(const swiotlb_device* dev, uint64_t* size) {
  return guarded("swiotlb_max_mapping_size", [&] {
    if (dev == nullptr || size == nullptr) {
      return null_argument("swiotlb_max_mapping_size", dev == nullptr ? "dev" : "size");
    }
    *size = swiotlb::max_mapping_size(*dev->device);
    return SWIOTLB_OK;
  });
}

}  // extern "C"
