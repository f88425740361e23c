// Test helpers: a small IoTlb with devices, and a view of what a device
// sees at a device address (in this library a device sees CPU memory at
// the same address).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "swiotlb/dma/dma_api.h"
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb::testing {

inline std::unique_ptr<IoTlb> make_io_tlb(std::uint64_t nslabs = 1024, bool force = true,
                                          std::string policy = "linux", std::uint32_t nareas = 1) {
  IoTlbOptions options;
  options.nslabs = nslabs;
  options.nareas = nareas;
  options.force_bounce = force;
  options.policy = std::move(policy);
  auto made = IoTlb::create(options);
  return made ? std::move(*made) : nullptr;
}

inline std::unique_ptr<Device> make_device(IoTlb* io_tlb, DeviceConfig config = {}) {
  auto made = Device::create(std::move(config), io_tlb);
  return made ? std::move(*made) : nullptr;
}

// The bytes the device sees at `addr`.
inline std::byte* device_view(DmaAddr addr) {
  return static_cast<std::byte*>(PhysAddr(addr.value()).to_pointer());
}

inline std::vector<std::byte> pattern(std::size_t size, unsigned seed) {
  std::vector<std::byte> bytes(size);
  for (std::size_t i = 0; i < size; ++i) {
    bytes[i] = static_cast<std::byte>((i * 131 + seed * 7 + (i >> 8)) & 0xff);
  }
  return bytes;
}

inline bool same_bytes(const void* a, const void* b, std::size_t size) {
  return std::memcmp(a, b, size) == 0;
}

}  // namespace swiotlb::testing
