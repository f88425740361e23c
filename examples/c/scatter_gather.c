/* A storage device with NVMe's constraints (keep the low 12 address bits,
 * never cross a 4 GiB boundary) reads three buffers gathered in one list.
 * Every mapping bounces (swiotlb=force); the "device" checks what it reads
 * through the list, then writes a status word back into the last buffer,
 * which a sync for the CPU brings back. Exits 0 when both directions held. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <swiotlb.h>

#define CHECK(call)                                                                               \
  do {                                                                                            \
    swiotlb_status status_ = (call);                                                              \
    if (status_ != SWIOTLB_OK) {                                                                  \
      fprintf(stderr, "%s: %s: %s\n", #call, swiotlb_status_name(status_), swiotlb_last_error()); \
      return 1;                                                                                   \
    }                                                                                             \
  } while (0)

int main(void) {
  swiotlb_tlb* tlb = NULL;
  CHECK(swiotlb_tlb_create("swiotlb=4096,force", NULL, &tlb));
  swiotlb_device_config config;
  CHECK(swiotlb_device_config_init(&config));
  config.name = "nvme";
  config.min_align_mask = 0xfff;
  config.seg_boundary_mask = 0xffffffffu;
  swiotlb_device* nvme = NULL;
  CHECK(swiotlb_device_create(tlb, &config, &nvme));

  static char header[64] = "header";
  static char payload[8192];
  static char status[16];
  memset(payload, 'p', sizeof payload);
  swiotlb_sg_entry sg[3] = {
      {.cpu_addr = header, .length = sizeof header},
      {.cpu_addr = payload, .length = sizeof payload},
      {.cpu_addr = status, .length = sizeof status},
  };
  CHECK(swiotlb_map_sg(nvme, sg, 3, SWIOTLB_DMA_BIDIRECTIONAL, 0));

  /* The device reads each segment where the list says it is. */
  for (int i = 0; i < 3; ++i) {
    const char* seen = (const char*)(uintptr_t)sg[i].dma_address;
    if (sg[i].dma_address == (uint64_t)(uintptr_t)sg[i].cpu_addr ||
        memcmp(seen, sg[i].cpu_addr, sg[i].length) != 0 ||
        (sg[i].dma_address & 0xfff) != ((uintptr_t)sg[i].cpu_addr & 0xfff)) {
      fprintf(stderr, "segment %d: not bounced, not the same bytes or not aligned\n", i);
      return 1;
    }
  }
  /* ... and writes a status word into the last one. */
  memcpy((char*)(uintptr_t)sg[2].dma_address, "done", 5);
  CHECK(swiotlb_sync_sg_for_cpu(nvme, sg, 3, SWIOTLB_DMA_BIDIRECTIONAL));
  if (strcmp(status, "done") != 0) {
    fprintf(stderr, "the status word did not come back\n");
    return 1;
  }
  CHECK(swiotlb_unmap_sg(nvme, sg, 3, SWIOTLB_DMA_BIDIRECTIONAL, 0));
  printf("3 segments mapped, read and written back through the window\n");

  CHECK(swiotlb_device_destroy(nvme));
  CHECK(swiotlb_tlb_destroy(tlb));
  return 0;
}
