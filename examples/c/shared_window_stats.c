/* A window in a memfd (the kind a device emulator in another process maps),
 * a coherent ring for a device that is not cache-coherent, and the window's
 * statistics in the three formats: debugfs text, JSON, and Prometheus text
 * for a service that exports metrics. Exits 0 when all of it worked. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

static unsigned cache_syncs;

static void cache_hook(void* context, swiotlb_cache_op op, uint64_t addr, uint64_t size,
                       swiotlb_direction dir) {
  (void)context;
  (void)op;
  (void)addr;
  (void)size;
  (void)dir;
  ++cache_syncs; /* a real driver cleans or invalidates the CPU cache here */
}

/* Prints one format of the statistics, sized by a first call. */
static int print_stats(const swiotlb_tlb* tlb, swiotlb_stats_format format, const char* title) {
  size_t length = 0;
  if (swiotlb_tlb_stats(tlb, format, NULL, 0, &length) != SWIOTLB_E_BUFFER_TOO_SMALL) {
    return 0;
  }
  char* text = malloc(length + 1);
  if (text == NULL || swiotlb_tlb_stats(tlb, format, text, length + 1, &length) != SWIOTLB_OK) {
    free(text);
    return 0;
  }
  printf("--- %s (%zu bytes)\n%s\n", title, length, text);
  free(text);
  return 1;
}

int main(void) {
  swiotlb_region region = {.kind = SWIOTLB_REGION_MEMFD};
  swiotlb_tlb* tlb = NULL;
  CHECK(swiotlb_tlb_create("2048", &region, &tlb));
  int fd = -1;
  uint64_t start = 0;
  uint64_t end = 0;
  CHECK(swiotlb_tlb_region_fd(tlb, &fd));
  CHECK(swiotlb_tlb_window(tlb, &start, &end));
  printf("window [0x%llx, 0x%llx) in memfd %d: hand the fd to the device's process\n",
         (unsigned long long)start, (unsigned long long)end, fd);

  swiotlb_device_config config;
  CHECK(swiotlb_device_config_init(&config));
  config.name = "dsp";
  config.coherent = 0;
  config.cache_hook = cache_hook;
  config.window_only = 1; /* the device's process maps the window and nothing else */
  swiotlb_device* dsp = NULL;
  CHECK(swiotlb_device_create(tlb, &config, &dsp));

  swiotlb_coherent ring;
  CHECK(swiotlb_alloc_coherent(dsp, 3000, &ring));
  const unsigned char* bytes = ring.cpu_addr;
  for (uint64_t i = 0; i < ring.size; ++i) {
    if (bytes[i] != 0) {
      fprintf(stderr, "coherent memory not zeroed at %llu\n", (unsigned long long)i);
      return 1;
    }
  }
  if (ring.dma_handle < start || ring.dma_handle >= end) {
    fprintf(stderr, "the ring is outside the window\n");
    return 1;
  }

  static char command[512] = "read sector 7";
  uint64_t dma = 0;
  CHECK(swiotlb_map_single(dsp, command, sizeof command, SWIOTLB_DMA_TO_DEVICE, 0, &dma));
  if (!print_stats(tlb, SWIOTLB_STATS_DEBUGFS, "debugfs") ||
      !print_stats(tlb, SWIOTLB_STATS_JSON, "json") ||
      !print_stats(tlb, SWIOTLB_STATS_PROMETHEUS, "prometheus")) {
    fprintf(stderr, "statistics: %s\n", swiotlb_last_error());
    return 1;
  }
  CHECK(swiotlb_unmap_single(dsp, dma, sizeof command, SWIOTLB_DMA_TO_DEVICE, 0));
  CHECK(swiotlb_free_coherent(dsp, &ring));
  printf("cache maintenance calls: %u\n", cache_syncs);

  CHECK(swiotlb_device_destroy(dsp));
  CHECK(swiotlb_tlb_destroy(tlb));
  return cache_syncs > 0 ? 0 : 1;
}
