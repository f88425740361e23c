/* A device that reaches only the low 4 GiB receives a packet: the buffer is
 * mapped for the device, the "device" writes through the address it was
 * given (the bounce slot when the buffer is out of its reach), and the unmap
 * copies the packet back. Exits 0 when the packet arrived intact. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <swiotlb.h>

static int check(swiotlb_status status, const char* what) {
  if (status != SWIOTLB_OK) {
    fprintf(stderr, "%s: %s: %s\n", what, swiotlb_status_name(status), swiotlb_last_error());
    return 0;
  }
  return 1;
}

int main(void) {
  swiotlb_tlb* tlb = NULL;
  /* 16 MiB in 4 areas, placed low so that a 32-bit device reaches it. */
  if (!check(swiotlb_tlb_create("swiotlb=8192,4", NULL, &tlb), "swiotlb_tlb_create")) {
    return 1;
  }
  swiotlb_device_config config;
  swiotlb_device_config_init(&config);
  config.name = "nic";
  config.dma_mask = 0xffffffffu;
  swiotlb_device* nic = NULL;
  if (!check(swiotlb_device_create(tlb, &config, &nic), "swiotlb_device_create")) {
    return 1;
  }

  enum { kPacket = 1500 };
  unsigned char* packet = calloc(1, kPacket);
  uint64_t dma = 0;
  if (packet == NULL ||
      !check(swiotlb_map_single(nic, packet, kPacket, SWIOTLB_DMA_FROM_DEVICE, 0, &dma),
             "swiotlb_map_single")) {
    return 1;
  }
  /* The device writes the packet where it was told to (an identity-mapped
   * device: the dma address is a CPU address of this process). */
  unsigned char* device_view = (unsigned char*)(uintptr_t)dma;
  for (int i = 0; i < kPacket; ++i) {
    device_view[i] = (unsigned char)(i * 7);
  }
  if (!check(swiotlb_unmap_single(nic, dma, kPacket, SWIOTLB_DMA_FROM_DEVICE, 0),
             "swiotlb_unmap_single")) {
    return 1;
  }
  for (int i = 0; i < kPacket; ++i) {
    if (packet[i] != (unsigned char)(i * 7)) {
      fprintf(stderr, "byte %d of the packet did not arrive\n", i);
      return 1;
    }
  }
  printf("packet of %d bytes received %s\n", kPacket,
         dma == (uint64_t)(uintptr_t)packet ? "directly" : "through a bounce buffer");

  /* A wrong size at unmap is an error value; nothing is corrupted. */
  if (swiotlb_map_single(nic, packet, kPacket, SWIOTLB_DMA_TO_DEVICE, 0, &dma) != SWIOTLB_OK) {
    return 1;
  }
  swiotlb_status wrong = swiotlb_unmap_single(nic, dma, 64, SWIOTLB_DMA_TO_DEVICE, 0);
  printf("unmap with the wrong size: %s (%s)\n", swiotlb_status_name(wrong), swiotlb_last_error());
  if (!check(swiotlb_unmap_single(nic, dma, kPacket, SWIOTLB_DMA_TO_DEVICE, 0), "unmap")) {
    return 1;
  }

  free(packet);
  if (!check(swiotlb_device_destroy(nic), "swiotlb_device_destroy") ||
      !check(swiotlb_tlb_destroy(tlb), "swiotlb_tlb_destroy")) {
    return 1;
  }
  return wrong == SWIOTLB_E_MAPPING_MISMATCH ? 0 : 1;
}
