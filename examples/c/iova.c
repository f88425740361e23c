/* An IOMMU domain's address space: the reserved regions sysfs lists (an MSI
 * doorbell window, a firmware hole) are kept out, and device addresses are
 * handed out top-down below a 32-bit limit, as Linux's iova.c does. Exits 0
 * when no allocation touched a reserved range. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
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
  swiotlb_iova_domain* domain = NULL;
  CHECK(swiotlb_iova_domain_create(4096, 1, 2, &domain));

  /* /sys/kernel/iommu_groups/<n>/reserved_regions of an x86 machine. */
  const char* reserved =
      "0x00000000fee00000 0x00000000feefffff msi\n"
      "0x00000000ffe00000 0x00000000ffffffff reserved\n";
  size_t count = 0;
  CHECK(swiotlb_iova_reserve_regions(domain, reserved, &count));

  const uint64_t limit_pfn = (1ull << 32) / 4096 - 1;
  uint64_t lo[8];
  uint64_t hi[8];
  for (int i = 0; i < 8; ++i) {
    CHECK(swiotlb_iova_alloc(domain, 256, limit_pfn, 1, &lo[i], &hi[i]));
    const uint64_t start = lo[i] * 4096;
    const uint64_t end = hi[i] * 4096 + 4095;
    if ((end >= 0xfee00000u && start <= 0xfeefffffu) ||
        (end >= 0xffe00000u && start <= 0xffffffffu)) {
      fprintf(stderr, "IOVA [0x%" PRIx64 ", 0x%" PRIx64 "] overlaps a reserved region\n", start,
              end);
      return 1;
    }
  }
  printf("%zu regions reserved; 8 IOVAs of 1 MiB, the first at 0x%" PRIx64 "\n", count,
         lo[0] * 4096);

  uint64_t pfn = 0;
  CHECK(swiotlb_iova_alloc_fast(domain, 1, 16, limit_pfn, 1, &pfn));
  CHECK(swiotlb_iova_free_fast(domain, 1, pfn, 16));
  for (int i = 0; i < 8; ++i) {
    CHECK(swiotlb_iova_free(domain, lo[i]));
  }
  /* Freeing twice is an error value, not a corrupted allocator. */
  if (swiotlb_iova_free(domain, lo[0]) != SWIOTLB_E_NOT_MAPPED) {
    return 1;
  }
  CHECK(swiotlb_iova_domain_destroy(domain));
  return count == 2 ? 0 : 1;
}
