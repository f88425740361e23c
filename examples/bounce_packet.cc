// The README's example: a NIC with a 32-bit mask receives a packet through
// a pool, and the pool's statistics are printed the way debugfs shows them.
// scripts/test-install.sh builds it against an installed library
// (examples/cmake-consumer), static and shared.
#include <swiotlb/swiotlb.h>

#include <cstdio>
#include <vector>

int main() {
  auto tlb = swiotlb::IoTlb::create({.nslabs = 32768, .nareas = 4}).value();  // 64 MiB, low
  auto nic = swiotlb::Device::create({.name = "nic", .dma_mask = 0xffffffff}, tlb.get()).value();

  std::vector<std::byte> packet(1500);
  auto dma =
      swiotlb::map_single(*nic, packet.data(), packet.size(), swiotlb::Direction::from_device);
  if (!dma) {
    std::puts(dma.error().message().c_str());
    return 1;
  }  // e.g. pool full
  // ... the device writes into *dma ...
  if (auto s = swiotlb::unmap_single(*nic, *dma, packet.size(), swiotlb::Direction::from_device);
      !s) {
    std::puts(s.error().message().c_str());
  }                                        // a misuse, reported, nothing corrupted
  std::puts(tlb->debugfs_text().c_str());  // io_tlb_nslabs, io_tlb_used, ...
  return 0;
}
