/* The swiotlb C API: a software IO TLB for user space.
 *
 * An IoTlb (swiotlb_tlb) is a window of memory a device can reach, cut into
 * 2 KiB slots; a device (swiotlb_device) maps buffers for DMA through it, and
 * a buffer the device cannot reach is copied ("bounced") through slots of the
 * window, as the Linux kernel's swiotlb does. An IOVA domain
 * (swiotlb_iova_domain) hands out device address ranges as an IOMMU driver's
 * does.
 *
 * Conventions, for every function below:
 *  - Errors: every call returns a swiotlb_status; SWIOTLB_OK (0) is success.
 *    On failure nothing changed, out-parameters are left as they were, and
 *    swiotlb_last_error() gives a message for the calling thread saying what
 *    was asked and which limit stood in the way. No C++ exception crosses
 *    this API, and bad input never aborts the process. The only functions
 *    that return something else cannot fail: swiotlb_last_error(),
 *    swiotlb_status_name(), swiotlb_version().
 *  - Ownership: a handle made by a *_create function belongs to the caller,
 *    who ends it with the matching *_destroy. Pointers passed in are only
 *    read during the call unless the function says otherwise.
 *  - Thread safety: unless a function says otherwise, it may be called from
 *    any thread on the same handle at once. A *_destroy must not run at the
 *    same time as any other call on its handle (or, for a tlb, on its
 *    devices). Calls on one mapping must be ordered by the caller (map, then
 *    syncs, then unmap), as in the kernel.
 *  - Addresses: a dma address (uint64_t) is where the device finds the
 *    buffer; give it to the device, never dereference it.
 */
#ifndef SWIOTLB_H
#define SWIOTLB_H

#include <stddef.h>
#include <stdint.h>

#include "swiotlb/core/export.h"
#include "swiotlb/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status, errors, version ------------------------------------------- */

typedef enum swiotlb_status {
  SWIOTLB_OK = 0,
  SWIOTLB_E_INVALID_ARGUMENT = 1,  /* malformed or out-of-range input, a NULL handle */
  SWIOTLB_E_OUT_OF_RANGE = 2,      /* an address or size beyond what the object covers */
  SWIOTLB_E_POOL_FULL = 3,         /* no run of free slots (or IOVAs) fits the request */
  SWIOTLB_E_UNREACHABLE = 4,       /* the device cannot reach the memory */
  SWIOTLB_E_NOT_MAPPED = 5,        /* unmap or sync of an address that holds no mapping */
  SWIOTLB_E_MAPPING_MISMATCH = 6,  /* unmap or sync whose size or direction differs from the map */
  SWIOTLB_E_BUSY = 7,              /* the object still has live mappings or devices */
  SWIOTLB_E_SEARCH_WOULD_SPIN = 8, /* the modelled kernel search would never end */
  SWIOTLB_E_SYSTEM = 9,            /* the operating system refused (errno in the message) */
  SWIOTLB_E_PARSE = 10,            /* a swiotlb= string or a text that does not parse */
  SWIOTLB_E_TIMED_OUT = 11,        /* a wait for room ended at its deadline */
  SWIOTLB_E_LIMIT_REACHED = 12,    /* growth would pass the configured maximum */
  SWIOTLB_E_NO_MEMORY = 13,        /* the process ran out of memory */
  SWIOTLB_E_BUFFER_TOO_SMALL = 14  /* an output buffer cannot hold the result */
} swiotlb_status;

/* The message of the last call on this thread that failed: a NUL-terminated
 * string owned by the library, valid until the next failing call on this
 * thread. "" when no call on this thread has failed. Thread-local. */
SWIOTLB_API const char* swiotlb_last_error(void);

/* A status's name ("pool_full", ...): a static string. Any thread. */
SWIOTLB_API const char* swiotlb_status_name(swiotlb_status status);

/* The library's version, "major.minor.patch": a static string; compare with
 * SWIOTLB_VERSION_STRING to see whether headers and library agree. */
SWIOTLB_API const char* swiotlb_version(void);

/* ---- IoTlb: the bounce window ------------------------------------------ */

typedef struct swiotlb_tlb swiotlb_tlb;

/* Where the window's memory lives. */
typedef enum swiotlb_region_kind {
  SWIOTLB_REGION_ANONYMOUS = 0, /* private memory of this process, placed low
                                   (below 2 GiB where the system allows) */
  SWIOTLB_REGION_MEMFD = 1,     /* a sealed memfd whose descriptor
                                   (swiotlb_tlb_region_fd) another process maps */
  SWIOTLB_REGION_FILE = 2,      /* a file at an offset, mapped shared */
  SWIOTLB_REGION_FIXED = 3      /* anonymous memory at exactly `address` */
} swiotlb_region_kind;

typedef struct swiotlb_region {
  swiotlb_region_kind kind;
  const char* path; /* FILE: the file; created (mode 0600) or grown when short */
  uint64_t offset;  /* FILE: where the window starts, a multiple of the page size */
  uint64_t address; /* FIXED (and optionally MEMFD/FILE): the CPU address the window
                       must start at, page-aligned; 0: wherever the system puts it */
} swiotlb_region;

/* Makes an IoTlb from a kernel-style `swiotlb=` string (the text after
 * "swiotlb=" or the whole "swiotlb=..." word, e.g. "32768,4" or
 * "swiotlb=8192,force"; NULL or "": the kernel's default of 64 MiB) and a
 * region (NULL: anonymous). An addr= in the string places an anonymous
 * window as SWIOTLB_REGION_FIXED does. On success *out is a new handle the
 * caller ends with swiotlb_tlb_destroy.
 * Errors: PARSE (the string), INVALID_ARGUMENT (the region: a FILE without a
 * path, a misaligned address), SYSTEM (the memory could not be had: the
 * message says why, e.g. an address already in use). */
SWIOTLB_API swiotlb_status swiotlb_tlb_create(const char* swiotlb_param,
                                              const swiotlb_region* region, swiotlb_tlb** out);

/* Ends an IoTlb and unmaps its window. Fails (BUSY) and changes nothing
 * while devices made on it are alive: destroy them first. NULL is a no-op.
 * Not concurrently with any other call on the tlb or its devices. */
SWIOTLB_API swiotlb_status swiotlb_tlb_destroy(swiotlb_tlb* tlb);

/* The default pool's window, [*start, *end): CPU addresses. */
SWIOTLB_API swiotlb_status swiotlb_tlb_window(const swiotlb_tlb* tlb, uint64_t* start,
                                              uint64_t* end);

/* The window's file descriptor (MEMFD, FILE), still owned by the tlb: dup()
 * it to keep it beyond the tlb. Fails (INVALID_ARGUMENT) for an anonymous
 * window. */
SWIOTLB_API swiotlb_status swiotlb_tlb_region_fd(const swiotlb_tlb* tlb, int* fd);

/* Statistics of the tlb and its pools. */
typedef enum swiotlb_stats_format {
  SWIOTLB_STATS_DEBUGFS = 0,   /* the kernel's debugfs files, "name: value" lines */
  SWIOTLB_STATS_JSON = 1,      /* one JSON object */
  SWIOTLB_STATS_PROMETHEUS = 2 /* the Prometheus text exposition format (0.0.4) */
} swiotlb_stats_format;

/* Writes the statistics, NUL-terminated, into buf[0..size) and their length
 * (without the NUL) into *length. When buf is NULL or size <= the length,
 * nothing is written to buf, *length is still set, and the call fails with
 * BUFFER_TOO_SMALL: call again with a buffer of *length + 1 bytes. The
 * figures are a snapshot; they may be stale by the time they are read. */
SWIOTLB_API swiotlb_status swiotlb_tlb_stats(const swiotlb_tlb* tlb, swiotlb_stats_format format,
                                             char* buf, size_t size, size_t* length);

/* ---- Devices ------------------------------------------------------------ */

typedef struct swiotlb_device swiotlb_device;

typedef enum swiotlb_direction {
  SWIOTLB_DMA_BIDIRECTIONAL = 0,
  SWIOTLB_DMA_TO_DEVICE = 1,  /* the device reads the buffer */
  SWIOTLB_DMA_FROM_DEVICE = 2 /* the device writes the buffer */
} swiotlb_direction;

/* Attributes of a map or unmap (the kernel's DMA_ATTR_*), or-ed together. */
#define SWIOTLB_ATTR_SKIP_CPU_SYNC (1u << 5) /* no copy back at unmap */
#define SWIOTLB_ATTR_NO_WARN (1u << 8)       /* no "buffer is full" warning */

/* Cache maintenance asked of a non-coherent device's owner: before the
 * device reads [addr, addr + size) (for_device) or before the CPU reads what
 * it wrote (for_cpu). */
typedef enum swiotlb_cache_op {
  SWIOTLB_CACHE_FOR_DEVICE = 0,
  SWIOTLB_CACHE_FOR_CPU = 1
} swiotlb_cache_op;
typedef void (*swiotlb_cache_hook)(void* context, swiotlb_cache_op op, uint64_t addr, uint64_t size,
                                   swiotlb_direction dir);

typedef struct swiotlb_device_config {
  const char* name;              /* for messages; copied. NULL: "device" */
  uint64_t dma_mask;             /* highest address the device reaches; 0: all 64 bits */
  uint64_t coherent_dma_mask;    /* the same for coherent memory; 0: dma_mask */
  uint64_t min_align_mask;       /* low address bits a bounce must keep (NVMe: 0xfff) */
  uint64_t seg_boundary_mask;    /* 2^n - 1: no mapping crosses such a boundary; 0: none */
  uint32_t max_segment_size;     /* longest scatter-gather segment; 0: 65536 */
  int coherent;                  /* nonzero: no cache maintenance needed */
  swiotlb_cache_hook cache_hook; /* !coherent: called for each sync; may be NULL. Called
                                    on the thread that maps, syncs or unmaps */
  void* cache_context;           /* passed to cache_hook; not owned */
  int window_only;               /* nonzero: the device reaches the tlb's default window and
                                    nothing else (a peer process that maps only the window):
                                    every mapping bounces and coherent memory comes from the
                                    window. 0: it reaches memory by its masks, and coherent
                                    memory comes from normal memory when it reaches it */
} swiotlb_device_config;

/* Fills *config with the defaults: every address reachable, coherent, no
 * alignment or boundary constraint. */
SWIOTLB_API swiotlb_status swiotlb_device_config_init(swiotlb_device_config* config);

/* Makes a device that bounces through `tlb`. The tlb must outlive it. On
 * success *out is a new handle the caller ends with swiotlb_device_destroy.
 * Errors: INVALID_ARGUMENT (a mask no kernel would accept: a boundary mask
 * not of the form 2^n - 1). */
SWIOTLB_API swiotlb_status swiotlb_device_create(swiotlb_tlb* tlb,
                                                 const swiotlb_device_config* config,
                                                 swiotlb_device** out);

/* Ends a device. Fails (BUSY) and changes nothing while it has live
 * mappings or coherent buffers (the message says how many). NULL is a
 * no-op. Not concurrently with any other call on the device. */
SWIOTLB_API swiotlb_status swiotlb_device_destroy(swiotlb_device* dev);

/* ---- Streaming DMA: map, unmap, sync ------------------------------------ */

/* Maps [cpu_addr, cpu_addr + size) for the device and writes the device
 * address to *dma. The buffer must stay alive, and the CPU must not touch
 * it, until the unmap (or a sync for the CPU). A buffer the device cannot
 * reach is bounced: copied into the window (for any direction, as the
 * kernel does) and the window's address returned.
 * Errors: INVALID_ARGUMENT (size 0, a bad direction), POOL_FULL, UNREACHABLE. */
SWIOTLB_API swiotlb_status swiotlb_map_single(swiotlb_device* dev, const void* cpu_addr,
                                              uint64_t size, swiotlb_direction dir, uint32_t attrs,
                                              uint64_t* dma);

/* Ends a mapping; size and direction must be those of the map. A bounced
 * FROM_DEVICE or BIDIRECTIONAL buffer is copied back unless
 * SWIOTLB_ATTR_SKIP_CPU_SYNC. Errors: NOT_MAPPED, MAPPING_MISMATCH. */
SWIOTLB_API swiotlb_status swiotlb_unmap_single(swiotlb_device* dev, uint64_t dma, uint64_t size,
                                                swiotlb_direction dir, uint32_t attrs);

/* Hands [dma, dma + size) of a live mapping (any part of it) to the CPU
 * (copying back what the device wrote) or back to the device (copying in
 * what the CPU wrote). The direction must be the map's. */
SWIOTLB_API swiotlb_status swiotlb_sync_single_for_cpu(swiotlb_device* dev, uint64_t dma,
                                                       uint64_t size, swiotlb_direction dir);
SWIOTLB_API swiotlb_status swiotlb_sync_single_for_device(swiotlb_device* dev, uint64_t dma,
                                                          uint64_t size, swiotlb_direction dir);

/* The largest single mapping this device is sure to get, in bytes. */
SWIOTLB_API swiotlb_status swiotlb_max_mapping_size(const swiotlb_device* dev, uint64_t* size);

/* One scatter-gather entry: the caller fills cpu_addr and length; map_sg
 * fills dma_address and dma_length. */
typedef struct swiotlb_sg_entry {
  void* cpu_addr;
  uint32_t length;
  uint64_t dma_address;
  uint32_t dma_length;
} swiotlb_sg_entry;

/* Maps every entry of sg[0..count) (each as swiotlb_map_single would; no
 * merging). All or nothing: on failure the entries already mapped are
 * unmapped again and nothing is filled in. Also refused (INVALID_ARGUMENT):
 * an entry longer than max_segment_size, or one that would cross the
 * segment boundary. The entries are read and written only during the call. */
SWIOTLB_API swiotlb_status swiotlb_map_sg(swiotlb_device* dev, swiotlb_sg_entry* sg, size_t count,
                                          swiotlb_direction dir, uint32_t attrs);
/* Unmaps every entry that map_sg mapped; goes on after an error and
 * returns the first one. */
SWIOTLB_API swiotlb_status swiotlb_unmap_sg(swiotlb_device* dev, const swiotlb_sg_entry* sg,
                                            size_t count, swiotlb_direction dir, uint32_t attrs);
SWIOTLB_API swiotlb_status swiotlb_sync_sg_for_cpu(swiotlb_device* dev, const swiotlb_sg_entry* sg,
                                                   size_t count, swiotlb_direction dir);
SWIOTLB_API swiotlb_status swiotlb_sync_sg_for_device(swiotlb_device* dev,
                                                      const swiotlb_sg_entry* sg, size_t count,
                                                      swiotlb_direction dir);

/* ---- Coherent memory ----------------------------------------------------- */

/* Memory both the CPU and the device may use at any time, zeroed, from the
 * device's window (the kernel's swiotlb_alloc). size is rounded up to whole
 * pages. The memory belongs to the caller until swiotlb_free_coherent. */
typedef struct swiotlb_coherent {
  void* cpu_addr;
  uint64_t dma_handle;
  uint64_t size;
} swiotlb_coherent;

SWIOTLB_API swiotlb_status swiotlb_alloc_coherent(swiotlb_device* dev, uint64_t size,
                                                  swiotlb_coherent* out);
/* `buffer` exactly as swiotlb_alloc_coherent filled it. */
SWIOTLB_API swiotlb_status swiotlb_free_coherent(swiotlb_device* dev,
                                                 const swiotlb_coherent* buffer);

/* ---- IOVA domains -------------------------------------------------------- */

/* An IOMMU domain's device address space, handed out in page frames (pfns)
 * of `granule` bytes, top-down below a limit, as Linux's iova.c does. */
typedef struct swiotlb_iova_domain swiotlb_iova_domain;

/* granule: a power of two (4096 usually); start_pfn: the lowest pfn handed
 * out (at least 1); cpu_count: CPUs with their own caches (0: this
 * machine's). On success *out is a new handle for swiotlb_iova_domain_destroy.
 * Errors: INVALID_ARGUMENT. */
SWIOTLB_API swiotlb_status swiotlb_iova_domain_create(uint64_t granule, uint64_t start_pfn,
                                                      unsigned cpu_count,
                                                      swiotlb_iova_domain** out);
/* Ends a domain; IOVAs still out are dropped with it. NULL is a no-op. Not
 * concurrently with any other call on the domain. */
SWIOTLB_API swiotlb_status swiotlb_iova_domain_destroy(swiotlb_iova_domain* domain);

/* `size` pfns ending at or below limit_pfn (size-aligned if asked); the
 * range is [*pfn_lo, *pfn_hi]. Errors: POOL_FULL (nothing fits),
 * INVALID_ARGUMENT (size 0 or too large). */
SWIOTLB_API swiotlb_status swiotlb_iova_alloc(swiotlb_iova_domain* domain, uint64_t size,
                                              uint64_t limit_pfn, int size_aligned,
                                              uint64_t* pfn_lo, uint64_t* pfn_hi);
/* Gives back the IOVA handed out at pfn_lo. Errors: NOT_MAPPED (none starts
 * there, or it was freed already). */
SWIOTLB_API swiotlb_status swiotlb_iova_free(swiotlb_iova_domain* domain, uint64_t pfn_lo);

/* The cached calls the kernel's DMA layer uses (alloc_iova_fast): through
 * per-CPU magazines for `cpu` (< cpu_count). flush: on a miss, return every
 * cache to the tree and retry. The range is [*pfn, *pfn + size rounded up
 * to a power of two when below 32). free_fast takes the size asked for. */
SWIOTLB_API swiotlb_status swiotlb_iova_alloc_fast(swiotlb_iova_domain* domain, unsigned cpu,
                                                   uint64_t size, uint64_t limit_pfn, int flush,
                                                   uint64_t* pfn);
SWIOTLB_API swiotlb_status swiotlb_iova_free_fast(swiotlb_iova_domain* domain, unsigned cpu,
                                                  uint64_t pfn, uint64_t size);

/* Keeps [pfn_lo, pfn_hi] from ever being handed out. Errors: OUT_OF_RANGE
 * (outside the domain), BUSY (over an IOVA that is out). */
SWIOTLB_API swiotlb_status swiotlb_iova_reserve(swiotlb_iova_domain* domain, uint64_t pfn_lo,
                                                uint64_t pfn_hi);

/* Reserves every region of a reserved-regions text, in the format of
 * /sys/kernel/iommu_groups/<n>/reserved_regions ("0x<start> 0x<end> <type>"
 * lines, byte addresses, end inclusive), except direct-relaxable ones, as
 * VFIO does; the pfns each covers, clipped to the domain. *count (may be
 * NULL) gets the number reserved. A text that does not parse (PARSE, naming
 * the line) reserves nothing; on BUSY (a region over an IOVA that is out)
 * the regions before it stay reserved and *count says how many. */
SWIOTLB_API swiotlb_status swiotlb_iova_reserve_regions(swiotlb_iova_domain* domain,
                                                        const char* text, size_t* count);

#ifdef __cplusplus
}
#endif

#endif /* SWIOTLB_H */
