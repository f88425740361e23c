// The C++ entry header: everything a program needs to bounce DMA through a
// software IO TLB, in one include.
//
//   #include <swiotlb/swiotlb.h>
//
// gives
//  - the core types: PhysAddr and DmaAddr (core/address.h), Direction and
//    Attrs (core/direction.h), errors as values: Result<T>, Status, Error,
//    Errc (core/error.h), the `swiotlb=` parser (core/config.h);
//  - where a window lives: RegionSpec, RegionKind (platform/region_spec.h);
//  - IoTlb and IoTlbOptions: the window, its pools and statistics
//    (iotlb/io_tlb.h);
//  - Device and the DMA API: map/unmap/sync single and scatter-gather,
//    split mappings, coherent memory (dma/device.h, dma/dma_api.h);
//  - the version macros (version.h).
//
// Other entry headers: <swiotlb/iova.h> (IOVA domains), <swiotlb/trace.h>
// (kernel DMA traces, workloads and replay; installed when the trace tools
// are built). The C API is <swiotlb.h>. The headers named above are the
// public interface: a shared libswiotlb exports every function they declare
// (scripts/check-exports.py checks it). The others under swiotlb/<layer>/
// are the library's parts, free to change between minor versions; a static
// library links all of them, a shared one only what they mark SWIOTLB_API.
//
// None of these headers needs fmt or nlohmann-json. JSON output is opt-in
// through the headers whose names end in _json.h.
#pragma once

#include "swiotlb/core/address.h"
#include "swiotlb/core/config.h"
#include "swiotlb/core/direction.h"
#include "swiotlb/core/error.h"
#include "swiotlb/dma/device.h"
#include "swiotlb/dma/dma_api.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/platform/region_spec.h"
#include "swiotlb/version.h"
