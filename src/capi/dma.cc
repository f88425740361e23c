// Streaming mappings (single and scatter-gather) and coherent memory.
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "capi_internal.h"

namespace swiotlb::capi {
namespace {

// The flags a C caller may pass; anything else is refused rather than
// silently ignored.
constexpr std::uint32_t kKnownAttrs = SWIOTLB_ATTR_SKIP_CPU_SYNC | SWIOTLB_ATTR_NO_WARN;

// Checks the arguments every streaming call shares.
swiotlb_status check_call(std::string_view function, const swiotlb_device* dev,
                          swiotlb_direction dir, std::uint32_t attrs, Direction* out) {
  if (dev == nullptr) {
    return null_argument(function, "dev");
  }
  if (!direction_from_c(dir, out)) {
    return fail(SWIOTLB_E_INVALID_ARGUMENT,
                std::string(function) + ": direction " + std::to_string(static_cast<int>(dir)) +
                    " is none of bidirectional (0), to_device (1), from_device (2)");
  }
  if ((attrs & ~kKnownAttrs) != 0) {
    return fail(SWIOTLB_E_INVALID_ARGUMENT, std::string(function) + ": unknown attribute bits " +
                                                std::to_string(attrs & ~kKnownAttrs));
  }
  return SWIOTLB_OK;
}

swiotlb_status result(const Status& status) {
  return status ? SWIOTLB_OK : fail(status.error());
}

// A scatter-gather list in the C++ API's form: on the stack for the lists
// drivers usually build, on the heap for longer ones.
class SgList {
 public:
  explicit SgList(std::size_t count) {
    if (count > inline_.size()) {
      heap_.resize(count);
      entries_ = std::span<ScatterEntry>(heap_);
    } else {
      entries_ = std::span<ScatterEntry>(inline_.data(), count);
    }
  }
  std::span<ScatterEntry> entries() { return entries_; }

 private:
  std::array<ScatterEntry, 16> inline_{};
  std::vector<ScatterEntry> heap_;
  std::span<ScatterEntry> entries_;
};

SgList from_c(const swiotlb_sg_entry* sg, std::size_t count) {
  SgList list(count);
  auto entries = list.entries();
  for (std::size_t i = 0; i < count; ++i) {
    entries[i].phys = PhysAddr(reinterpret_cast<std::uintptr_t>(sg[i].cpu_addr));
    entries[i].length = sg[i].length;
    entries[i].dma_address = DmaAddr(sg[i].dma_address);
    entries[i].dma_length = sg[i].dma_length;
  }
  return list;
}

}  // namespace
}  // namespace swiotlb::capi

using swiotlb::capi::check_call;
using swiotlb::capi::fail;
using swiotlb::capi::guarded;
using swiotlb::capi::null_argument;
using swiotlb::capi::result;

extern "C" {

swiotlb_status swiotlb_map_single(swiotlb_device* dev, const void* cpu_addr, uint64_t size,
                                  swiotlb_direction dir, uint32_t attrs, uint64_t* dma) {
  return guarded("swiotlb_map_single", [&] {
    swiotlb::Direction direction{};
    if (auto s = check_call("swiotlb_map_single", dev, dir, attrs, &direction); s != SWIOTLB_OK) {
      return s;
    }
    if (cpu_addr == nullptr || dma == nullptr) {
      return null_argument("swiotlb_map_single", cpu_addr == nullptr ? "cpu_addr" : "dma");
    }
    auto mapped = swiotlb::map_single(*dev->device, cpu_addr, size, direction,
                                      swiotlb::Attrs::from_bits(attrs));
    if (!mapped) {
      return fail(mapped.error());
    }
    *dma = mapped->value();
    return SWIOTLB_OK;
  });
}

swiotlb_status swiotlb_unmap_single(swiotlb_device* dev, uint64_t dma, uint64_t size,
                                    swiotlb_direction dir, uint32_t attrs) {
  return guarded("swiotlb_unmap_single", [&] {
    swiotlb::Direction direction{};
    if (auto s = check_call("swiotlb_unmap_single", dev, dir, attrs, &direction); s != SWIOTLB_OK) {
      return s;
    }
    return result(swiotlb::unmap_single(*dev->device, swiotlb::DmaAddr(dma), size, direction,
                                        swiotlb::Attrs::from_bits(attrs)));
  });
}

swiotlb_status swiotlb_sync_single_for_cpu(swiotlb_device* dev, uint64_t dma, uint64_t size,
                                           swiotlb_direction dir) {
  return guarded("swiotlb_sync_single_for_cpu", [&] {
    swiotlb::Direction direction{};
    if (auto s = check_call("swiotlb_sync_single_for_cpu", dev, dir, 0, &direction);
        s != SWIOTLB_OK) {
      return s;
    }
    return result(
        swiotlb::sync_single_for_cpu(*dev->device, swiotlb::DmaAddr(dma), size, direction));
  });
}

swiotlb_status swiotlb_sync_single_for_device(swiotlb_device* dev, uint64_t dma, uint64_t size,
                                              swiotlb_direction dir) {
  return guarded("swiotlb_sync_single_for_device", [&] {
    swiotlb::Direction direction{};
    if (auto s = check_call("swiotlb_sync_single_for_device", dev, dir, 0, &direction);
        s != SWIOTLB_OK) {
      return s;
    }
    return result(
        swiotlb::sync_single_for_device(*dev->device, swiotlb::DmaAddr(dma), size, direction));
  });
}

swiotlb_status swiotlb_map_sg(swiotlb_device* dev, swiotlb_sg_entry* sg, size_t count,
                              swiotlb_direction dir, uint32_t attrs) {
  return guarded("swiotlb_map_sg", [&] {
    swiotlb::Direction direction{};
    if (auto s = check_call("swiotlb_map_sg", dev, dir, attrs, &direction); s != SWIOTLB_OK) {
      return s;
    }
    if (sg == nullptr && count != 0) {
      return null_argument("swiotlb_map_sg", "sg");
    }
    auto list = swiotlb::capi::from_c(sg, count);
    auto mapped =
        swiotlb::map_sg(*dev->device, list.entries(), direction, swiotlb::Attrs::from_bits(attrs));
    if (!mapped) {
      return fail(mapped.error());
    }
    for (std::size_t i = 0; i < count; ++i) {
      sg[i].dma_address = list.entries()[i].dma_address.value();
      sg[i].dma_length = list.entries()[i].dma_length;
    }
    return SWIOTLB_OK;
  });
}

swiotlb_status swiotlb_unmap_sg(swiotlb_device* dev, const swiotlb_sg_entry* sg, size_t count,
                                swiotlb_direction dir, uint32_t attrs) {
  return guarded("swiotlb_unmap_sg", [&] {
    swiotlb::Direction direction{};
    if (auto s = check_call("swiotlb_unmap_sg", dev, dir, attrs, &direction); s != SWIOTLB_OK) {
      return s;
    }
    if (sg == nullptr && count != 0) {
      return null_argument("swiotlb_unmap_sg", "sg");
    }
    auto list = swiotlb::capi::from_c(sg, count);
    return result(swiotlb::unmap_sg(*dev->device, list.entries(), direction,
                                    swiotlb::Attrs::from_bits(attrs)));
  });
}

swiotlb_status swiotlb_sync_sg_for_cpu(swiotlb_device* dev, const swiotlb_sg_entry* sg,
                                       size_t count, swiotlb_direction dir) {
  return guarded("swiotlb_sync_sg_for_cpu", [&] {
    swiotlb::Direction direction{};
    if (auto s = check_call("swiotlb_sync_sg_for_cpu", dev, dir, 0, &direction); s != SWIOTLB_OK) {
      return s;
    }
    if (sg == nullptr && count != 0) {
      return null_argument("swiotlb_sync_sg_for_cpu", "sg");
    }
    auto list = swiotlb::capi::from_c(sg, count);
    return result(swiotlb::sync_sg_for_cpu(*dev->device, list.entries(), direction));
  });
}

swiotlb_status swiotlb_sync_sg_for_device(swiotlb_device* dev, const swiotlb_sg_entry* sg,
                                          size_t count, swiotlb_direction dir) {
  return guarded("swiotlb_sync_sg_for_device", [&] {
    swiotlb::Direction direction{};
    if (auto s = check_call("swiotlb_sync_sg_for_device", dev, dir, 0, &direction);
        s != SWIOTLB_OK) {
      return s;
    }
    if (sg == nullptr && count != 0) {
      return null_argument("swiotlb_sync_sg_for_device", "sg");
    }
    auto list = swiotlb::capi::from_c(sg, count);
    return result(swiotlb::sync_sg_for_device(*dev->device, list.entries(), direction));
  });
}

swiotlb_status swiotlb_alloc_coherent(swiotlb_device* dev, uint64_t size, swiotlb_coherent* out) {
  return guarded("swiotlb_alloc_coherent", [&] {
    if (dev == nullptr || out == nullptr) {
      return null_argument("swiotlb_alloc_coherent", dev == nullptr ? "dev" : "out");
    }
    auto buffer = swiotlb::alloc_coherent(*dev->device, size);
    if (!buffer) {
      return fail(buffer.error());
    }
    out->cpu_addr = buffer->cpu_addr;
    out->dma_handle = buffer->dma_handle.value();
    out->size = buffer->size;
    return SWIOTLB_OK;
  });
}

swiotlb_status swiotlb_free_coherent(swiotlb_device* dev, const swiotlb_coherent* buffer) {
  return guarded("swiotlb_free_coherent", [&] {
    if (dev == nullptr || buffer == nullptr) {
      return null_argument("swiotlb_free_coherent", dev == nullptr ? "dev" : "buffer");
    }
    const swiotlb::CoherentBuffer cpp{.cpu_addr = buffer->cpu_addr,
                                      .dma_handle = swiotlb::DmaAddr(buffer->dma_handle),
                                      .size = buffer->size};
    return result(swiotlb::free_coherent(*dev->device, cpp));
  });
}

}  // extern "C"
